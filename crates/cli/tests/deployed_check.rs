//! The deployed check (fidelity issue): the saved model is judged on ONNX Runtime as it is deployed, and a run
//! whose deployed model misses the target never says or exits as "target met".
//!
//! The miss is real, not injected: the search runs on tract (simulated int8, which never saturates) with the
//! overflow fix off, while aquant itself runs under `qemu-x86_64 -cpu Haswell`, so the in-process ONNX Runtime
//! of the deployed check picks the int8 kernels of an AVX2 CPU without VNNI, whose int16 pair sums saturate
//! on the MNIST CNN's first Conv (0.849 top-1 instead of 0.983: assets/saturation/). Without qemu these tests
//! print why they are skipped.

mod common;

use std::path::Path;
use std::process::Output;

use common::{aquant, aquant_avx2_no_vnni, assets, ort_eval_avx2_no_vnni, read_report};

/// 300 MNIST digits as calibration = validation set (one set: FP32 is evaluated once), written to `dir`.
fn small_mnist(dir: &Path) -> String {
    let script = "import numpy as np, sys, json\n\
        d = sys.argv[1]; src = sys.argv[2]\n\
        np.save(d + '/x.npy', np.load(src + '/val_x.npy')[:300])\n\
        np.save(d + '/y.npy', np.load(src + '/val_y.npy')[:300])\n\
        json.dump({'format': 'npy', 'inputs': {'input': 'x.npy'}, 'labels': 'y.npy'}, open(d + '/data.json', 'w'))\n";
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(dir)
        .arg(assets().join("mnist_cnn"))
        .status()
        .expect("python3 with numpy (scripts/requirements.txt)");
    assert!(status.success());
    dir.join("data.json").to_string_lossy().into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The search on tract, the overflow fix off, MNIST: what tract sees meets the target with nothing reverted.
fn saturating_run<'a>(
    model: &'a str,
    data: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "quantize",
        "--model",
        model,
        "--calib",
        data,
        "--val",
        data,
        "--metric",
        "top1",
        "--max-drop",
        "0.01",
        "--overflow-fix",
        "disable",
        "--backend",
        "tract",
        "--quiet",
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn deployed_miss_on_avx2_without_vnni_is_never_reported_as_met() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let out = dir.path().join("out");
    let out_str = out.to_string_lossy().into_owned();
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let model = model.to_str().unwrap();
    // No revert allowed: the search cannot repair what the deployed engine finds.
    let Some(output) = aquant_avx2_no_vnni(&saturating_run(
        model,
        &data,
        &out_str,
        &["--max-iter", "0"],
    )) else {
        return;
    };
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {text}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("NOT met"), "{text}");
    let r = read_report(&out);
    assert_eq!(r["target_met"], false);
    assert_ne!(r["stop_reason"], "target_met");
    let deployed = &r["deployed"];
    assert_eq!(deployed["engine"], "ort");
    assert_eq!(deployed["cpu"]["avx512_vnni"], false, "{deployed}");
    assert_eq!(deployed["cpu"]["avx2"], true);
    assert_eq!(deployed["target_met"], false);
    let value = deployed["metrics"][0]["value"].as_f64().unwrap();
    let drop = deployed["metrics"][0]["drop"].as_f64().unwrap();
    assert!(
        drop > 0.01,
        "the saturating first Conv costs top-1 there: {deployed}"
    );
    // tract's view of the fully quantized model met the target: only the deployed check tells. (The final
    // metrics are the deployed engine's: it became the judge.)
    let baseline = r["metrics"][0]["baseline"].as_f64().unwrap();
    assert!(
        baseline - r["metrics"][0]["quantized"].as_f64().unwrap() <= 0.01,
        "{r}"
    );
    assert_eq!(r["metrics"][0]["final"].as_f64().unwrap(), value);
    // The figure is ONNX Runtime's on the saved file, on that CPU.
    let saved = ort_eval_avx2_no_vnni(&out.join("model.onnx"), Path::new(&data), &[]).unwrap();
    assert_eq!(saved["value"].as_f64().unwrap(), value);
}

#[test]
fn deployed_miss_on_avx2_without_vnni_continues_with_onnx_runtime_as_the_judge() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let out = dir.path().join("out");
    let out_str = out.to_string_lossy().into_owned();
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let model = model.to_str().unwrap();
    let Some(output) = aquant_avx2_no_vnni(&saturating_run(model, &data, &out_str, &[])) else {
        return;
    };
    let text = stdout(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {text}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let r = read_report(&out);
    assert_eq!(r["target_met"], true);
    let deployed = &r["deployed"];
    assert_eq!(deployed["continued"], true, "{deployed}");
    assert_eq!(deployed["target_met"], true);
    assert!(
        text.contains("the search went on with it as the judge"),
        "{text}"
    );
    assert!(!r["reverted"].as_array().unwrap().is_empty(), "{r}");
    let baseline = r["metrics"][0]["baseline"].as_f64().unwrap();
    let saved = ort_eval_avx2_no_vnni(&out.join("model.onnx"), Path::new(&data), &[]).unwrap();
    let measured = saved["value"].as_f64().unwrap();
    assert_eq!(measured, deployed["metrics"][0]["value"].as_f64().unwrap());
    assert!(
        baseline - measured <= 0.01 + 1e-9,
        "{measured} vs {baseline}"
    );
}

/// `aquant quantize` of the MNIST CNN on `data` (calibration = validation) at `--max-drop 0.01`, into
/// `dir/name`, with `extra` flags: its report and what it printed.
fn mnist_run(dir: &Path, data: &str, name: &str, extra: &[&str]) -> (serde_json::Value, String) {
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let out = dir.join(name);
    let mut args = vec![
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        data,
        "--val",
        data,
        "--max-drop",
        "0.01",
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = aquant(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (read_report(&out), stdout(&output))
}

#[test]
fn deployed_check_names_engine_version_and_cpu_and_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let run = |name: &str, extra: &[&str]| mnist_run(dir.path(), &data, name, extra);
    let cpu = aquant::CpuFeatures::detect();
    let (tract, text) = run("tract", &["--backend", "tract"]);
    let deployed = &tract["deployed"];
    assert_eq!(deployed["engine"], "ort");
    assert_eq!(
        deployed["version"], "1.32.0",
        "scripts/requirements.txt pins onnxruntime 1.32.0"
    );
    assert_eq!(deployed["cpu"]["avx512_vnni"], cpu.avx512_vnni);
    assert_eq!(deployed["cpu"]["avx2"], cpu.avx2);
    assert_eq!(
        deployed["reused"], false,
        "tract's evaluation is not ONNX Runtime's"
    );
    assert!(text.contains("deployed on ort 1.32.0"), "{text}");
    // With ONNX Runtime as the search engine (named, or auto's choice: the default), its final evaluation of
    // the saved bytes is the deployed one.
    for (name, extra) in [("ort", &["--backend", "ort"][..]), ("auto", &[][..])] {
        let (ort, _) = run(name, extra);
        assert_eq!(ort["backend"]["name"], "ort", "{name}");
        assert_eq!(ort["deployed"]["reused"], true, "{name}");
        assert_eq!(
            ort["deployed"]["metrics"][0]["value"],
            ort["metrics"][0]["final"]
        );
    }
    let (off, text) = run("off", &["--no-deployed-check"]);
    assert!(off["deployed"].is_null());
    assert!(!text.contains("deployed on"), "{text}");
    // DefaultQuantization given a validation set is judged the same way.
    let (default, text) = run(
        "default",
        &["--algorithm", "default", "--latency-runs", "0"],
    );
    assert_eq!(default["deployed"]["engine"], "ort");
    assert!(default["deployed"]["latency"].is_null(), "--latency-runs 0");
    assert!(default["deployed"]["metrics"][0]["value"].as_f64().unwrap() > 0.9);
    assert!(text.contains("deployed on ort"), "{text}");
}

/// Without a validation set (NNCF's `quantize`) there is nothing to judge, but the saved model is still timed
/// beside FP32 on its deployment engine: every report says how fast the saved model runs where it is deployed.
#[test]
fn without_a_validation_set_the_saved_model_is_timed_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let model = assets().join("mnist_cnn/mnist_cnn.onnx");
    let out = dir.path().join("timed");
    let output = aquant(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        &data,
        "--latency-runs",
        "3",
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_report(&out);
    let deployed = &report["deployed"];
    assert_eq!(deployed["engine"], "ort", "{deployed}");
    assert_eq!(deployed["metrics"], serde_json::json!([]), "nothing judged");
    assert_eq!(deployed["latency"]["runs"], 3, "{deployed}");
    assert!(deployed["latency"]["int8_ms"].as_f64().unwrap() > 0.0);
    let text = stdout(&output);
    assert!(
        text.contains("not judged (no validation set); INT8 "),
        "{text}"
    );
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("with no validation set to judge it on; one inference takes"));
    // --no-deployed-check leaves the engine alone, as with a validation set.
    let off = dir.path().join("off");
    let output = aquant(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        &data,
        "--no-deployed-check",
        "--quiet",
        "-o",
        off.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert!(read_report(&off)["deployed"].is_null());
}

/// The deployed check measures at `--deployed-batch` and records the conditions it measured under (batch,
/// threads, optimization level, the CPU with its AMX flags); ONNX Runtime in Python, under those conditions,
/// measures the saved file exactly as reported. The search's own ONNX Runtime evaluation (at `--batch 1`) is
/// not reused as the deployed measure at another batch: on AMX CPUs int8 results depend on the batch.
#[test]
fn deployed_check_measures_at_the_deployed_batch_and_records_its_conditions() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_mnist(dir.path());
    let (report, text) = mnist_run(
        dir.path(),
        &data,
        "batch8",
        &["--backend", "ort", "--deployed-batch", "8"],
    );
    let deployed = &report["deployed"];
    assert_eq!(deployed["engine"], "ort", "{deployed}");
    assert_eq!(deployed["batch"], 8, "{deployed}");
    assert_eq!(deployed["threads"], 1, "{deployed}");
    assert_eq!(deployed["optimization"], "all", "{deployed}");
    assert!(deployed["precision_hint"].is_null(), "{deployed}");
    let cpu = aquant::CpuFeatures::detect();
    assert_eq!(deployed["cpu"]["amx_int8"], cpu.amx_int8, "{deployed}");
    assert_eq!(deployed["cpu"]["amx_bf16"], cpu.amx_bf16, "{deployed}");
    assert_eq!(deployed["reused"], false, "batch 1 is not batch 8");
    assert!(
        text.contains("deployed on ort 1.32.0 (batch 8, 1 thread, optimization all; "),
        "{text}"
    );
    // Latency: both models timed on the deployed engine, one sample per run (a figure, never compared).
    let latency = &deployed["latency"];
    let (fp32, int8) = (
        latency["fp32_ms"].as_f64().unwrap(),
        latency["int8_ms"].as_f64().unwrap(),
    );
    assert!(fp32 > 0.0 && int8 > 0.0, "{latency}");
    assert_eq!(latency["speedup"].as_f64().unwrap(), fp32 / int8);
    assert_eq!(
        (&latency["runs"], &latency["batch"]),
        (&20.into(), &1.into())
    );
    assert!(
        text.contains(&format!("INT8 {int8:.2} ms vs FP32 {fp32:.2} ms")),
        "{text}"
    );
    // And at ONNX Runtime's default threads, as a service deployed with its defaults runs the model.
    let default_threads = &latency["default_threads"];
    let (fp32, int8) = (
        default_threads["fp32_ms"].as_f64().unwrap(),
        default_threads["int8_ms"].as_f64().unwrap(),
    );
    assert!(fp32 > 0.0 && int8 > 0.0, "{latency}");
    assert!(
        text.contains(&format!(
            "at the engine's default threads INT8 {int8:.2} ms vs FP32 {fp32:.2} ms"
        )),
        "{text}"
    );
    let page = std::fs::read_to_string(dir.path().join("batch8/report.html")).unwrap();
    assert!(
        page.contains(&format!(
            "{int8:.2} ms against {fp32:.2} ms at the engine's default threads"
        )),
        "report.html says the default-threads latency"
    );
    let saved = dir.path().join("batch8/model.onnx");
    let python = common::ort_eval_with(&saved, Path::new(&data), &["--batch", "8"]);
    assert_eq!(python["value"], deployed["metrics"][0]["value"], "{python}");
    assert_eq!(python["samples"], 300);
}
