//! The precision ladder's `dynamic` step (issue #25): a group's MatMuls quantize their input at run time, as
//! ONNX Runtime's `quantize_dynamic` makes transformers do. ONNX Runtime runs them as `DynamicQuantizeMatMul`
//! (an integer kernel: read from its optimized graph, not timed), tract's evaluation form computes what ONNX
//! Runtime computes, the search tries the step before FP32 and only on groups it moves, and a deployment it
//! cannot run on is refused.

mod common;
mod ov_common;

use std::path::{Path, PathBuf};

use aquant::quantize::{ModelForm, Precision, Precisions, QuantizationParams, RestoreMode};
use aquant::Backend;
use aquant_tract::TractBackend;
use common::{aquant, assert_clean_error, npy_f32, ort_eval_with, ort_fusion, read_report};

/// The BERT-like encoder of scripts/make_encoder.py, made into `dir`: (model, data spec).
fn encoder(dir: &Path) -> (PathBuf, PathBuf) {
    let made = ov_common::python_json("make_encoder.py", &[dir.as_os_str()]);
    let path = |key: &str| PathBuf::from(made[key].as_str().unwrap());
    (path("model"), path("data"))
}

fn quantize(model: &Path, data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let (model, data, out) = (
        model.to_str().unwrap(),
        data.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let args = [
        "quantize", "--model", model, "--calib", data, "--val", data, "-o", out, "--quiet",
    ];
    aquant(&[&args[..], extra].concat())
}

/// Every MatMul with a weight at the dynamic step: ONNX Runtime fuses each into `DynamicQuantizeMatMul`, and
/// the evaluation form tract runs gives the logits ONNX Runtime computes from the saved model.
#[test]
fn dynamic_matmuls_run_as_onnx_runtimes_kernel_and_tract_computes_what_it_does() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = encoder(dir.path());
    let tract = TractBackend::new();
    let calibration = aquant::open_dataset(&data).unwrap();
    let (quantized, _) = aquant::quantize::quantize(
        &tract,
        aquant_onnx::load_model(&model).unwrap(),
        calibration.as_ref(),
        &QuantizationParams::default(),
        1,
        &aquant::NoProgress,
    )
    .unwrap();
    let dynamic: Precisions = quantized
        .placement()
        .nodes
        .iter()
        .filter(|n| n.can_quantize_input_at_run_time())
        .map(|n| (n.name.clone(), Precision::Dynamic))
        .collect();
    assert!(dynamic.len() >= 6, "{dynamic:?}");
    let build = |form| {
        quantized
            .build_with(&dynamic, RestoreMode::default(), form)
            .unwrap()
    };
    let saved = dir.path().join("dynamic.onnx");
    let export = build(ModelForm::Export {
        compress_weights: true,
    });
    aquant_onnx::save_model(&export, &saved).unwrap();
    // ONNX Runtime runs each dynamic MatMul as an integer kernel: DynamicQuantizeMatMul, or beside a
    // DynamicQuantizeLinear shared by several MatMuls (Q, K, V) MatMulIntegerToFloat. Except where its
    // MatMulAddFusion turns a 2-D MatMul and its bias Add into a float Gemm first: the same ops as in the
    // static model, which the dynamic step leaves no worse.
    let graph = ort_fusion(&saved);
    let count = |op: &str| graph["ops"][op].as_u64().unwrap_or(0);
    let integer = count("DynamicQuantizeMatMul") + count("MatMulIntegerToFloat");
    let float = graph["float_weighted"].as_array().unwrap();
    assert!(count("DynamicQuantizeMatMul") > 0, "{graph}");
    assert_eq!(
        integer + float.len() as u64,
        dynamic.len() as u64,
        "{graph}"
    );
    let static_model = dir.path().join("static.onnx");
    let static_export = quantized
        .build(
            &Default::default(),
            RestoreMode::default(),
            ModelForm::Export {
                compress_weights: true,
            },
        )
        .unwrap();
    aquant_onnx::save_model(&static_export, &static_model).unwrap();
    assert_eq!(
        ort_fusion(&static_model)["float_weighted"],
        graph["float_weighted"],
        "{graph}"
    );

    // ONNX Runtime's unfused graph computes the exact integer products, as on a CPU with VNNI; without VNNI
    // the fused kernel adds pairs of u8×s8 products in saturating int16 (ENGINES.md), which the comparison
    // with the fused graph shows only where the CPU has VNNI.
    let unfused = worst_difference(
        &tract,
        &build(ModelForm::Evaluation),
        &saved,
        &data,
        &["--no-optim"],
    );
    assert!(
        unfused.0 <= 1e-3 * unfused.1,
        "worst {} (logits up to {})",
        unfused.0,
        unfused.1
    );
    if common::vnni_here("the fused DynamicQuantizeMatMul") {
        let fused = worst_difference(&tract, &build(ModelForm::Evaluation), &saved, &data, &[]);
        assert!(
            fused.0 <= 1e-3 * fused.1,
            "worst {} (logits up to {})",
            fused.0,
            fused.1
        );
    }
}

/// The largest difference between the logits tract computes from `evaluation` and those ONNX Runtime computes
/// from `saved` (with `options`) over the first rows of `data`, and the largest logit.
fn worst_difference(
    tract: &TractBackend,
    evaluation: &aquant_onnx::ModelProto,
    saved: &Path,
    data: &Path,
    options: &[&str],
) -> (f32, f32) {
    let rows = 16;
    let dir = tempfile::tempdir().unwrap();
    let logits = dir.path().join("logits.npy");
    let limit = rows.to_string();
    let written = [
        "--limit",
        &limit,
        "--batch",
        "1",
        "--logits",
        logits.to_str().unwrap(),
    ];
    ort_eval_with(saved, data, &[&written[..], options].concat());
    let onnx_runtime = npy_f32(&logits);
    let session = tract.prepare(evaluation, &[]).unwrap();
    let dataset = aquant::open_dataset(data).unwrap();
    let mut computed = Vec::new();
    // The spec names the encoder's two inputs; the session takes them in the model's order.
    let binding = aquant::InputBinding::from_model(evaluation).unwrap();
    for i in 0..rows {
        let inputs = binding.bind(dataset.get(i).unwrap(), i).unwrap();
        let outputs = session.run(inputs).unwrap();
        computed.extend(outputs[0].as_f32("logits").unwrap().iter().copied());
    }
    assert_eq!(computed.len(), onnx_runtime.len());
    let scale = onnx_runtime.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = computed
        .iter()
        .zip(&onnx_runtime)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("ONNX Runtime {options:?}: worst logit difference {worst} (logits up to {scale})");
    (worst, scale)
}

/// The precisions each step of `report` moved its group to, and the ops it moved, in order.
fn steps(report: &serde_json::Value) -> Vec<(u64, String, Vec<String>)> {
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    };
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let precision = s["precision"].as_str().unwrap().to_string();
            (
                s["group"].as_u64().unwrap(),
                precision,
                names(&s["reverted_group"]),
            )
        })
        .collect()
}

#[test]
fn groups_try_the_dynamic_step_before_fp32_and_only_where_it_moves_a_matmul() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = encoder(dir.path());
    let out = dir.path().join("out");
    // NMSE against FP32 is 0 only when every op is FP32: every group climbs to the end of its ladder.
    let extra = [
        "--metric",
        "nmse",
        "--max-drop",
        "0",
        "--fallback",
        "dynamic,fp32",
    ];
    let result = quantize(&model, &data, &out, &extra);
    assert!(result.status.code().is_some_and(|c| c < 2), "{result:?}");
    let steps = steps(&read_report(&out));
    let dynamic: Vec<_> = steps.iter().filter(|s| s.1 == "dynamic").collect();
    assert!(!dynamic.is_empty(), "{steps:?}");
    for (group, _, ops) in &dynamic {
        // The step moves the group's weighted MatMuls only (never the residual Add beside them), and comes
        // before the group's FP32 step.
        assert!(ops.iter().all(|op| op.ends_with("/mm")), "{ops:?}");
        let mine: Vec<&str> = steps
            .iter()
            .filter(|s| s.0 == *group)
            .map(|s| s.1.as_str())
            .collect();
        assert!(
            ["dynamic", "fp32"].starts_with(&mine),
            "group {group}: {mine:?}"
        );
    }
    // The masked attention scores (an Add of two activations) have no MatMul: their group skips the step.
    let scores = steps
        .iter()
        .find(|s| s.2.iter().any(|op| op == "att/masked"));
    assert!(scores.is_some_and(|s| s.1 == "fp32"), "{steps:?}");
    assert!(
        !dynamic
            .iter()
            .any(|s| s.2.iter().any(|op| op == "att/masked")),
        "{steps:?}"
    );
}

#[test]
fn the_dynamic_step_is_refused_for_openvino() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = encoder(dir.path());
    let out = dir.path().join("out");
    let extra = ["--fallback", "dynamic,fp32", "--deploy", "openvino"];
    let result = quantize(&model, &data, &out, &extra);
    assert_clean_error(
        &result,
        "fallback step 'dynamic' is ONNX Runtime's DynamicQuantizeMatMul",
    );
    assert!(!out.exists(), "nothing is written for a refused ladder");
}
