//! OpenVINO IR out (`--output-format ir`, the default for an IR input): the saved IR, in NNCF's form, loads
//! and runs in OpenVINO with the metric the run reported (OpenVINO's own measure of the file), its
//! Convolutions run in int8 (the compiled model's runtime precision), and an accuracy-aware run from the IR
//! reverts what the same run from the ONNX model reverts.
//!
//! What these comparisons depend on, so that they hold on every CPU: OpenVINO's measure is taken under the
//! deployed check's recorded conditions (its `batch`, one thread per inference, f32 float layers:
//! `ov_eval_at`), since on AMX CPUs OpenVINO's int8 results depend on the batch; and "runs in int8" is a
//! structure (every Convolution in `u8` or `i8`), not the kernel a CPU picks (AMX reports some as `i8`).

mod common;
mod ov_common;

use std::path::Path;

use common::{aquant, assert_finished, assets, read_report};
use ov_common::{int8_convolutions, make_ir, ov_eval_at};

/// `aquant quantize` with accuracy control on `backend`; returns the report.
fn quantize(
    backend: &str,
    model: &Path,
    data: &Path,
    calib: &Path,
    drop: &str,
    out: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--val",
        data.to_str().unwrap(),
        "--max-drop",
        drop,
        "--backend",
        backend,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let run = aquant(&args);
    assert_finished(&run, "the IR run");
    read_report(out)
}

fn final_metric(report: &serde_json::Value) -> f64 {
    report["metrics"][0]["final"].as_f64().unwrap()
}

/// OpenVINO's measure of `saved` under the conditions `report`'s deployed check recorded: its batch, one
/// thread, f32 float layers (the only ones aquant's OpenVINO engine on the CPU runs under).
fn ov_eval_as_deployed(saved: &Path, data: &Path, report: &serde_json::Value) -> serde_json::Value {
    let deployed = &report["deployed"];
    assert_eq!(deployed["threads"], 1, "{deployed}");
    assert_eq!(deployed["precision_hint"], "f32", "{deployed}");
    ov_eval_at(saved, data, deployed["batch"].as_u64().unwrap())
}

/// The deployed check's engine and its measure of the saved model.
fn deployed(report: &serde_json::Value) -> (&str, f64) {
    let deployed = &report["deployed"];
    (
        deployed["engine"].as_str().unwrap(),
        deployed["metrics"][0]["value"].as_f64().unwrap(),
    )
}

#[test]
fn mobilenet_v2_from_ir_saves_an_int8_ir_openvino_measures_as_reported() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("imagenet/mobilenet_v2.onnx", dir.path(), false);
    let data = assets().join("imagenet/val.json");
    let from_ir = dir.path().join("from_ir");
    let report = quantize("openvino", &xml, &data, &data, "0.003", &from_ir, &[]);
    let saved = from_ir.join("model.xml");
    assert!(
        saved.is_file()
            && from_ir.join("model.bin").is_file()
            && !from_ir.join("model.onnx").exists()
    );

    // The search ran at --batch 1, the deployed check at its default --deployed-batch 1: one measure.
    assert_eq!(report["deployed"]["batch"], 1);
    let measured = ov_eval_as_deployed(&saved, &data, &report);
    assert_eq!(
        measured["value"].as_f64().unwrap(),
        final_metric(&report),
        "{measured}"
    );
    // The deployed check read the saved IR in OpenVINO: Python OpenVINO's measure of the file.
    assert_eq!(
        deployed(&report),
        ("openvino-ir", measured["value"].as_f64().unwrap())
    );
    let reverted = report["reverted"].as_array().unwrap().len();
    let (int8, total) = int8_convolutions(&measured);
    assert_eq!(total, 52, "{measured}");
    assert!(int8 as usize >= 52 - reverted, "{measured}");

    // The same model given as ONNX, saved as IR (so placed for OpenVINO and searched on the IR, as from the IR
    // input) makes the same search. (Searched as QDQ ONNX, it need not: on AMX CPUs OpenVINO runs some
    // convolutions of its ONNX conversion with other int8 kernels than the same convolutions of the IR.)
    let from_onnx = dir.path().join("from_onnx");
    let onnx_report = quantize(
        "openvino",
        &assets().join("imagenet/mobilenet_v2.onnx"),
        &data,
        &data,
        "0.003",
        &from_onnx,
        &["--output-format", "ir"],
    );
    assert_eq!(report["reverted"], onnx_report["reverted"]);
    assert_eq!(
        report["metrics"][0]["final"],
        onnx_report["metrics"][0]["final"]
    );
}

/// The same acceptance with tract searching: the saved IR is judged by OpenVINO reading it (the deployed
/// check), that judgement is Python OpenVINO's measure of the file and meets the target, and the run from the
/// IR reverts what the run from ONNX reverts. Slow (two tract searches): `cargo test -- --ignored`.
#[test]
#[ignore]
fn mobilenet_v2_from_ir_with_tract_is_judged_on_openvino() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("imagenet/mobilenet_v2.onnx", dir.path(), false);
    let data = assets().join("imagenet/val.json");
    let from_ir = dir.path().join("from_ir");
    let report = quantize("tract", &xml, &data, &data, "0.003", &from_ir, &[]);
    let measured = ov_eval_as_deployed(&from_ir.join("model.xml"), &data, &report);
    let (engine, value) = deployed(&report);
    assert_eq!(
        (engine, value),
        ("openvino-ir", measured["value"].as_f64().unwrap())
    );
    assert_eq!(
        report["deployed"]["target_met"], true,
        "{}",
        report["deployed"]
    );
    assert_eq!(report["target_met"], true);

    let from_onnx = dir.path().join("from_onnx");
    let onnx = assets().join("imagenet/mobilenet_v2.onnx");
    // Placed for OpenVINO, as the run from the IR is.
    let no_check = ["--no-deployed-check", "--deploy", "openvino"];
    let onnx_report = quantize("tract", &onnx, &data, &data, "0.003", &from_onnx, &no_check);
    // The searches agree; OpenVINO's judgement can only have moved more ops back, when it made the search go on.
    let names = |r: &serde_json::Value| -> std::collections::BTreeSet<String> {
        let reverted = r["reverted"].as_array().unwrap();
        reverted
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    if report["deployed"]["continued"] == true {
        assert!(names(&onnx_report).is_subset(&names(&report)));
    } else {
        assert_eq!(names(&report), names(&onnx_report));
    }
}

#[test]
fn output_format_chooses_the_saved_form() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("mnist_cnn/mnist_cnn.onnx", dir.path(), false);
    let onnx = assets().join("mnist_cnn/mnist_cnn.onnx");
    let (calib, data) = (
        assets().join("mnist_cnn/calib.json"),
        assets().join("mnist_cnn/val.json"),
    );
    for (model, format, file) in [(&xml, "onnx", "model.onnx"), (&onnx, "ir", "model.xml")] {
        let out = dir.path().join(format);
        let report = quantize(
            "openvino",
            model,
            &data,
            &calib,
            "0.01",
            &out,
            &["--output-format", format],
        );
        let saved = out.join(file);
        assert!(saved.is_file(), "{format}");
        let measured = ov_eval_at(&saved, &data, 1);
        assert_eq!(
            measured["value"].as_f64().unwrap(),
            final_metric(&report),
            "{format}: {measured}"
        );
        assert_eq!(int8_convolutions(&measured), (3, 3), "{format}: {measured}");
        // Each output is judged by the engine that runs it: ONNX Runtime for ONNX, OpenVINO for the IR.
        let engine = if format == "ir" { "openvino-ir" } else { "ort" };
        assert_eq!(deployed(&report).0, engine, "{format}");
    }
}

#[test]
fn a_model_without_an_ir_form_is_refused_before_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let made = ov_common::python_json("make_encoder.py", &[dir.path().as_os_str()]);
    let model = made["model"].as_str().unwrap();
    let out = dir.path().join("out");
    let run = aquant(&[
        "quantize",
        "--model",
        model,
        "--calib",
        made["data"].as_str().unwrap(),
        "--output-format",
        "ir",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("cannot write the model as an OpenVINO IR")
            && stderr.trim().lines().count() == 1,
        "{stderr}"
    );
    assert!(!out.exists());
}
