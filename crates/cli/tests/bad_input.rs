//! Bad input gets one clear error line and exit status 2, never a panic (`aquant eval` and the CLI surface; the
//! full malformed-input corpus, with its no-output and untouched-input checks, is `malformed_inputs.rs`).

mod common;

use std::path::Path;

use common::{assert_clean_error, assets, f32_npy, i64_npy, write};

fn mnist() -> String {
    assets()
        .join("mnist_cnn/mnist_cnn.onnx")
        .to_string_lossy()
        .into_owned()
}

fn eval(model: &str, data: &str) -> std::process::Output {
    common::aquant(&["eval", "--model", model, "--data", data, "--quiet"])
}

/// A data spec over `x` (shape `shape`) and `labels`, written in `dir`.
fn spec(dir: &Path, input: &str, shape: &[usize], x: &[f32], labels: &[i64]) -> String {
    write(dir, "x.npy", f32_npy(shape, x));
    write(dir, "y.npy", i64_npy(labels));
    write(
        dir,
        "spec.json",
        format!(r#"{{"format":"npy","inputs":{{"{input}":"x.npy"}},"labels":"y.npy"}}"#),
    )
}

#[test]
fn missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = spec(dir.path(), "input", &[1, 1, 28, 28], &[0.0; 784], &[0]);
    assert_clean_error(&eval("/no/such/model.onnx", &data), "/no/such/model.onnx");
}

#[test]
fn truncated_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(mnist()).unwrap();
    let model = write(dir.path(), "cut.onnx", &bytes[..bytes.len() / 2]);
    let data = spec(dir.path(), "input", &[1, 1, 28, 28], &[0.0; 784], &[0]);
    assert_clean_error(&eval(&model, &data), "not a valid ONNX model");
}

#[test]
fn wrong_input_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = spec(dir.path(), "pixels", &[1, 1, 28, 28], &[0.0; 784], &[0]);
    assert_clean_error(&eval(&mnist(), &data), "the model's inputs are [\"input\"]");
}

#[test]
fn shape_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let data = spec(dir.path(), "input", &[1, 1, 14, 14], &[0.0; 196], &[0]);
    assert_clean_error(&eval(&mnist(), &data), "expects shape [N, 1, 28, 28]");
}

#[test]
fn label_count_differs_from_sample_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = spec(
        dir.path(),
        "input",
        &[2, 1, 28, 28],
        &[0.0; 1568],
        &[0, 1, 2],
    );
    assert_clean_error(&eval(&mnist(), &data), "labels");
}

#[test]
fn empty_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let data = spec(dir.path(), "input", &[0, 1, 28, 28], &[], &[]);
    assert_clean_error(&eval(&mnist(), &data), "empty");
}

#[test]
fn nan_in_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut x = vec![0.5f32; 784];
    x[100] = f32::NAN;
    let data = spec(dir.path(), "input", &[1, 1, 28, 28], &x, &[3]);
    assert_clean_error(&eval(&mnist(), &data), "NaN");
}

#[test]
fn missing_data_spec_and_unknown_spec_key() {
    assert_clean_error(&eval(&mnist(), "/no/such/spec.json"), "/no/such/spec.json");
    let dir = tempfile::tempdir().unwrap();
    let data = write(
        dir.path(),
        "spec.json",
        r#"{"format":"npy","inputs":{"input":"x.npy"},"lables":"y.npy"}"#,
    );
    assert_clean_error(&eval(&mnist(), &data), "lables");
}

#[test]
fn unknown_metric() {
    let data = assets().join("mnist_cnn/val.json");
    let out = common::aquant(&[
        "eval",
        "--model",
        &mnist(),
        "--data",
        data.to_str().unwrap(),
        "--metric",
        "f1",
    ]);
    assert_clean_error(&out, "unknown metric 'f1'");
}

#[test]
fn issue_29_the_binary_has_no_ray_executor_and_says_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mnist_dir = assets().join("mnist_cnn");
    let (calib, val) = (mnist_dir.join("calib.json"), mnist_dir.join("val.json"));
    let out = dir.path().join("out");
    let model = mnist();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "quantize",
            "--model",
            &model,
            "--calib",
            calib.to_str().unwrap(),
        ];
        args.extend(["-o", out.to_str().unwrap(), "--quiet"]);
        args.extend(extra);
        common::aquant(&args)
    };
    let val = val.to_str().unwrap();
    assert_clean_error(
        &run(&["--val", val, "--executor", "ray"]),
        "Python package's aquant command",
    );
    assert_clean_error(
        &run(&["--executor", "ray"]),
        "--executor is for accuracy-aware quantization",
    );
    let unknown = run(&["--val", val, "--executor", "dask"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("expected ray or ray:ADDRESS"));
}
