//! Ctrl-C during accuracy control saves the best model so far and a report saying so (exit 130);
//! `aquant quantize --resume OUT_DIR` then ends exactly where an uninterrupted run ends.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{aquant, assets, ort_eval, read_report, run_result};

/// MobileNetV2 with a target it cannot reach (agreement 1.0 with the FP32 model) and three steps: about
/// half a minute of ranking and reverting to interrupt on tract (named: on ONNX Runtime, `auto`'s engine, the
/// steps after the first can end within the two seconds the test waits before it interrupts).
fn arguments(out: &Path) -> Vec<String> {
    let model = assets().join("imagenet/mobilenet_v2.onnx");
    let data = assets().join("imagenet/val.json");
    [
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        data.to_str().unwrap(),
        "--val",
        data.to_str().unwrap(),
        "--metric",
        "agreement",
        "--max-drop",
        "0",
        "--ranking-subset-size",
        "30",
        "--max-iter",
        "3",
        "--stat-subset-size",
        "30",
        "--backend",
        "tract",
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn an_interrupted_run_saves_its_best_model_and_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, interrupted) = (dir.path().join("whole"), dir.path().join("interrupted"));

    let args = arguments(&whole);
    let uninterrupted = aquant(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(uninterrupted.status.code(), Some(1), "{uninterrupted:?}");
    assert!(
        !whole.join("state").exists(),
        "a finished run leaves no state"
    );

    let child = Command::new(env!("CARGO_BIN_EXE_aquant"))
        .args(arguments(&interrupted))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_step = interrupted.join("intermediate/step_001.onnx");
    let start = Instant::now();
    while !first_step.exists() {
        assert!(start.elapsed() < Duration::from_secs(600), "no first step");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let saved = read_report(&interrupted);
    assert_eq!(saved["interrupted"], true);
    assert_eq!(saved["target_met"], false);
    assert!(saved["steps"].as_array().unwrap().len() < 3);
    // The best model so far is there, whole, and runs.
    let top1 = ort_eval(
        &interrupted.join("model.onnx"),
        &assets().join("imagenet/val.json"),
    );
    assert!(top1["value"].as_f64().unwrap() > 0.75);

    let resumed = aquant(&["quantize", "--resume", interrupted.to_str().unwrap()]);
    assert_eq!(resumed.status.code(), Some(1), "{resumed:?}");
    assert_eq!(
        run_result(read_report(&interrupted)),
        run_result(read_report(&whole))
    );
    assert_eq!(
        std::fs::read(interrupted.join("model.onnx")).unwrap(),
        std::fs::read(whole.join("model.onnx")).unwrap()
    );
    assert!(!interrupted.join("state").exists());
}

#[test]
fn resuming_a_directory_without_a_run_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = aquant(&["quantize", "--resume", dir.path().to_str().unwrap()]);
    common::assert_clean_error(&output, "no interrupted run to resume");
}
