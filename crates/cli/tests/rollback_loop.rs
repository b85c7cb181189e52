//! Issue 12's reproduction: bundled MobileNetV2, calibration = validation, `--metric agreement --max-drop 0
//! --ranking-subset-size 12`. Before the fix, a group rolled back was picked again and again by the
//! journal's replay of the previous ranking until `--max-iter` stopped it (never without). Now the search
//! stops by itself with no group tried twice, and a resumed interrupted run ends with the same report.
//! Kept fast: the first 60 of the 300 validation images.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{aquant, assert_finished, assets, read_report, run_result};

const SAMPLES: usize = 60;

/// The first rows of an npy file of version 1.
fn npy_rows(file: &Path, rows: usize) -> (String, Vec<usize>, Vec<u8>) {
    let bytes = std::fs::read(file).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let descr = header.split('\'').nth(3).unwrap().to_string();
    let shape_text = header.split('(').nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let row: usize =
        shape[1..].iter().product::<usize>() * if descr.ends_with('8') { 8 } else { 1 };
    let data = bytes[10 + header_len..10 + header_len + rows * row].to_vec();
    let mut shape = shape;
    shape[0] = rows;
    (descr, shape, data)
}

/// A data spec of the first `SAMPLES` validation images, written in `dir`.
fn small_val(dir: &Path) -> std::path::PathBuf {
    let imagenet = assets().join("imagenet");
    for (name, out) in [("val_u8.npy", "x.npy"), ("val_y.npy", "y.npy")] {
        let (descr, shape, data) = npy_rows(&imagenet.join(name), SAMPLES);
        std::fs::write(
            dir.join(out),
            aquant::data::npy_bytes(&descr, &shape, &data),
        )
        .unwrap();
    }
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(imagenet.join("val.json")).unwrap()).unwrap();
    spec["inputs"]["input"] = "x.npy".into();
    spec["labels"] = "y.npy".into();
    let file = dir.join("val.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    file
}

fn arguments(val: &Path, out: &Path, extra: &[&str]) -> Vec<String> {
    let model = assets().join("imagenet/mobilenet_v2.onnx");
    let mut args: Vec<String> = [
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        val.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--metric",
        "agreement",
        "--max-drop",
        "0",
        "--ranking-subset-size",
        "12",
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run(args: &[String]) -> serde_json::Value {
    let output = aquant(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = Path::new(args.iter().skip_while(|a| *a != "-o").nth(1).unwrap());
    let report = read_report(out);
    let expected = if report["target_met"] == true { 0 } else { 1 };
    assert_eq!(output.status.code(), Some(expected), "{output:?}");
    report
}

/// Asserts that no group was tried twice, and returns the steps' groups.
fn each_group_once(report: &serde_json::Value) -> Vec<u64> {
    let groups: Vec<u64> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["group"].as_u64().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = groups.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        groups.len(),
        "a group was tried twice: {groups:?}"
    );
    groups
}

#[test]
fn a_rolled_back_group_is_never_tried_again_and_the_search_stops_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let val = small_val(dir.path());

    let limited = run(&arguments(
        &val,
        &dir.path().join("limited"),
        &["--max-iter", "10"],
    ));
    let groups = each_group_once(&limited);
    assert!(groups.len() <= 10);
    let stop = limited["stop_reason"].as_str().unwrap();
    assert!(
        ["target_met", "nothing_left", "max_iterations"].contains(&stop),
        "{stop}"
    );

    let whole_dir = dir.path().join("whole");
    let whole = run(&arguments(&val, &whole_dir, &[]));
    each_group_once(&whole);
    let stop = whole["stop_reason"].as_str().unwrap();
    assert!(["target_met", "nothing_left"].contains(&stop), "{stop}");
    // The limited run is the unlimited one cut short.
    assert_eq!(
        whole["steps"].as_array().unwrap()[..groups.len()],
        limited["steps"].as_array().unwrap()[..]
    );

    // Interrupted after its first step, then resumed: the same report.
    let interrupted = dir.path().join("interrupted");
    let child = Command::new(env!("CARGO_BIN_EXE_aquant"))
        .args(arguments(&val, &interrupted, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first_step = interrupted.join("intermediate/step_001.onnx");
    let start = Instant::now();
    while !first_step.exists() {
        assert!(start.elapsed() < Duration::from_secs(600), "no first step");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = child.wait_with_output().unwrap();
    let code = output.status.code();
    // The run may have finished before the signal landed; then there is nothing to resume.
    if code == Some(130) {
        let resumed = aquant(&["quantize", "--resume", interrupted.to_str().unwrap()]);
        assert_finished(&resumed, "the resumed run");
    }
    assert_eq!(run_result(read_report(&interrupted)), run_result(whole));
}
