//! POT-layout configs end to end: the example configs run and their models load in ONNX Runtime, a config
//! and the equivalent flags give the same bytes and report, and config mistakes are one clean error line.

mod common;

use std::path::{Path, PathBuf};

use common::{aquant, assert_clean_error, assets, json_stdout, ort_eval, read_report, write};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/configs")
        .join(name)
}

fn quantize_config(config: &Path, output: &Path) -> std::process::Output {
    aquant(&[
        "quantize",
        "-c",
        config.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--quiet",
    ])
}

fn assert_success(output: &std::process::Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The report without what legitimately differs between two identical runs (time, work counters, paths).
fn comparable(mut report: serde_json::Value) -> serde_json::Value {
    for key in ["timings_s", "profile", "evaluations", "output", "model"] {
        report.as_object_mut().unwrap().remove(key);
    }
    common::without_latency(report)
}

fn mnist_top1_in_onnx_runtime(model: &Path) -> f64 {
    ort_eval(model, &assets().join("mnist_cnn/val.json"))["value"]
        .as_f64()
        .unwrap()
}

#[test]
fn mnist_default_config_runs_and_its_model_loads_in_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    assert_success(&quantize_config(&example("mnist_default.json"), dir.path()));
    assert_eq!(read_report(dir.path())["algorithm"], "DefaultQuantization");
    assert!(mnist_top1_in_onnx_runtime(&dir.path().join("model.onnx")) > 0.95);
}

#[test]
fn mnist_accuracy_aware_config_equals_the_equivalent_flags() {
    let (by_config, by_flags) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_success(&quantize_config(
        &example("mnist_accuracy_aware.json"),
        by_config.path(),
    ));
    let mnist = assets().join("mnist_cnn");
    assert_success(&aquant(&[
        "quantize",
        "--model",
        mnist.join("mnist_cnn.onnx").to_str().unwrap(),
        "--calib",
        mnist.join("calib.json").to_str().unwrap(),
        "--val",
        mnist.join("val.json").to_str().unwrap(),
        "--metric",
        "top1",
        "--max-drop",
        "0.01",
        "--preset",
        "performance",
        "--stat-subset-size",
        "300",
        "-o",
        by_flags.path().to_str().unwrap(),
        "--quiet",
    ]));
    let model = |dir: &Path| std::fs::read(dir.join("model.onnx")).unwrap();
    assert!(
        model(by_config.path()) == model(by_flags.path()),
        "model.onnx differs"
    );
    let config_report = read_report(by_config.path());
    assert_eq!(config_report["algorithm"], "AccuracyAwareQuantization");
    assert_eq!(
        comparable(config_report),
        comparable(read_report(by_flags.path()))
    );
    assert!(mnist_top1_in_onnx_runtime(&by_config.path().join("model.onnx")) > 0.95);
}

#[test]
fn eval_with_a_config_uses_its_model_validation_set_and_metric() {
    let config = example("mnist_accuracy_aware.json");
    let fp32 = json_stdout(&aquant(&["eval", "-c", config.to_str().unwrap(), "--json"]));
    assert_eq!(fp32["metric"], "top1");
    assert_eq!(fp32["samples"], 1000);
    let by_flags = json_stdout(&aquant(&[
        "eval",
        "--model",
        assets().join("mnist_cnn/mnist_cnn.onnx").to_str().unwrap(),
        "--data",
        assets().join("mnist_cnn/val.json").to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(fp32["value"], by_flags["value"]);
}

/// Takes about 90 s.
#[test]
#[ignore]
fn mobilenet_v2_spec_config_runs_and_its_model_loads_in_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    assert_success(&quantize_config(
        &example("mobilenet_v2_accuracy_aware_spec.json"),
        dir.path(),
    ));
    assert_eq!(read_report(dir.path())["target_met"], true);
    let val = assets().join("imagenet/val.json");
    let fp32 = ort_eval(&assets().join("imagenet/mobilenet_v2.onnx"), &val)["value"]
        .as_f64()
        .unwrap();
    let int8 = ort_eval(&dir.path().join("model.onnx"), &val)["value"]
        .as_f64()
        .unwrap();
    assert!(fp32 - int8 <= 0.003 + 1e-9, "FP32 {fp32}, INT8 {int8}");
}

/// A MNIST accuracy-aware config (absolute paths) whose params are `params`, with calibration set `calib`.
fn mnist_config(params: &str, calib: &Path) -> String {
    let mnist = assets().join("mnist_cnn");
    serde_json::json!({
        "model": {"model_name": "mnist", "model": mnist.join("mnist_cnn.onnx")},
        "engine": {"calibration": calib, "validation": mnist.join("val.json"), "metric": "top1"},
        "compression": {"algorithms": [{
            "name": "AccuracyAwareQuantization",
            "params": serde_json::from_str::<serde_json::Value>(params).unwrap(),
        }]},
    })
    .to_string()
}

fn config_error(params: &str, calib: &Path, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.json", mnist_config(params, calib));
    let output = dir.path().join("out");
    assert_clean_error(&quantize_config(Path::new(&config), &output), needle);
}

#[test]
fn config_mistakes_are_one_clean_error_line() {
    let calib = assets().join("mnist_cnn/calib.json");
    config_error(
        r#"{"maximal_drp": 0.01}"#,
        &calib,
        "unknown key `maximal_drp` at `compression.algorithms[0].params.maximal_drp`; did you mean `maximal_drop`?",
    );
    config_error(
        r#"{"stat_subset_size": "all"}"#,
        &calib,
        "`compression.algorithms[0].params.stat_subset_size`: invalid type: string",
    );
    config_error(
        r#"{"maximal_drop": -0.01}"#,
        &calib,
        "maximal_drop must be a number ≥ 0",
    );
    config_error(
        r#"{"maximal_drop": 0.01}"#,
        &assets().join("mnist_cnn/no_such_calib.json"),
        "no_such_calib.json",
    );
}

#[test]
fn a_config_with_a_model_flag_is_refused() {
    let output = aquant(&[
        "quantize",
        "-c",
        example("mnist_default.json").to_str().unwrap(),
        "--model",
        "other.onnx",
        "-o",
        "unused",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be used with"));
}
