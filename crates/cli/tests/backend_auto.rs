//! `--backend auto` (issue #28), the default: the search runs on the engine the saved model is deployed on when
//! that engine is found (ONNX Runtime for an ONNX output, OpenVINO for an IR output), else on tract; the summary
//! and report.json's `backend: {name, chosen_because}` say which and why. ONNX Runtime is hidden from a run by an
//! empty `ORT_DYLIB_PATH`, which names no library.

mod common;

use std::path::Path;
use std::process::Output;

use common::{aquant_with_env, assets, read_report};

/// `aquant quantize` of the MNIST CNN with accuracy control into `out`, with `extra` flags and `env`.
fn quantize(out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mnist = assets().join("mnist_cnn");
    let path = |name: &str| mnist.join(name).to_string_lossy().into_owned();
    let (model, calib, val) = (path("mnist_cnn.onnx"), path("calib.json"), path("val.json"));
    let out = out.to_string_lossy().into_owned();
    let mut args = vec![
        "quantize",
        "--model",
        &model,
        "--calib",
        &calib,
        "--val",
        &val,
        "-o",
        &out,
        "-q",
        "--latency-runs",
        "0",
        "--no-sensitivity",
    ];
    args.extend_from_slice(extra);
    let output = aquant_with_env(&args, env);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn summary(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn auto_searches_on_onnx_runtime_when_it_is_found_and_the_deployed_check_reuses_the_final_evaluation(
) {
    let dir = tempfile::tempdir().unwrap();
    let output = quantize(dir.path(), &[], &[]);
    let report = read_report(dir.path());
    assert_eq!(report["backend"]["name"], "ort", "{report}");
    let because = report["backend"]["chosen_because"].as_str().unwrap();
    assert!(
        because.starts_with("auto: ONNX Runtime") && because.ends_with("was found"),
        "{because}"
    );
    assert!(
        summary(&output).contains(&format!("searched on ort ({because})")),
        "{}",
        summary(&output)
    );
    assert_eq!(report["deployed"]["engine"], "ort");
    assert_eq!(report["deployed"]["reused"], true, "{}", report["deployed"]);
}

#[test]
fn auto_falls_back_to_tract_when_onnx_runtime_is_not_found_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let output = quantize(
        dir.path(),
        &["--no-deployed-check"],
        &[("ORT_DYLIB_PATH", "")],
    );
    let report = read_report(dir.path());
    assert_eq!(report["backend"]["name"], "tract", "{report}");
    let because = report["backend"]["chosen_because"].as_str().unwrap();
    assert!(
        because.starts_with("auto: ONNX Runtime")
            && because.contains("was not found")
            && because.contains("ORT_DYLIB_PATH")
            && because.ends_with("tract is embedded"),
        "{because}"
    );
    assert!(
        summary(&output).contains("searched on tract (auto: "),
        "{}",
        summary(&output)
    );
}

#[test]
fn a_named_backend_is_used_as_named() {
    let dir = tempfile::tempdir().unwrap();
    quantize(
        dir.path(),
        &["--backend", "tract", "--no-deployed-check"],
        &[],
    );
    let report = read_report(dir.path());
    assert_eq!(
        report["backend"],
        serde_json::json!({"name": "tract", "chosen_because": "named"})
    );
}

#[test]
fn auto_searches_on_openvino_for_an_ir_output() {
    let dir = tempfile::tempdir().unwrap();
    quantize(dir.path(), &["--output-format", "ir"], &[]);
    let report = read_report(dir.path());
    // The search reads its candidates as the IR they are saved as, so it judges the saved IR itself, and the
    // deployed check is its final evaluation.
    assert_eq!(report["backend"]["name"], "openvino-ir", "{report}");
    let because = report["backend"]["chosen_because"].as_str().unwrap();
    assert!(
        because.starts_with("auto: OpenVINO") && because.ends_with("was found"),
        "{because}"
    );
    assert_eq!(report["deployed"]["engine"], "openvino-ir");
    assert_eq!(report["deployed"]["reused"], true, "{report}");
}

#[test]
fn auto_with_onnx_runtime_hidden_still_searches_an_ir_output_on_openvino() {
    let dir = tempfile::tempdir().unwrap();
    quantize(
        dir.path(),
        &["--output-format", "ir", "--no-deployed-check"],
        &[("ORT_DYLIB_PATH", "")],
    );
    assert_eq!(read_report(dir.path())["backend"]["name"], "openvino-ir");
}

#[test]
fn auto_falls_back_to_tract_for_an_ir_output_when_openvino_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("OPENVINO_LIB_PATH", "")];
    quantize(
        dir.path(),
        &["--output-format", "ir", "--no-deployed-check"],
        &env,
    );
    let report = read_report(dir.path());
    assert_eq!(report["backend"]["name"], "tract", "{report}");
    let because = report["backend"]["chosen_because"].as_str().unwrap();
    assert!(
        because.starts_with("auto: OpenVINO") && because.contains("OPENVINO_LIB_PATH"),
        "{because}"
    );
}
