//! The accuracy / size / latency front and several targets in one run (issue 31), on the bundled MNIST CNN:
//! its NMSE against FP32 needs four of five reverts to come within 0.0001, so a run walks a path of several
//! models.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{assert_clean_error, assets, quantize_mnist, read_report};

/// The three targets of the tests, tightest not first (the order given does not matter).
const TARGETS: &str = "0.0003,0.00003,0.0001";

/// The report of a run controlling the NMSE, and what it printed.
fn nmse_run(out: &Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["--metric", "nmse", "--quiet"];
    args.extend_from_slice(extra);
    let output = quantize_mnist(out, &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        read_report(out),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The saved model's NMSE against FP32 on the validation set, as ONNX Runtime measures it.
fn nmse_on_onnx_runtime(model: &Path) -> f64 {
    let mnist = assets().join("mnist_cnn");
    let output = common::aquant(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        mnist.join("val.json").to_str().unwrap(),
        "--metric",
        "nmse",
        "--reference",
        mnist.join("mnist_cnn.onnx").to_str().unwrap(),
        "--backend",
        "ort",
        "--json",
    ]);
    common::json_stdout(&output)["value"].as_f64().unwrap()
}

#[test]
fn the_front_holds_every_model_with_what_it_costs() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = nmse_run(dir.path(), &["--max-drop", "0.0001"]);
    let front = report["front"].as_array().unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(front.len(), steps.len() + 2, "FP32, INT8, then each step");
    assert_eq!(
        (front[0]["label"].as_str(), front[1]["label"].as_str()),
        (Some("FP32"), Some("INT8"))
    );
    assert_eq!(front[0]["bytes"], report["model_bytes"]["fp32"]);
    let baseline = &report["metrics"][0]["baseline"];
    assert_eq!(&front[0]["metrics"][0]["value"], baseline);
    assert_eq!(
        front[1]["metrics"][0]["value"],
        report["metrics"][0]["quantized"]
    );
    assert_eq!(front[1]["ops_by_precision"]["fp32_reverted"], 0);
    for (point, step) in front[2..].iter().zip(steps) {
        assert_eq!(point["step"], step["step"]);
        assert_eq!(point["kept"], step["kept"]);
        assert_eq!(point["metrics"][0]["value"], step["metric"]);
    }
    // Along the kept path away from the all-INT8 end every step moves ops out of int8. Bytes need not follow:
    // a small layer's quantized form (per-channel scales and zero points, an int32 bias with its own, the Q/DQ
    // nodes) can outweigh its FP32 weights — reverting MobileNetV2's depthwise features.3 conv (144 3×3
    // filters) makes the file 62 bytes smaller, and here the model with only the first conv in int8 is larger
    // than FP32.
    let kept: Vec<(u64, u64)> = (front[1..].iter())
        .filter(|p| p["kept"] == true)
        .map(|p| {
            let int8 = p["ops_by_precision"]["int8"].as_u64().unwrap();
            (int8, p["bytes"].as_u64().unwrap())
        })
        .collect();
    assert!(kept.len() >= 3, "{kept:?}");
    assert!(kept.windows(2).all(|w| w[0].0 > w[1].0), "{kept:?}");
    // One point is the saved model, and it carries the saved model's figures.
    let chosen: Vec<&Value> = front.iter().filter(|p| p["chosen"] == true).collect();
    assert_eq!(chosen.len(), 1, "{front:?}");
    assert_eq!(chosen[0]["bytes"], report["model_bytes"]["int8"]);
    assert_eq!(chosen[0]["ops_by_precision"], report["ops_by_precision"]);
    assert_eq!(
        chosen[0]["metrics"][0]["value"],
        report["metrics"][0]["final"]
    );
    // ONNX Runtime is the deployed engine: every point is timed there, FP32 and the saved model once, by the
    // deployed check at the engine's default threads.
    assert!(front
        .iter()
        .all(|p| p["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0)));
    let checked = &report["deployed"]["latency"]["default_threads"];
    assert_eq!(front[0]["latency_ms"], checked["fp32_ms"]);
    assert_eq!(chosen[0]["latency_ms"], checked["int8_ms"]);
    assert!(
        report.get("targets").is_none(),
        "one target: no per-target list"
    );

    let md = common::aquant(&["report", dir.path().to_str().unwrap(), "--format", "md"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("| INT8 | 0.00091 | 0.00091 | 109.4 kB | 5 / 0 / 0 |"),
        "{md}"
    );
    assert!(md.contains("**saved model**"), "{md}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<section id=\"front\">") && html.contains("against latency"));
}

#[test]
fn without_latency_runs_the_front_is_not_timed() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = nmse_run(dir.path(), &["--max-drop", "0.0003", "--latency-runs", "0"]);
    let front = report["front"].as_array().unwrap();
    assert!(front.len() >= 3);
    assert!(front.iter().all(|p| p["latency_ms"].is_null()), "{front:?}");
}

/// Searched on tract, deployed on ONNX Runtime: each looser target's model costs one deployed evaluation and
/// nothing else, and meets its target there.
#[test]
fn three_targets_cost_one_search_and_each_model_meets_its_target_on_onnx_runtime() {
    let (alone_dir, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (alone, _) = nmse_run(
        alone_dir.path(),
        &["--backend", "tract", "--max-drop", "0.00003"],
    );
    let (three, summary) = nmse_run(dir.path(), &["--backend", "tract", "--max-drop", TARGETS]);
    assert_eq!(alone["steps"], three["steps"]);
    assert_eq!(
        alone["evaluations"]["subset"],
        three["evaluations"]["subset"]
    );
    let full = |r: &Value| r["evaluations"]["full"].as_u64().unwrap();
    assert!(
        full(&three) <= full(&alone) + 2,
        "{} vs {}",
        full(&three),
        full(&alone)
    );
    let targets = three["targets"].as_array().unwrap();
    let max_drops: Vec<f64> = targets
        .iter()
        .map(|t| t["max_drop"].as_f64().unwrap())
        .collect();
    assert_eq!(max_drops, [0.00003, 0.0001, 0.0003]);
    assert_eq!(targets[0]["output"], three["output"]);
    let labels: Vec<&str> = (three["front"].as_array().unwrap().iter())
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    for target in targets {
        let max_drop = target["max_drop"].as_f64().unwrap();
        assert!(
            labels.contains(&target["point"].as_str().unwrap()),
            "{target}"
        );
        assert_eq!(target["target_met"], true, "{target}");
        assert_eq!(target["deployed"]["engine"], "ort");
        assert_eq!(target["deployed"]["target_met"], true);
        let model = Path::new(target["output"].as_str().unwrap());
        let nmse = nmse_on_onnx_runtime(model);
        assert!(nmse <= max_drop, "{}: {nmse} > {max_drop}", model.display());
    }
    for (target, dir_name) in targets[1..]
        .iter()
        .zip(["max_drop_0.0001", "max_drop_0.0003"])
    {
        let saved = dir.path().join(dir_name).join("model.onnx");
        assert_eq!(target["output"].as_str(), saved.to_str(), "{target}");
    }
    // The looser targets' models differ from the tightest's: the looser the target, the fewer reverts.
    let reverted = |point: &str| {
        let front = three["front"].as_array().unwrap();
        let p = front.iter().find(|p| p["label"] == point).unwrap();
        p["ops_by_precision"]["fp32_reverted"].as_u64().unwrap()
    };
    let counts: Vec<u64> = targets
        .iter()
        .map(|t| reverted(t["point"].as_str().unwrap()))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] > w[1]), "{counts:?}");
    assert!(summary.contains("\nmax_drop 0.0001: step "), "{summary}");
}

#[test]
fn several_targets_refuse_what_they_cannot_mean() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, needle) in [
        (&["--max-drop", "0.001,0.001"][..], "named twice"),
        (&["--max-drop", "0.001,big"][..], "'big' is not a number"),
        (
            &["--max-drop", "0.001,0.01", "--holdout-fraction", "0.2"][..],
            "holdout_fraction",
        ),
        (
            &["--max-drop", "0.001,0.01", "--algorithm", "default"][..],
            "several targets are for accuracy control",
        ),
    ] {
        let output = quantize_mnist(&dir.path().join("out"), extra);
        if needle.contains("'big'") {
            // clap's own message for a value it cannot parse.
            assert_eq!(output.status.code(), Some(2));
            assert!(String::from_utf8_lossy(&output.stderr).contains(needle));
            continue;
        }
        assert_clean_error(&output, needle);
    }
}

/// The run: MobileNetV2 with three targets, every model of the front timed on ONNX Runtime (minutes).
#[test]
#[ignore = "MobileNetV2: minutes; run before resolving issue 31"]
fn mobilenet_v2_three_targets_each_met_on_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let (model, val) = (
        assets().join("imagenet/mobilenet_v2.onnx"),
        assets().join("imagenet/val.json"),
    );
    let output =
        common::quantize_mobilenet_v2(dir.path(), &["--max-drop", "0.001,0.003,0.01", "--quiet"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    let report = read_report(dir.path());
    let md = common::aquant(&["report", dir.path().to_str().unwrap(), "--format", "md"]);
    eprintln!("{}", String::from_utf8_lossy(&md.stdout));
    let front = report["front"].as_array().unwrap();
    assert!(
        front.iter().all(|p| p["latency_ms"].as_f64().is_some()),
        "{front:?}"
    );
    let fp32 = common::ort_eval(&model, &val)["value"].as_f64().unwrap();
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3);
    for target in targets.iter().filter(|t| t["target_met"] == true) {
        let max_drop = target["max_drop"].as_f64().unwrap();
        let saved = Path::new(target["output"].as_str().unwrap());
        let int8 = common::ort_eval(saved, &val)["value"].as_f64().unwrap();
        assert!(
            fp32 - int8 <= max_drop + 1e-9,
            "{target}: FP32 {fp32}, saved {int8}"
        );
    }
    assert_eq!(
        output.status.code(),
        Some(if report["target_met"] == true { 0 } else { 1 })
    );
}
