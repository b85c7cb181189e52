//! Golden outputs: the saved model and report of the bundled cases and example configs, pinned so that a
//! refactor that should change no behaviour provably changes none.
//!
//! Each case's golden file (tests/golden/CASE.json) holds the model's structure (every node, every
//! initializer's type and shape), its values (small tensors in full, large ones as a hash and a sum), a hash of
//! the file's bytes, the report less what varies between runs (timings, profile, output path, the deployed
//! check's engine and CPU) and the CPU it was recorded on. Calibration runs FP32 inference, whose float sums
//! depend on the CPU's kernels (AVX2, AVX-512): on the CPU the golden was recorded on the model must be the
//! same bytes; elsewhere every structure, integer weight and count must match exactly and every float within
//! a relative 1e-4 (an activation scale may move by an ulp, and an int32 bias by one step with it, so those
//! are compared by shape only).
//!
//! `AQUANT_BLESS=1 cargo test --release -p aquant-cli --test golden` rewrites the files; review their diff.

mod common;

use std::path::{Path, PathBuf};

use aquant_onnx::{tensor, ModelProto, TensorProto};
use serde_json::{json, Map, Value};

use common::{aquant, assert_finished};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// FNV-1a, 64 bits: a stable fingerprint of bytes with no dependency.
fn fingerprint(bytes: impl IntoIterator<Item = u8>) -> String {
    let hash = bytes.into_iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("{hash:016x}")
}

/// Tensors with more values than this are summarised (hash, sum) instead of stored in full.
const STORED_VALUES: usize = 256;

fn tensor_summary(t: &TensorProto) -> Value {
    let dims = tensor::dims(t).unwrap();
    let data_type = tensor::data_type(t).unwrap().as_str_name();
    let values: Vec<f64> = match tensor::to_f32(t) {
        Ok(v) => v.into_iter().map(f64::from).collect(),
        Err(_) => tensor::to_i64(t)
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
    };
    let stored = if values.len() <= STORED_VALUES {
        json!(values)
    } else {
        json!({
            "len": values.len(),
            "sum": values.iter().sum::<f64>(),
            "hash": fingerprint(values.iter().flat_map(|v| v.to_le_bytes())),
        })
    };
    json!({"type": data_type, "dims": dims, "values": stored})
}

fn model_summary(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let model: ModelProto = aquant_onnx::decode_model(&bytes, path).unwrap();
    let graph = model.graph.as_ref().unwrap();
    let nodes: Vec<Value> = graph
        .node
        .iter()
        .map(|n| {
            json!({
                "op": n.op_type, "name": n.name, "inputs": n.input, "outputs": n.output,
                "attributes": n.attribute.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
            })
        })
        .collect();
    let initializers: Map<String, Value> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone().unwrap_or_default(), tensor_summary(t)))
        .collect();
    json!({"bytes": fingerprint(bytes), "nodes": nodes, "initializers": initializers})
}

/// The report less what differs between two runs of the same job.
fn stable_report(path: &Path) -> Value {
    let mut report: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let object = report.as_object_mut().unwrap();
    for key in ["timings_s", "profile", "output"] {
        object.remove(key);
    }
    if let Some(Value::Object(deployed)) = object.get_mut("deployed") {
        // The CPU and engine version are the machine's; the latency a time, measured anew by every run.
        for key in ["cpu", "version", "latency"] {
            deployed.remove(key);
        }
    }
    // Each front point's latency is a time too.
    if let Some(Value::Array(front)) = object.get_mut("front") {
        for point in front.iter_mut().filter_map(Value::as_object_mut) {
            point.remove("latency_ms");
        }
    }
    report
}

/// `value` with this checkout's location replaced by `<crates/cli>`: a clone anywhere else gives the same.
fn without_checkout_path(value: Value) -> Value {
    let text = serde_json::to_string(&value).unwrap();
    let here = serde_json::to_string(env!("CARGO_MANIFEST_DIR")).unwrap();
    serde_json::from_str(&text.replace(here.trim_matches('"'), "<crates/cli>")).unwrap()
}

/// The CPU class a golden is recorded on: its int8 features, as the goldens were first recorded (the bf16
/// flags, named since, change no kernel the runs use: OpenVINO is told f32 and is not used here).
fn cpu() -> String {
    aquant::CpuFeatures {
        avx512_bf16: false,
        amx_bf16: false,
        ..aquant::CpuFeatures::detect()
    }
    .flags()
}

/// Compares `actual` with `golden`; floats within `tolerance` (relative) unless it is zero.
fn compare(
    path: &str,
    golden: &Value,
    actual: &Value,
    tolerance: f64,
    mismatches: &mut Vec<String>,
) {
    match (golden, actual) {
        (Value::Object(g), Value::Object(a)) => {
            for key in g.keys().chain(a.keys().filter(|k| !g.contains_key(*k))) {
                match (g.get(key), a.get(key)) {
                    (Some(g), Some(a)) => {
                        compare(&format!("{path}.{key}"), g, a, tolerance, mismatches)
                    }
                    (g, _) => mismatches.push(format!(
                        "{path}.{key}: {}",
                        if g.is_some() { "missing" } else { "unexpected" }
                    )),
                }
            }
        }
        (Value::Array(g), Value::Array(a)) if g.len() == a.len() => {
            for (i, (g, a)) in g.iter().zip(a).enumerate() {
                compare(&format!("{path}[{i}]"), g, a, tolerance, mismatches);
            }
        }
        (Value::Number(g), Value::Number(a)) if tolerance > 0.0 => {
            let (g, a) = (g.as_f64().unwrap(), a.as_f64().unwrap());
            if (g - a).abs() > tolerance * g.abs().max(a.abs()).max(1e-30) {
                mismatches.push(format!("{path}: {g} → {a}"));
            }
        }
        (g, a) if g != a => mismatches.push(format!("{path}: {g} → {a}")),
        _ => {}
    }
}

/// Runs `aquant quantize ARGS -o OUT -q --backend tract` and checks (or, with AQUANT_BLESS, records) the golden
/// `case`. The goldens name tract rather than take `auto`'s engine: tract's simulated quantization computes the
/// analyses (sensitivity, saturation) in float, so another CPU's figures stay within the float tolerance, where
/// ONNX Runtime's int8 kernels give other numbers on a CPU with VNNI than on one without.
fn check_golden(case: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_str = out.to_string_lossy().into_owned();
    let mut command = vec!["quantize"];
    command.extend_from_slice(args);
    command.extend_from_slice(&["-o", &out_str, "-q", "--backend", "tract"]);
    let output = aquant(&command);
    assert_finished(&output, case);
    let actual = without_checkout_path(json!({
        "command": args,
        "exit": output.status.code(),
        "cpu": cpu(),
        "model": model_summary(&out.join("model.onnx")),
        "report": stable_report(&out.join("report.json")),
    }));
    let file = golden_dir().join(format!("{case}.json"));
    if std::env::var_os("AQUANT_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&file, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        return;
    }
    let golden: Value = serde_json::from_slice(
        &std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{}: {e} (record it with AQUANT_BLESS=1)", file.display())),
    )
    .unwrap();
    let mut mismatches = Vec::new();
    if golden["cpu"] == actual["cpu"] {
        compare(case, &golden, &actual, 0.0, &mut mismatches);
    } else {
        // Another CPU: no byte hash or float hash can be expected to match, everything else must.
        let mut golden = golden.clone();
        let mut actual = actual.clone();
        for v in [&mut golden, &mut actual] {
            v["cpu"] = Value::Null;
            v["model"]["bytes"] = Value::Null;
            for t in v["model"]["initializers"]
                .as_object_mut()
                .unwrap()
                .values_mut()
            {
                if t["type"] == "INT32" {
                    // Biases in the accumulator's scale: one step apart when an activation scale moved.
                    t["values"] = Value::Null;
                } else if t["type"] == "FLOAT" {
                    if let Some(summary) = t["values"].as_object_mut() {
                        summary.remove("hash");
                    }
                }
            }
        }
        compare(case, &golden, &actual, 1e-4, &mut mismatches);
    }
    assert!(
        mismatches.is_empty(),
        "{case} differs from {} (recorded on {}, here {}):\n{}",
        file.display(),
        golden["cpu"],
        actual["cpu"],
        mismatches.join("\n")
    );
}

fn asset(path: &str) -> String {
    common::assets().join(path).to_string_lossy().into_owned()
}

fn example(path: &str) -> String {
    repo()
        .join("examples/configs")
        .join(path)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn golden_mnist_default_config() {
    check_golden(
        "mnist_default_config",
        &["--config", &example("mnist_default.json")],
    );
}

#[test]
fn golden_mnist_accuracy_aware_config() {
    check_golden(
        "mnist_accuracy_aware_config",
        &[
            "--config",
            &example("mnist_accuracy_aware.json"),
            "--no-deployed-check",
        ],
    );
}

#[test]
fn golden_mobilenet_v2_default() {
    check_golden(
        "mobilenet_v2_default",
        &[
            "--model",
            &asset("imagenet/mobilenet_v2.onnx"),
            "--calib",
            &asset("imagenet/val.json"),
            "--algorithm",
            "default",
        ],
    );
}
