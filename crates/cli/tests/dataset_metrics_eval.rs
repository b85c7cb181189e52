//! `aquant eval` with the dataset-level built-ins, end to end: the data spec (labels, or `"boxes"` JSON lines),
//! the metric by name, the value. The model is an Identity, so its outputs are the data and the expected
//! values can be worked out by hand. (Agreement with scikit-learn and pycocotools on a larger fixture is
//! `crates/core/tests/dataset_metrics.rs`.)

mod common;

use std::path::Path;

use aquant::builder::ModelBuilder;
use common::{f32_npy, i64_npy, json_stdout, write};

/// `y = Identity(x)` with `x` of shape `[N, dims...]`, saved in `dir`.
fn identity(dir: &Path, dims: &[usize]) -> String {
    let mut shape = vec![None];
    shape.extend(dims.iter().map(|&d| Some(d)));
    let model = ModelBuilder::new(13)
        .input("x", &shape)
        .node("Identity", "identity", &["x"], &["y"])
        .output("y", &shape)
        .build();
    write(dir, "model.onnx", aquant_onnx::encode_model(&model))
}

/// `aquant eval --json` of `model` on `data` with `metric`: the value.
fn eval(model: &str, data: &str, metric: &str) -> f64 {
    let output = common::aquant(&[
        "eval", "--model", model, "--data", data, "--metric", metric, "--json",
    ]);
    let json = json_stdout(&output);
    assert_eq!(json["metric"], metric);
    json["value"].as_f64().unwrap()
}

#[test]
fn map_of_detections_against_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity(dir.path(), &[3, 6]);
    // Image 0: an exact hit of class 0. Image 1: a false positive of class 1 ranked above a hit of IoU 0.9.
    // Each image ends with padding rows.
    #[rustfmt::skip]
    let rows: [f32; 36] = [
        0.0, 0.0, 10.0, 10.0, 0.9, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
        0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
        50.0, 50.0, 60.0, 60.0, 0.95, 1.0,
        0.0, 0.0, 10.0, 9.0, 0.8, 1.0,
        0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
    ];
    write(dir.path(), "x.npy", f32_npy(&[2, 3, 6], &rows));
    write(
        dir.path(),
        "boxes.jsonl",
        "[{\"class\": 0, \"box\": [0, 0, 10, 10]}]\n[{\"class\": 1, \"box\": [0, 0, 10, 10]}]\n",
    );
    let data = write(
        dir.path(),
        "spec.json",
        r#"{"format": "npy", "inputs": {"x": "x.npy"}, "boxes": "boxes.jsonl"}"#,
    );
    // AP50: class 0 is 1, class 1 is 1/2 (precision 1/2 at every recall once monotone).
    assert!((eval(&model, &data, "map50") - 0.75).abs() < 1e-12);
    // Class 1's hit (IoU 0.9) misses at 0.95 only: (1 + 0.5 · 9/10) / 2.
    assert!((eval(&model, &data, "map50_95") - 0.725).abs() < 1e-12);
}

#[test]
fn auroc_and_f1_of_labelled_scores() {
    let dir = tempfile::tempdir().unwrap();
    let model = identity(dir.path(), &[2]);
    // Class-1 minus class-0 logits: 2, 0.5, 0.5, -1 for labels 1, 1, 0, 0: one tie among the four pairs.
    let logits = [0.0, 2.0, 0.0, 0.5, 1.0, 1.5, 1.0, 0.0];
    write(dir.path(), "x.npy", f32_npy(&[4, 2], &logits));
    write(dir.path(), "y.npy", i64_npy(&[1, 1, 0, 0]));
    let data = write(
        dir.path(),
        "spec.json",
        r#"{"format": "npy", "inputs": {"x": "x.npy"}, "labels": "y.npy"}"#,
    );
    assert_eq!(eval(&model, &data, "auroc"), 3.5 / 4.0);
    // Predictions 1, 1, 1, 0: class 0 F1 = 2/3, class 1 F1 = 4/5.
    let f1 = eval(&model, &data, "f1_macro");
    assert!((f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12, "{f1}");
}
