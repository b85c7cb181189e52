//! Helpers of the tests that need OpenVINO (the Python `openvino` package, which `.ci/run` installs from
//! scripts/requirements-openvino.txt): they fail with that instruction when it is missing, never skip.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// What to install when OpenVINO is missing.
const INSTALL: &str = "pip install -r scripts/requirements-openvino.txt";

fn script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

/// Runs a Python script of scripts/ and returns its one JSON line, panicking with its message (and what to
/// install when OpenVINO is missing) on failure.
pub fn python_json(name: &str, args: &[&std::ffi::OsStr]) -> serde_json::Value {
    let output: Output = Command::new("python3")
        .arg(script(name))
        .args(args)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name} failed: {stderr}{}",
        if stderr.contains("openvino") {
            format!(" (OpenVINO missing? {INSTALL})")
        } else {
            String::new()
        }
    );
    serde_json::from_slice(&output.stdout).expect("the script prints one JSON object")
}

/// Evaluates `model` (.onnx or .xml) with Python OpenVINO through `scripts/ov_eval.py`.
pub fn ov_eval(model: &Path, data: &Path) -> serde_json::Value {
    ov_eval_at(model, data, 1)
}

/// [`ov_eval`] at `batch` samples per inference: on AMX CPUs OpenVINO's int8 results depend on the batch, so
/// a measure compared with a report's is taken at the report's `deployed.batch`.
pub fn ov_eval_at(model: &Path, data: &Path, batch: u64) -> serde_json::Value {
    let batch = batch.to_string();
    python_json(
        "ov_eval.py",
        &[
            "--model".as_ref(),
            model.as_ref(),
            "--data".as_ref(),
            data.as_ref(),
            "--batch".as_ref(),
            batch.as_ref(),
        ],
    )
}

/// Whether every Convolution of OpenVINO's runtime graph (`measured["convolutions"]`, precision → count)
/// runs in an 8-bit precision: `u8` or `i8`, whichever the CPU's kernels chose (AMX CPUs report some as `i8`
/// where VNNI ones report `u8`); returns (8-bit, all).
pub fn int8_convolutions(measured: &serde_json::Value) -> (u64, u64) {
    let convolutions = measured["convolutions"].as_object().expect("convolutions");
    let count = |precisions: &[&str]| -> u64 {
        convolutions
            .iter()
            .filter(|(p, _)| precisions.is_empty() || precisions.contains(&p.as_str()))
            .map(|(_, n)| n.as_u64().unwrap())
            .sum()
    };
    (count(&["u8", "i8"]), count(&[]))
}

/// Converts bundled ONNX model `model` (under assets/) to an IR `dir/NAME.xml` + `.bin` with
/// `scripts/make_ir.py` (f32 weights, or OpenVINO's default f16 compression when `fp16`); returns the .xml.
pub fn make_ir(model: &str, dir: &Path, fp16: bool) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../assets")
        .join(model);
    let stem = Path::new(model).file_stem().unwrap().to_str().unwrap();
    let xml = dir.join(format!("{stem}.xml"));
    let mut args: Vec<&std::ffi::OsStr> = vec![source.as_ref(), xml.as_ref()];
    if fp16 {
        args.push("--fp16".as_ref());
    }
    python_json("make_ir.py", &args);
    xml
}
