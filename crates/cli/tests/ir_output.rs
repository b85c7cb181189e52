//! OpenVINO IR out (`--output-format ir`, the default for an IR input): the saved IR, in NNCF's form, loads
//! and runs in OpenVINO with the metric the run reported (OpenVINO's own measure of the file), its
//! Convolutions run in int8 (the compiled model's runtime precision), and an accuracy-aware run from the IR
//! reverts what the same run from the ONNX model reverts.

mod common;
mod ov_common;

use std::path::Path;

use common::{aquant, assets, read_report};
use ov_common::{make_ir, ov_eval};

/// `aquant quantize` with accuracy control and the OpenVINO backend; returns the report.
fn quantize(
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
        "openvino",
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let run = aquant(&args);
    assert!(
        matches!(run.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    read_report(out)
}

fn final_metric(report: &serde_json::Value) -> f64 {
    report["metrics"][0]["final"].as_f64().unwrap()
}

#[test]
fn mobilenet_v2_from_ir_saves_an_int8_ir_openvino_measures_as_reported() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("imagenet/mobilenet_v2.onnx", dir.path(), false);
    let data = assets().join("imagenet/val.json");
    let from_ir = dir.path().join("from_ir");
    let report = quantize(&xml, &data, &data, "0.003", &from_ir, &[]);
    let saved = from_ir.join("model.xml");
    assert!(
        saved.is_file()
            && from_ir.join("model.bin").is_file()
            && !from_ir.join("model.onnx").exists()
    );

    let measured = ov_eval(&saved, &data);
    assert_eq!(
        measured["value"].as_f64().unwrap(),
        final_metric(&report),
        "{measured}"
    );
    let reverted = report["reverted"].as_array().unwrap().len();
    let convolutions = measured["convolutions"].as_object().unwrap();
    let int8: u64 = ["u8", "i8"]
        .iter()
        .filter_map(|p| convolutions.get(*p)?.as_u64())
        .sum();
    let total: u64 = convolutions.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, 52, "{measured}");
    assert!(int8 as usize >= 52 - reverted, "{measured}");

    let from_onnx = dir.path().join("from_onnx");
    let onnx_report = quantize(
        &assets().join("imagenet/mobilenet_v2.onnx"),
        &data,
        &data,
        "0.003",
        &from_onnx,
        &[],
    );
    assert_eq!(report["reverted"], onnx_report["reverted"]);
    assert_eq!(
        report["metrics"][0]["final"],
        onnx_report["metrics"][0]["final"]
    );
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
            model,
            &data,
            &calib,
            "0.01",
            &out,
            &["--output-format", format],
        );
        let saved = out.join(file);
        assert!(saved.is_file(), "{format}");
        let measured = ov_eval(&saved, &data);
        assert_eq!(
            measured["value"].as_f64().unwrap(),
            final_metric(&report),
            "{format}: {measured}"
        );
        assert_eq!(
            measured["convolutions"],
            serde_json::json!({"u8": 3}),
            "{format}: {measured}"
        );
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
