use std::path::{Path, PathBuf};

use super::*;
use crate::numerics::{Aggregator, Granularity, RangeEstimator, Statistic};
use crate::quantize::{Deploy, Preset, QuantizationParams, TargetDevice};
use crate::search::{AccuracyControlParams, DropType, MetricTarget};

const MINIMAL: &str = r#"{"model": {"model": "m.onnx"}, "engine": {"calibration": "calib.json"},
    "compression": {"algorithms": [{"name": "DefaultQuantization"}]}}"#;

/// An accuracy-aware config whose params are `params`.
fn accuracy_aware(params: &str) -> String {
    format!(
        r#"{{"model": {{"model": "m.onnx"}}, "engine": {{"validation": "val.json"}},
        "compression": {{"algorithms": [{{"name": "AccuracyAwareQuantization", "params": {params}}}]}}}}"#
    )
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_minimal_config_takes_every_default() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.model, PathBuf::from("m.onnx"));
    assert_eq!(config.calibration, DataSource::File("calib.json".into()));
    assert_eq!(config.validation, None);
    assert_eq!(config.metrics, ["top1"]);
    assert_eq!(
        config.algorithm.quantization(),
        &QuantizationParams::default()
    );
    assert_eq!(config.algorithm.control(), None);
}

#[test]
fn an_unknown_key_names_its_path_and_the_nearest_known_key() {
    let message = error(&accuracy_aware(r#"{"maximal_drp": 0.02}"#));
    assert_eq!(
        message,
        "unknown key `maximal_drp` at `compression.algorithms[0].params.maximal_drp`; did you mean `maximal_drop`?"
    );
    assert!(error(r#"{"modle": {}}"#).contains("did you mean `model`?"));
}

#[test]
fn control_keys_are_unknown_to_default_quantization() {
    let text = MINIMAL.replace(
        r#""name": "DefaultQuantization""#,
        r#""name": "DefaultQuantization", "params": {"maximal_drop": 0.1}"#,
    );
    assert!(error(&text).starts_with("unknown key `maximal_drop`"));
}

#[test]
fn a_wrong_type_names_the_path_and_the_expected_type() {
    let message = error(&accuracy_aware(r#"{"maximal_drop": "big"}"#));
    assert!(
        message
            .starts_with("`compression.algorithms[0].params.maximal_drop`: invalid type: string"),
        "{message}"
    );
    assert!(message.contains("f64"), "{message}");
    assert!(error(r#"{"model": []}"#).contains("`model`: expected an object, found an array"));
}

#[test]
fn a_negative_drop_and_other_validation_errors_are_one_liners() {
    let message = error(&accuracy_aware(r#"{"maximal_drop": -0.1}"#));
    assert!(
        message.contains("maximal_drop must be a number ≥ 0"),
        "{message}"
    );
    let no_validation =
        accuracy_aware("{}").replace(r#""validation": "val.json""#, r#""calibration": "c.json""#);
    assert!(error(&no_validation).contains("needs a validation dataset"));
    let unknown = MINIMAL.replace("DefaultQuantization", "BestQuantization");
    assert!(error(&unknown).contains("unknown algorithm 'BestQuantization'"));
    let gna = MINIMAL.replace(r#""algorithms""#, r#""target_device": "GNA", "algorithms""#);
    let Algorithm::Default(gna) = parse(&gna).unwrap().algorithm else {
        panic!("DefaultQuantization")
    };
    assert_eq!(gna.target_device, TargetDevice::Gna);
    // engine.device is kept for the backend to honour (OpenVINO's devices); an empty name is refused.
    let gpu = MINIMAL.replace(r#""engine": {"#, r#""engine": {"device": "GPU", "#);
    assert_eq!(parse(&gpu).unwrap().device.as_deref(), Some("GPU"));
    let empty = MINIMAL.replace(r#""engine": {"#, r#""engine": {"device": " ", "#);
    assert!(error(&empty).contains("`engine.device`"));
    // Weights belong to an OpenVINO IR (POT's layout); an ONNX model carries its own.
    let weights = MINIMAL.replace(
        r#""model": "m.onnx""#,
        r#""model": "m.onnx", "weights": "m.bin""#,
    );
    assert!(error(&weights).contains("`model.weights`"));
    let ir = MINIMAL.replace(
        r#""model": "m.onnx""#,
        r#""model": "m.xml", "weights": "w/m.bin""#,
    );
    let config = parse(&ir).unwrap().rebase(Path::new("d"));
    assert_eq!(config.model, Path::new("d/m.xml"));
    assert_eq!(config.weights.as_deref(), Some(Path::new("d/w/m.bin")));
    for message in [error(&weights), error("{"), error("[1]")] {
        assert_eq!(message.lines().count(), 1, "{message}");
    }
}

#[test]
fn pot_params_map_onto_the_library_params() {
    let config = parse(&accuracy_aware(
        r#"{"preset": "mixed", "target_device": "CPU", "use_fast_bias": false, "stat_subset_size": 64,
            "ignored": {"scope": ["conv1"], "operations": [{"type": "Add"}]},
            "weights": {"granularity": "pertensor"},
            "activations": {"range_estimator": {"min": {"type": "min", "aggregator": "min"},
                                                "max": {"type": "max", "aggregator": "max"}}},
            "maximal_drop": 0.5, "drop_type": "relative", "max_iter_num": 3,
            "metrics": [{"name": "top1", "baseline_value": 0.9}]}"#,
    ))
    .unwrap();
    let q = &config.algorithm.quantization();
    assert_eq!(q.preset, Preset::Mixed);
    assert_eq!(q.target_device, TargetDevice::Cpu);
    assert!(!q.fast_bias_correction);
    assert_eq!(q.stat_subset_size, 64);
    assert_eq!(q.ignored_scope.names, ["conv1"]);
    assert_eq!(q.ignored_scope.types, ["Add"]);
    assert_eq!(q.weights.granularity, Granularity::PerTensor);
    assert_eq!(
        q.activations.range_estimator,
        Some(RangeEstimator::min_max())
    );
    let c = config.algorithm.control().unwrap().clone();
    assert_eq!(c.maximal_drop, 0.5.into());
    assert_eq!(c.drop_type, DropType::Relative);
    assert_eq!(c.max_iter_num, Some(3));
    assert_eq!(
        c.metrics,
        [MetricTarget {
            name: "top1".into(),
            baseline_value: Some(0.9)
        }]
    );
    assert_eq!(config.calibration, config.validation.unwrap());
}

#[test]
fn the_full_spec_example_spells_out_the_defaults() {
    let text = include_str!("../../../../examples/configs/mobilenet_v2_accuracy_aware_spec.json");
    let config = parse(text).unwrap();
    let mut expected = QuantizationParams::default();
    expected.activations.range_estimator = Some(RangeEstimator {
        min: crate::numerics::Estimator::new(Statistic::Min, Aggregator::Mean),
        max: crate::numerics::Estimator::new(Statistic::Max, Aggregator::Mean),
    });
    assert_eq!(config.algorithm.quantization(), &expected);
    let control = config.algorithm.control().unwrap().clone();
    assert_eq!(
        control,
        AccuracyControlParams {
            maximal_drop: 0.003.into(),
            metrics: vec![MetricTarget {
                name: "top1".into(),
                baseline_value: None
            }],
            ..Default::default()
        }
    );
}

#[test]
fn load_resolves_paths_against_the_config_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.json");
    std::fs::write(
        &path,
        MINIMAL.replace(
            r#""calibration": "calib.json""#,
            r#""calibration": {"format": "npy", "inputs": {"x": "x.npy"}}"#,
        ),
    )
    .unwrap();
    let config = load(&path).unwrap();
    assert_eq!(config.model, dir.path().join("m.onnx"));
    assert!(
        matches!(config.calibration, DataSource::Inline { ref base_dir, .. } if base_dir == dir.path())
    );
    assert!(load(Path::new("/nonexistent/c.json"))
        .unwrap_err()
        .to_string()
        .starts_with("reading config"));
}

#[test]
fn no_input_panics() {
    for text in [
        "",
        "null",
        "{\"model\": null}",
        "{\"compression\": {\"algorithms\": 3}}",
        "\u{0}",
        "[[[[",
        "1e999",
    ] {
        assert!(parse(text).is_err(), "{text}");
    }
}

#[test]
fn saturation_fix_takes_pot_and_nncf_spellings() {
    use crate::quantize::OverflowFix;
    let fix = |value: &str| {
        parse(&accuracy_aware(&format!(
            r#"{{"saturation_fix": "{value}"}}"#
        )))
        .unwrap()
        .algorithm
        .quantization()
        .effective_overflow_fix()
    };
    assert_eq!(fix("first_layer"), OverflowFix::FirstLayer);
    assert_eq!(fix("first_layer_only"), OverflowFix::FirstLayer);
    assert_eq!(fix("all"), OverflowFix::Enable);
    assert_eq!(fix("no"), OverflowFix::Disable);
    assert_eq!(fix("auto"), OverflowFix::Auto);
    let default = parse(&accuracy_aware("{}"))
        .unwrap()
        .algorithm
        .quantization()
        .clone();
    assert_eq!(default.overflow_fix, None);
    // Deployed on ONNX Runtime (an ONNX model's engine): the layers measured to saturate; on OpenVINO, whose
    // kernels the saturation analysis does not model, POT's and NNCF's first layer.
    assert_eq!(default.effective_overflow_fix(), OverflowFix::Auto);
    let on_openvino = QuantizationParams {
        deploy: Some(Deploy::Openvino),
        ..default.clone()
    };
    assert_eq!(
        on_openvino.effective_overflow_fix(),
        OverflowFix::FirstLayer
    );
    assert!(error(&accuracy_aware(r#"{"saturation_fix": "half"}"#)).contains("saturation_fix"));
    // Halving means nothing for asymmetric weights: asked for explicitly, it is refused.
    let asymmetric =
        accuracy_aware(r#"{"saturation_fix": "all", "weights": {"mode": "asymmetric"}}"#);
    assert!(error(&asymmetric).contains("symmetric 8-bit"));
    let q = parse(&accuracy_aware(r#"{"weights": {"mode": "asymmetric"}}"#))
        .unwrap()
        .algorithm
        .quantization()
        .clone();
    assert_eq!(q.effective_overflow_fix(), OverflowFix::Disable);
}

#[test]
fn nncf_spellings_are_aliases_of_pot_keys() {
    let config = parse(&accuracy_aware(
        r#"{"max_drop": 0.02, "max_num_iterations": 2, "subset_size": 64, "overflow_fix": "disable",
            "ignored_scope": {"names": ["a"], "types": ["Add"]}}"#,
    ))
    .unwrap();
    let control = config.algorithm.control().unwrap();
    assert_eq!(
        (control.maximal_drop.tightest(), control.max_iter_num),
        (0.02, Some(2))
    );
    let q = config.algorithm.quantization();
    assert_eq!(q.stat_subset_size, 64);
    assert_eq!(q.ignored_scope.names, ["a"]);
    assert_eq!(q.ignored_scope.types, ["Add"]);
}

#[test]
fn a_setting_given_under_two_names_is_refused() {
    let message = error(&accuracy_aware(
        r#"{"use_fast_bias": false, "fast_bias_correction": true}"#,
    ));
    assert!(
        message.contains("already given under another name"),
        "{message}"
    );
}

#[test]
fn nested_keys_are_checked_even_when_null() {
    let message = error(&accuracy_aware(r#"{"weights": {"level_lo": null}}"#));
    assert_eq!(
        message,
        "unknown key `level_lo` at `compression.algorithms[0].params.weights.level_lo`; did you mean `level_low`?"
    );
    let message = error(&accuracy_aware(
        r#"{"ignored": {"operations": [{"typ": "Add"}]}}"#,
    ));
    assert!(
        message.contains("`compression.algorithms[0].params.ignored.operations[0].typ`")
            && message.contains("did you mean `type`?"),
        "{message}"
    );
}

#[test]
fn the_precision_ladder_is_the_fallback_key() {
    use crate::quantize::Precision;
    let config = parse(&accuracy_aware(r#"{"fallback": ["W8A16", "fp32"]}"#)).unwrap();
    let Algorithm::AccuracyAware { control, .. } = config.algorithm else {
        panic!("AccuracyAwareQuantization")
    };
    assert_eq!(control.fallback, [Precision::W8A16, Precision::Fp32]);
    let alias = parse(&accuracy_aware(
        r#"{"precision_ladder": ["w16a16", "fp32"]}"#,
    ))
    .unwrap();
    let Algorithm::AccuracyAware { control, .. } = alias.algorithm else {
        panic!("AccuracyAwareQuantization")
    };
    assert_eq!(control.fallback, [Precision::W16A16, Precision::Fp32]);
    assert!(error(&accuracy_aware(r#"{"fallback": ["int4"]}"#))
        .contains("'int4' is not a precision step"));
    assert!(error(&accuracy_aware(r#"{"fallback": ["fp32", "w8a16"]}"#))
        .contains("fp32 must be the last step"));
    let gna = accuracy_aware(r#"{"preset": "accuracy"}"#)
        .replace(r#""algorithms""#, r#""target_device": "GNA", "algorithms""#);
    assert!(parse(&gna).is_ok());
    assert!(error(&accuracy_aware(r#"{"preset": "accuracy"}"#)).contains("POT's GNA preset"));
}

#[test]
fn maximal_drop_takes_a_list_of_targets() {
    let config = parse(&accuracy_aware(r#"{"maximal_drop": [0.01, 0.001, 0.003]}"#)).unwrap();
    let control = config.algorithm.control().unwrap();
    assert!(control.maximal_drop.several());
    assert_eq!(control.maximal_drop.tightest(), 0.001);
    assert_eq!(control.maximal_drop.looser(), [0.003, 0.01]);
    let message = error(&accuracy_aware(r#"{"maximal_drop": [0.01, "big"]}"#));
    assert!(message.contains("maximal_drop"), "{message}");
    let message = error(&accuracy_aware(r#"{"max_drop": []}"#));
    assert!(message.contains("at least one target"), "{message}");
}
