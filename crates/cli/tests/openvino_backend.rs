//! `--backend openvino`: OpenVINO evaluates the bundled models as ONNX Runtime does (top-1 within one
//! sample: its kernels differ), and a QDQ model aquant writes runs in OpenVINO with int8 convolutions, giving
//! aquant's OpenVINO backend the value Python OpenVINO gives.

mod common;
mod ov_common;

use common::{aquant, assets, json_stdout};
use ov_common::ov_eval;

fn eval(backend: &str, model: &std::path::Path, data: &std::path::Path) -> serde_json::Value {
    json_stdout(&aquant(&[
        "eval",
        "--backend",
        backend,
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--metric",
        "top1",
        "--json",
        "--quiet",
    ]))
}

fn top1(result: &serde_json::Value) -> f64 {
    result["value"].as_f64().unwrap()
}

#[test]
fn mnist_cnn_top1_is_onnx_runtimes() {
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let data = assets().join("mnist_cnn/val.json");
    let openvino = eval("openvino", &model, &data);
    let ort = eval("ort", &model, &data);
    assert_eq!(openvino["samples"], 1000);
    assert!(
        (top1(&openvino) - top1(&ort)).abs() <= 1.0 / 1000.0 + 1e-9,
        "{openvino} vs {ort}"
    );
}

#[test]
fn mobilenet_v2_top1_is_onnx_runtimes() {
    let model = assets().join("imagenet/mobilenet_v2.onnx");
    let data = assets().join("imagenet/val.json");
    let openvino = eval("openvino", &model, &data);
    let ort = eval("ort", &model, &data);
    assert_eq!(openvino["samples"], 300);
    assert!(
        (top1(&openvino) - top1(&ort)).abs() <= 1.0 / 300.0 + 1e-9,
        "{openvino} vs {ort}"
    );
}

#[test]
fn a_qdq_model_runs_with_int8_convolutions() {
    let dir = tempfile::tempdir().unwrap();
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let calib = assets().join("mnist_cnn/calib.json");
    let data = assets().join("mnist_cnn/val.json");
    let out = aquant(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--backend",
        "openvino",
        "-o",
        dir.path().to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let quantized = dir.path().join("model.onnx");
    let python = ov_eval(&quantized, &data);
    let convolutions = python["convolutions"].as_object().unwrap();
    assert!(!convolutions.is_empty(), "{python}");
    for (precision, _) in convolutions {
        assert!(
            matches!(precision.as_str(), "u8" | "i8"),
            "a convolution runs in {precision}: {python}"
        );
    }
    let ours = eval("openvino", &quantized, &data);
    assert_eq!(
        top1(&ours),
        python["value"].as_f64().unwrap(),
        "{ours} vs {python}"
    );
}

#[test]
fn a_missing_library_is_one_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aquant"))
        .env("OPENVINO_LIB_PATH", "/nonexistent/libopenvino_c.so")
        .args(["eval", "--backend", "openvino", "--model"])
        .arg(assets().join("mnist_cnn/mnist_cnn.onnx"))
        .arg("--data")
        .arg(assets().join("mnist_cnn/val.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OpenVINO not found") && stderr.contains("OPENVINO_LIB_PATH"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// `aquant eval -c` on a POT config over MNIST whose `engine.device` is `device`, with `--backend backend`.
fn eval_on_device(backend: &str, device: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pot.json");
    let text = serde_json::json!({
        "model": {"model_name": "mnist", "model": assets().join("mnist_cnn/mnist_cnn.onnx")},
        "engine": {"device": device, "validation": assets().join("mnist_cnn/val.json"), "metric": "top1"},
        "compression": {"algorithms": [{"name": "DefaultQuantization", "params": {}}]}
    });
    std::fs::write(&config, text.to_string()).unwrap();
    aquant(&[
        "eval",
        "-c",
        config.to_str().unwrap(),
        "--backend",
        backend,
        "--json",
        "--quiet",
    ])
}

#[test]
fn engine_device_is_honoured_or_refused() {
    let cpu = json_stdout(&eval_on_device("openvino", "CPU"));
    assert_eq!(cpu["value"], 0.983);
    for (backend, device, needle) in [
        (
            "openvino",
            "NPU4000",
            "OpenVINO has no device 'NPU4000' here",
        ),
        (
            "tract",
            "GPU",
            "only backend openvino runs on devices other than the CPU",
        ),
    ] {
        let out = eval_on_device(backend, device);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(needle) && stderr.trim().lines().count() == 1,
            "{stderr}"
        );
    }
}
