//! The Pipeline API example (a user's dataset and metric) runs end to end and its saved model runs in ONNX
//! Runtime with the same accuracy.

mod common;

#[path = "../examples/custom_metric.rs"]
mod custom_metric;

#[test]
fn the_custom_metric_example_quantizes_within_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let measured = custom_metric::run(dir.path(), 0.002).unwrap();
    assert!(
        measured.int8 - measured.fp32 <= 0.002 + 1e-12,
        "{} → {}",
        measured.fp32,
        measured.int8
    );
    let ort = common::ort_eval(
        &measured.saved,
        &common::assets().join("mnist_cnn/val.json"),
    );
    assert!(ort["value"].as_f64().unwrap() > 0.95, "{ort}");
}
