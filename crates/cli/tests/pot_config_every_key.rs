//! A config spelling out every AccuracyAwareQuantization parameter under its POT name, with values away from
//! the defaults and a target that forces reverts, gives the same bytes and report as the equivalent flags.

mod common;

use std::path::Path;

use common::{aquant, assets, write};

/// The run-dependent parts of a report: wall times, the engine's profile and the paths given.
fn without_run_details(mut report: serde_json::Value) -> serde_json::Value {
    let object = report.as_object_mut().unwrap();
    for key in ["timings_s", "profile", "model", "output"] {
        object.remove(key);
    }
    common::without_latency(report)
}

#[test]
fn a_pot_config_gives_the_same_model_and_report_as_the_equivalent_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = assets().join("mnist_cnn");
    let (model, calib, val) = (
        mnist.join("mnist_cnn.onnx"),
        mnist.join("calib.json"),
        mnist.join("val.json"),
    );
    let config = serde_json::json!({
        "model": {"model_name": "mnist_cnn", "model": model, "weights": ""},
        "engine": {"device": "CPU", "calibration": calib, "validation": val, "metric": ["nmse", "top1"]},
        "compression": {"target_device": "CPU", "algorithms": [{
            "name": "AccuracyAwareQuantization",
            "params": {
                "preset": "mixed", "stat_subset_size": 200, "use_fast_bias": false,
                "weights": {"granularity": "pertensor"},
                "activations": {"range_estimator": {"min": {"type": "min", "aggregator": "min"},
                                                    "max": {"type": "max", "aggregator": "max"}}},
                "base_algorithm": "DefaultQuantization",
                "maximal_drop": 0.0002, "drop_type": "absolute", "ranking_subset_size": 100,
                "max_iter_num": 3, "use_prev_if_drop_increase": true, "convert_to_mixed_preset": false,
                "metrics": [{"name": "nmse"}, {"name": "top1", "baseline_value": null}],
                "metric_subset_ratio": 0.5, "tune_hyperparams": false,
                "restore_mode": "activations_and_weights"
            }
        }]}
    });
    let config_path = write(dir.path(), "config.json", config.to_string());
    let (by_config, by_flags) = (dir.path().join("config"), dir.path().join("flags"));
    let from_config = aquant(&[
        "quantize",
        "-c",
        &config_path,
        "-o",
        by_config.to_str().unwrap(),
        "-q",
    ]);
    let from_flags = aquant(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--metric",
        "nmse,top1",
        "--target-device",
        "CPU",
        "--preset",
        "mixed",
        "--stat-subset-size",
        "200",
        "--no-fast-bias-correction",
        "--weights-granularity",
        "pertensor",
        "--range-estimator",
        "minmax",
        "--max-drop",
        "0.0002",
        "--ranking-subset-size",
        "100",
        "--max-iter",
        "3",
        "-o",
        by_flags.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(from_config.status.code(), from_flags.status.code());
    assert_eq!(
        common::summary_without_latency(&from_config),
        common::summary_without_latency(&from_flags)
    );
    let model_bytes = |dir: &Path| std::fs::read(dir.join("model.onnx")).unwrap();
    assert!(
        model_bytes(&by_config) == model_bytes(&by_flags),
        "the models differ"
    );
    let report = |dir: &Path| {
        without_run_details(
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap(),
        )
    };
    assert_eq!(report(&by_config), report(&by_flags));
    assert!(
        !report(&by_config)["steps"].as_array().unwrap().is_empty(),
        "something was reverted"
    );
}
