//! The Pipeline API example (examples/custom_metric.rs: a user dataset type and a user metric) runs
//! accuracy control end to end, and what it saves runs in ONNX Runtime.

mod common;

#[path = "../../../examples/custom_metric.rs"]
mod example;

#[test]
fn custom_dataset_and_metric_run_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let summary = example::run(dir.path()).unwrap();
    assert!(
        summary.fp32 > 0.9,
        "FP32 true-class probability {}",
        summary.fp32
    );
    assert!(
        summary.fp32 - summary.r#final <= 0.0001 + 1e-12,
        "target: {} → {}",
        summary.fp32,
        summary.r#final
    );
    assert!(
        summary.int8 < summary.fp32 - 0.0001,
        "INT8 misses the target"
    );
    assert!(summary.reverted >= 1, "accuracy control reverted something");
    assert_eq!(summary.saved, dir.path().join("mnist_int8.onnx"));
    let top1 = common::ort_eval(&summary.saved, &common::assets().join("mnist_cnn/val.json"));
    assert!(top1["value"].as_f64().unwrap() > 0.97);
}
