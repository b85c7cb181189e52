//! Shared helpers of the CLI end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's bundled assets.
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// The reference outputs made with ONNX Runtime.
pub fn reference() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/reference")
}

/// Runs the `aquant` binary.
pub fn aquant(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aquant"))
        .args(args)
        .output()
        .expect("the aquant binary runs")
}

/// Runs the `aquant` binary with the environment variables `env` set (an empty value hides an engine:
/// `ORT_DYLIB_PATH=""` names no library, so ONNX Runtime is not found).
pub fn aquant_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aquant"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the aquant binary runs")
}

/// The `report.json` a run wrote to `dir`.
pub fn read_report(dir: &Path) -> serde_json::Value {
    let path = dir.join("report.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("report.json is JSON")
}

/// A report without what legitimately differs between runs of the same job: time (the deployed latency
/// included), work done, where it was written.
pub fn run_result(mut report: serde_json::Value) -> serde_json::Value {
    for key in ["timings_s", "profile", "evaluations", "output"] {
        report.as_object_mut().unwrap().remove(key);
    }
    without_latency(report)
}

/// `report` without the deployed checks' latencies and the front's: times, measured anew by every run.
pub fn without_latency(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(deployed) = report["deployed"].as_object_mut() {
        deployed.remove("latency");
    }
    if let Some(front) = report["front"].as_array_mut() {
        for point in front.iter_mut().filter_map(|p| p.as_object_mut()) {
            point.remove("latency_ms");
        }
    }
    if let Some(targets) = report["targets"].as_array_mut() {
        for target in targets.iter_mut() {
            if let Some(deployed) = target["deployed"].as_object_mut() {
                deployed.remove("latency");
            }
        }
    }
    report
}

/// The first line of a run's summary without its latency part ("; INT8 x ms vs FP32 y ms (…)"): a time,
/// measured anew by every run.
pub fn summary_without_latency(output: &Output) -> Option<String> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().next()?;
    Some(line.split("; INT8 ").next().unwrap_or(line).to_string())
}

/// Parses the single JSON line `aquant ... --json` prints.
pub fn json_stdout(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "aquant failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

/// Asserts a clean failure: exit status 2, one `error:` line on stderr naming `needle`, no panic.
pub fn assert_clean_error(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(
        lines[0].contains(needle),
        "expected '{needle}' in: {stderr}"
    );
}

/// Asserts that a `quantize` run of `what` finished: exit 0 (target met) or 1 (not met, the best model found
/// saved); otherwise shows its status and stderr.
pub fn assert_finished(output: &Output, what: &str) {
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{what}: status {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes `contents` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

/// Evaluates `model` with ONNX Runtime through `scripts/ort_eval.py` (npy data specs), returning its JSON.
pub fn ort_eval(model: &Path, data: &Path) -> serde_json::Value {
    ort_eval_with(model, data, &[])
}

/// [`ort_eval`] with more `scripts/ort_eval.py` options (`--limit N`, `--logits FILE`, `--no-optim`, …).
pub fn ort_eval_with(model: &Path, data: &Path, options: &[&str]) -> serde_json::Value {
    let output = run_ort_eval(model, data, options);
    assert!(
        output.status.success(),
        "ONNX Runtime could not evaluate {}: {}",
        model.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ort_eval.py prints one JSON object")
}

/// ONNX Runtime's optimized graph of `model`, read by `scripts/ort_fusion.py`: op counts, the weighted ops
/// left in float (`float_weighted`) and the DequantizeLinear→QuantizeLinear pairs (`dq_q_pairs`).
pub fn ort_fusion(model: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ort_fusion.py");
    let output = Command::new("python3")
        .arg(script)
        .arg("--model")
        .arg(model)
        .output()
        .expect("python3 runs (install scripts/requirements.txt)");
    assert!(
        output.status.success(),
        "ort_fusion.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ort_fusion.py prints one JSON object")
}

fn run_ort_eval(model: &Path, data: &Path, options: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ort_eval.py");
    Command::new("python3")
        .arg(script)
        .arg("--model")
        .arg(model)
        .arg("--data")
        .arg(data)
        .args(options)
        .output()
        .expect("python3 runs (install scripts/requirements.txt)")
}

/// Why ONNX Runtime cannot be run as a CPU without VNNI here (no `qemu-x86_64`, not an x86-64 host), if so.
pub fn avx2_no_vnni_unavailable() -> Option<String> {
    if !cfg!(target_arch = "x86_64") {
        return Some("the AVX2 emulation needs an x86-64 host".into());
    }
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("qemu-x86_64").is_file()));
    (!found).then(|| "qemu-x86_64 is not installed (apt-get install qemu-user)".into())
}

/// Evaluates `model` with ONNX Runtime as an AVX2 CPU without VNNI computes it (`scripts/ort_eval.py --cpu
/// avx2-no-vnni`: ONNX Runtime under `qemu-x86_64 -cpu Haswell`), on any x86-64 machine. `None`, after printing
/// why, when the emulator is missing: the caller skips, never silently.
pub fn ort_eval_avx2_no_vnni(
    model: &Path,
    data: &Path,
    options: &[&str],
) -> Option<serde_json::Value> {
    if let Some(reason) = avx2_no_vnni_unavailable() {
        eprintln!("SKIPPED (ONNX Runtime on an AVX2 CPU without VNNI): {reason}");
        return None;
    }
    let options: Vec<&str> = ["--cpu", "avx2-no-vnni"]
        .iter()
        .chain(options)
        .copied()
        .collect();
    let value = ort_eval_with(model, data, &options);
    assert_eq!(value["cpu"], "avx2-no-vnni");
    Some(value)
}

/// Runs the `aquant` binary as on an AVX2 CPU without VNNI (`qemu-x86_64 -cpu Haswell`, the CPU model
/// `scripts/ort_eval.py --cpu avx2-no-vnni` uses): its in-process ONNX Runtime then picks that CPU's int8 kernels
/// (and `aquant::CpuFeatures::detect` sees no VNNI). About 50× slower than native. `None`, after printing why,
/// when the emulator is missing.
pub fn aquant_avx2_no_vnni(args: &[&str]) -> Option<Output> {
    if let Some(reason) = avx2_no_vnni_unavailable() {
        eprintln!("SKIPPED (aquant on an AVX2 CPU without VNNI): {reason}");
        return None;
    }
    // The library is located natively (qemu-user runs child processes natively), then loaded in the emulator.
    let library = aquant_ort::find_library().expect("ONNX Runtime (scripts/requirements.txt)");
    let output = Command::new("qemu-x86_64")
        .args(["-cpu", "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid"])
        .arg(env!("CARGO_BIN_EXE_aquant"))
        .args(args)
        .env(aquant_ort::DYLIB_VARIABLE, library)
        .output()
        .expect("qemu-x86_64 runs");
    Some(output)
}

/// True when this CPU has VNNI; otherwise prints that the calling test is skipped and why.
pub fn vnni_here(test: &str) -> bool {
    let cpu = aquant::CpuFeatures::detect();
    if !cpu.has_vnni() {
        eprintln!("SKIPPED {test}: it judges ONNX Runtime's int8 kernels on a CPU with VNNI; this one has {}", cpu.flags());
    }
    cpu.has_vnni()
}

/// Fraction of equal entries of two JSON arrays of predictions.
pub fn agreement(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

/// The tensors of sample `index`, in the order the data spec gives them (one-input models in these tests).
pub fn sample_inputs(dataset: &dyn aquant::Dataset, index: usize) -> Vec<aquant::Tensor> {
    dataset
        .get(index)
        .unwrap()
        .inputs
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

/// The f32 values of a little-endian `.npy` file (version 1 or 2 header).
pub fn npy_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// `.npy` bytes of float32 `values` with `shape`.
pub fn f32_npy(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    aquant::data::npy_bytes("<f4", shape, &bytes)
}

/// `.npy` bytes of an int64 vector (labels).
pub fn i64_npy(values: &[i64]) -> Vec<u8> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    aquant::data::npy_bytes("<i8", &[values.len()], &bytes)
}

/// `aquant quantize` of the bundled MobileNetV2 into `out`, its 300 ImageNet samples both calibrating and
/// validating, then `extra`.
pub fn quantize_mobilenet_v2(out: &Path, extra: &[&str]) -> Output {
    let val = assets().join("imagenet/val.json");
    quantize_bundled("imagenet/mobilenet_v2.onnx", &val, &val, out, extra)
}

/// `aquant quantize` of the bundled MNIST CNN with its calibration and validation data into `out`, then `extra`.
pub fn quantize_mnist(out: &Path, extra: &[&str]) -> Output {
    let (calib, val) = (
        assets().join("mnist_cnn/calib.json"),
        assets().join("mnist_cnn/val.json"),
    );
    quantize_bundled("mnist_cnn/mnist_cnn.onnx", &calib, &val, out, extra)
}

/// `aquant quantize` of the bundled `model` (a path under assets/) with `calib` and `val` into `out`, then
/// `extra`.
fn quantize_bundled(model: &str, calib: &Path, val: &Path, out: &Path, extra: &[&str]) -> Output {
    let model = assets().join(model);
    let mut args = vec![
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    aquant(&args)
}
