//! Quantized must mean faster (issue #25): ONNX Runtime runs aquant's default INT8 models in integer kernels.
//!
//! ONNX Runtime fuses a QDQ model only where its QDQ selectors find their patterns; elsewhere it keeps the float
//! op beside `DequantizeLinear` and the INT8 model runs at FP32 speed. Timing would depend on the CPU, so these
//! tests read ONNX Runtime's optimized graph instead (`scripts/ort_fusion.py`, `ORT_ENABLE_EXTENDED`): no
//! Conv/Gemm/MatMul keeps a weight in float, and no DequantizeLinear feeds a QuantizeLinear, on any machine.
//!
//! Where ONNX Runtime's QDQ rules do not cross a value-preserving op, the export moves the quantizer: before a
//! zero `Pad` (EfficientNet-Lite0's, before its depthwise Convs), which ONNX Runtime then folds into the Conv,
//! and onto both sides of a `Flatten` (the MNIST CNN's last Conv). Every bundled model runs wholly in integer
//! kernels.

mod common;
mod ov_common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{aquant, assert_finished, assets, ort_fusion};

/// Quantizes `model` with the defaults (plus `extra` arguments) into `out` and returns ONNX Runtime's view of
/// the saved model.
fn quantize(model: &str, calib: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let (model, calib) = (assets().join(model), assets().join(calib));
    let args = [
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ];
    let result = aquant(&[&args[..], extra].concat());
    assert_finished(&result, "the ORT run");
    ort_fusion(&out.join("model.onnx"))
}

fn names(value: &serde_json::Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The weighted ops ONNX Runtime left in float, after checking that no DQ→Q pair is left.
fn float_weighted(graph: &serde_json::Value) -> BTreeSet<String> {
    assert!(
        names(&graph["dq_q_pairs"]).is_empty(),
        "DequantizeLinear→QuantizeLinear pairs: {}",
        graph["dq_q_pairs"]
    );
    names(&graph["float_weighted"])
}

/// The report's count of float nodes (the deployed check's, read by aquant from ONNX Runtime's optimized graph)
/// is the one the script finds.
fn assert_report_counts_float_ops(out: &Path, graph: &serde_json::Value) {
    let report = common::read_report(out);
    let float_ops = &report["deployed"]["latency"]["float_ops"];
    assert_eq!(
        float_ops["count"], graph["float_compute"],
        "{float_ops} vs {graph}"
    );
    let weighted = names(&float_ops["weighted"]);
    assert_eq!(
        weighted,
        names(&graph["float_weighted"]),
        "{float_ops} vs {graph}"
    );
}

#[test]
fn mobilenet_v2_runs_wholly_in_integer_kernels() {
    let out = tempfile::tempdir().unwrap();
    let graph = quantize(
        "imagenet/mobilenet_v2.onnx",
        "imagenet/val.json",
        out.path(),
        &[],
    );
    assert_eq!(float_weighted(&graph), BTreeSet::new(), "{graph}");
    assert_eq!(graph["float_compute"], 0, "{graph}");
    // Every Conv, the residual Adds and the pooling: the blocks stay in int8 from end to end.
    assert_eq!(graph["ops"]["QLinearConv"], 52, "{graph}");
    assert_eq!(graph["ops"]["QLinearAdd"], 10, "{graph}");
    assert_eq!(graph["ops"]["QLinearGlobalAveragePool"], 1, "{graph}");
    assert_eq!(graph["ops"]["QGemm"], 1, "{graph}");
}

#[test]
fn efficientnet_lite0_runs_wholly_in_integer_kernels() {
    let out = tempfile::tempdir().unwrap();
    let graph = quantize(
        "imagenet/efficientnet_lite0.onnx",
        "imagenet/val.json",
        out.path(),
        &[],
    );
    assert_eq!(float_weighted(&graph), BTreeSet::new(), "{graph}");
    assert_eq!(graph["float_compute"], 0, "{graph}");
    // The Pads before the depthwise Convs are folded into them.
    assert_eq!(graph["ops"]["QLinearConv"], 49, "{graph}");
    assert_eq!(
        graph["ops"]["QLinearAdd"], 9,
        "residual Adds in int8: {graph}"
    );
}

#[test]
fn mnist_cnn_runs_wholly_in_integer_kernels() {
    let out = tempfile::tempdir().unwrap();
    let graph = quantize(
        "mnist_cnn/mnist_cnn.onnx",
        "mnist_cnn/calib.json",
        out.path(),
        &[],
    );
    assert_eq!(float_weighted(&graph), BTreeSet::new(), "{graph}");
    assert_eq!(graph["float_compute"], 0, "{graph}");
    assert_eq!(graph["ops"]["QLinearConv"], 3, "{graph}");
}

#[test]
fn an_encoder_is_quantized_for_onnx_runtime_beside_its_position_embedding() {
    // The position embedding is gathered by sequence length (Shape → Range → Gather): the same for every
    // sample, with no batch axis, so the Add of token and position embeddings is not an Add of activations
    // and gets no quantizer (calibrating one failed: "an output has 12 rows for a batch of 1").
    let dir = tempfile::tempdir().unwrap();
    let made = ov_common::python_json("make_encoder.py", &[dir.path().as_os_str()]);
    let out = dir.path().join("out");
    let (model, data) = (
        made["model"].as_str().unwrap(),
        made["data"].as_str().unwrap(),
    );
    let run = aquant(&[
        "quantize",
        "--model",
        model,
        "--calib",
        data,
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let saved = aquant_onnx::load_model(&out.join("model.onnx")).unwrap();
    let embedding_add = saved
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .find(|n| n.output.iter().any(|o| o == "emb/sum"))
        .expect("the embedding Add");
    assert_eq!(embedding_add.input, vec!["emb/words", "emb/pos"]);
    let graph = ort_fusion(&out.join("model.onnx"));
    assert!(
        graph["ops"]["MatMulIntegerToFloat"].as_u64() > Some(0),
        "{graph}"
    );
}

#[test]
fn openvino_deployment_keeps_pots_placement() {
    // POT's ANY leaves residual Adds in float: a Conv feeding one keeps ONNX Runtime from fusing it.
    let out = tempfile::tempdir().unwrap();
    let graph = quantize(
        "imagenet/mobilenet_v2.onnx",
        "imagenet/val.json",
        out.path(),
        &["--deploy", "openvino"],
    );
    assert!(graph["ops"].get("QLinearAdd").is_none(), "{graph}");
    assert!(!float_weighted(&graph).is_empty(), "{graph}");
}

#[test]
fn after_accuracy_control_only_reverted_ops_and_their_producers_compute_in_float() {
    // A reverted op reads FP32 values, so the quantized op before it has no output quantizer and ONNX Runtime
    // keeps it in float too (here fc1, whose Gemm it fuses with the Relu before looking for QDQ patterns);
    // everything else stays in integer kernels.
    let out = tempfile::tempdir().unwrap();
    let val = assets().join("mnist_cnn/val.json");
    let graph = quantize(
        "mnist_cnn/mnist_cnn.onnx",
        "mnist_cnn/calib.json",
        out.path(),
        &[
            "--val",
            val.to_str().unwrap(),
            "--metric",
            "nmse",
            "--max-drop",
            "0.0",
            "--max-iter",
            "1",
        ],
    );
    let report = common::read_report(out.path());
    let reverted = names(&report["reverted"]);
    assert_eq!(reverted, BTreeSet::from(["/fc2/Gemm".to_string()]));
    let float = float_weighted(&graph);
    let expected: BTreeSet<String> = ["fused /fc1/Gemm", "/fc2/Gemm"].map(String::from).into();
    assert_eq!(float, expected, "{graph}");
    assert_report_counts_float_ops(out.path(), &graph);
}
