//! `aquant eval` on the bundled real models gives the top-1 accuracy ONNX Runtime gives
//! (tests/reference/README.md): 0.983 MNIST CNN, 0.8233 MobileNetV2, 0.7300 EfficientNet-Lite0.

mod common;

use common::{aquant, assets, json_stdout};

fn eval(model: &str, data: &str) -> serde_json::Value {
    let model = assets().join(model);
    let data = assets().join(data);
    json_stdout(&aquant(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--metric",
        "top1",
        "--json",
    ]))
}

#[test]
fn mnist_cnn_top1_matches_onnx_runtime() {
    let result = eval("mnist_cnn/mnist_cnn.onnx", "mnist_cnn/val.json");
    assert_eq!(result["samples"], 1000);
    assert_eq!(result["metric"], "top1");
    assert!(
        (result["value"].as_f64().unwrap() - 0.983).abs() < 1e-9,
        "{result}"
    );
}

#[test]
fn mobilenet_v2_top1_matches_onnx_runtime() {
    let result = eval("imagenet/mobilenet_v2.onnx", "imagenet/val.json");
    assert_eq!(result["samples"], 300);
    assert!(
        (result["value"].as_f64().unwrap() - 247.0 / 300.0).abs() < 1e-9,
        "{result}"
    );
}

#[test]
fn efficientnet_lite0_top1_matches_onnx_runtime() {
    let result = eval("imagenet/efficientnet_lite0.onnx", "imagenet/val.json");
    assert!(
        (result["value"].as_f64().unwrap() - 0.73).abs() < 1e-9,
        "{result}"
    );
}

#[test]
fn limit_and_text_output() {
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let data = assets().join("mnist_cnn/val.json");
    let out = aquant(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--limit",
        "10",
        "--quiet",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("top1 = "), "{text}");
    assert!(text.contains("on 10 samples"), "{text}");
}

#[test]
fn inspect_lists_io_and_quantizable_nodes() {
    let model = assets().join("imagenet/mobilenet_v2.onnx");
    let out = aquant(&["inspect", model.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("input:  input [N") || text.contains("input:  input ["),
        "{text}"
    );
    // MobileNetV2 placed for ONNX Runtime: 52 convolutions, the classifier Gemm, the 10 residual Adds (which
    // ONNX Runtime runs as QLinearAdd) and the global average pool.
    assert!(text.contains("quantizable nodes: 64"), "{text}");
    assert_eq!(text.matches(" (Add)").count(), 10, "{text}");
    assert!(
        text.contains("/GlobalAveragePool (GlobalAveragePool)"),
        "{text}"
    );
}
