//! aquant's engines agree with ONNX Runtime: logits of both backends (tract and aquant's own ONNX Runtime
//! binding) within 1e-4 (relative) of reference outputs made with `scripts/make_reference.py`; the ONNX
//! Runtime backend scores a quantized model exactly as ONNX Runtime's Python package does; and the image-folder loader reproduces ONNX Runtime's predictions on the
//! 20 photos with the standard resize-256 / centre-crop-224 transform.

mod common;

use std::path::Path;

use aquant::{Backend, DataSpec, Dataset, Graph, Tensor};
use aquant_tract::TractBackend;
use common::{assets, reference};
use ndarray::ArrayD;

/// Reads a reference `.npy` through aquant's own loader, one row per sample.
fn reference_rows(file: &str) -> Box<dyn Dataset> {
    let spec: DataSpec =
        serde_json::from_value(serde_json::json!({"format": "npy", "inputs": {"x": file}}))
            .unwrap();
    spec.open(&reference()).unwrap()
}

fn row_f32(dataset: &dyn Dataset, i: usize) -> ArrayD<f32> {
    dataset.get(i).unwrap().inputs[0]
        .1
        .as_f32("reference")
        .unwrap()
        .clone()
}

fn row_i64(dataset: &dyn Dataset, i: usize) -> i64 {
    match &dataset.get(i).unwrap().inputs[0].1 {
        Tensor::I64(a) => a[[0]],
        other => panic!("expected int64, got {}", other.dtype_name()),
    }
}

fn assert_logits_match(model: &str, data: &str, name: &str) {
    let model = Graph::load(&assets().join(model)).unwrap().into_model();
    let ort = aquant_ort::OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
    for backend in [&TractBackend::new() as &dyn Backend, &ort] {
        assert_backend_logits_match(backend, &model, data, name);
    }
}

fn assert_backend_logits_match(
    backend: &dyn Backend,
    model: &aquant_onnx::ModelProto,
    data: &str,
    name: &str,
) {
    let session = backend.prepare(model, &[]).unwrap();
    let dataset = aquant::open_dataset(&assets().join(data)).unwrap();
    let expected = reference_rows(&format!("{name}_logits16.npy"));
    assert_eq!(expected.len(), 16);
    for i in 0..16 {
        let input = common::sample_inputs(dataset.as_ref(), i);
        let got = session.run(input).unwrap().remove(0);
        let got = got.as_f32("logits").unwrap();
        let want = row_f32(expected.as_ref(), i);
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want.iter()) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{name} on {} row {i}: {a} vs {b}",
                backend.name()
            );
        }
    }
}

#[test]
fn mnist_cnn_logits_match_onnx_runtime() {
    assert_logits_match(
        "mnist_cnn/mnist_cnn.onnx",
        "mnist_cnn/val.json",
        "mnist_cnn",
    );
}

#[test]
fn mobilenet_v2_logits_match_onnx_runtime() {
    assert_logits_match(
        "imagenet/mobilenet_v2.onnx",
        "imagenet/val.json",
        "mobilenet_v2",
    );
}

#[test]
fn efficientnet_lite0_logits_match_onnx_runtime() {
    assert_logits_match(
        "imagenet/efficientnet_lite0.onnx",
        "imagenet/val.json",
        "efficientnet_lite0",
    );
}

#[test]
fn ort_backend_scores_a_quantized_model_as_onnx_runtime_python_does() {
    let dir = tempfile::tempdir().unwrap();
    let val = assets().join("mnist_cnn/val.json");
    let out = dir.path().join("q");
    let quantize = common::quantize_mnist(&out, &["--backend", "ort", "-q"]);
    assert!(
        quantize.status.code() == Some(0) || quantize.status.code() == Some(1),
        "{quantize:?}"
    );
    // Calibrated through ONNX Runtime (the model input is one of the tapped values). Whatever this CPU makes of
    // the INT8 model (see the CPU-specific tests below), aquant reports what ONNX Runtime's Python package
    // computes on the files it saves, on this CPU: the fully quantized model and the final one.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let metric = &report["metrics"][0];
    let quantized = out.join("intermediate/00_quantized.onnx");
    let ours = common::json_stdout(&common::aquant(&[
        "eval",
        "--model",
        quantized.to_str().unwrap(),
        "--data",
        val.to_str().unwrap(),
        "--backend",
        "ort",
        "--json",
    ]));
    let python = common::ort_eval(&quantized, &val);
    assert_eq!(ours["value"], python["value"]);
    assert_eq!(metric["quantized"].as_f64(), python["value"].as_f64());
    let python_final = common::ort_eval(&out.join("model.onnx"), &val);
    assert_eq!(metric["final"].as_f64(), python_final["value"].as_f64());
}

/// `aquant quantize --algorithm default` of the MNIST CNN (tract calibration): the saved model.
fn default_int8_mnist(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("q");
    let quantize = common::aquant(&[
        "quantize",
        "--algorithm",
        "default",
        "--model",
        assets().join("mnist_cnn/mnist_cnn.onnx").to_str().unwrap(),
        "--calib",
        assets().join("mnist_cnn/calib.json").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "-q",
    ]);
    assert!(quantize.status.success(), "{quantize:?}");
    out.join("model.onnx")
}

#[test]
fn default_int8_mnist_keeps_its_accuracy_in_onnx_runtime_on_a_vnni_cpu() {
    if !common::vnni_here("default_int8_mnist_keeps_its_accuracy_in_onnx_runtime_on_a_vnni_cpu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = default_int8_mnist(dir.path());
    let value = common::ort_eval(&model, &assets().join("mnist_cnn/val.json"))["value"]
        .as_f64()
        .unwrap();
    assert!(
        value > 0.97,
        "INT8 top-1 {value} in ONNX Runtime (VNNI kernels)"
    );
}

/// Judged through the emulation of an AVX2 CPU without VNNI (`common::ort_eval_avx2_no_vnni`), where int8
/// kernels saturate pair sums in int16: the default quantization must keep its accuracy there too (the
/// overflow fix), whatever CPU runs the test.
#[test]
fn default_int8_mnist_keeps_its_accuracy_in_onnx_runtime_on_an_avx2_cpu_without_vnni() {
    let dir = tempfile::tempdir().unwrap();
    let model = default_int8_mnist(dir.path());
    let Some(result) =
        common::ort_eval_avx2_no_vnni(&model, &assets().join("mnist_cnn/val.json"), &[])
    else {
        return;
    };
    let value = result["value"].as_f64().unwrap();
    assert!(
        value > 0.97,
        "INT8 top-1 {value} in ONNX Runtime on an AVX2 CPU without VNNI"
    );
}

#[test]
fn avx2_emulation_reproduces_onnx_runtime_on_a_cpu_without_vnni() {
    // Logits measured on a real AVX2 CPU without VNNI (assets/saturation/README.md), against the harness.
    let dir = tempfile::tempdir().unwrap();
    let logits = dir.path().join("logits.npy");
    let Some(result) = common::ort_eval_avx2_no_vnni(
        &assets().join("saturation/mnist_cnn_int8_full_range.onnx"),
        &assets().join("mnist_cnn/val.json"),
        &["--batch", "1", "--logits", logits.to_str().unwrap()],
    ) else {
        return;
    };
    assert_eq!(
        result["value"].as_f64(),
        Some(0.849),
        "top1.json: mnist_cnn fused"
    );
    let emulated = std::fs::read(&logits).unwrap();
    let measured =
        std::fs::read(assets().join("saturation/mnist_cnn_ort_fused_avx2_no_vnni.npy")).unwrap();
    assert!(
        emulated == measured,
        "the emulated logits are not bit-identical to the measured ones"
    );
}

/// Top-1 agreement of tract running aquant's evaluation form (what the search judges) with ONNX Runtime
/// (default optimizations: its int8 kernels, on this CPU) running the saved QDQ model, on the first `rows`
/// samples of `data`; also tract on the QDQ file itself (the plain simulation), for comparison.
fn tract_ort_agreement(
    model: &str,
    calib: &str,
    data: &str,
    rows: usize,
    overflow_fix: aquant::quantize::OverflowFix,
) -> (f64, f64) {
    let fp32 = Graph::load(&assets().join(model)).unwrap().into_model();
    let calibration = aquant::open_dataset(&assets().join(calib)).unwrap();
    let tract = TractBackend::new();
    let (q, _) = aquant::quantize::quantize(
        &tract,
        fp32,
        calibration.as_ref(),
        &aquant::quantize::QuantizationParams {
            overflow_fix: Some(overflow_fix),
            ..Default::default()
        },
        1,
        &aquant::NoProgress,
    )
    .unwrap();
    let none = std::collections::BTreeSet::new();
    let form = |form| {
        q.build(&none, aquant::quantize::RestoreMode::default(), form)
            .unwrap()
    };
    let export = form(aquant::quantize::ModelForm::Export {
        compress_weights: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("model.onnx");
    aquant_onnx::save_model(&export, &saved).unwrap();
    let rows_arg = rows.to_string();
    let ort = common::ort_eval_with(&saved, &assets().join(data), &["--limit", &rows_arg]);
    let ort: Vec<usize> = ort["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(ort.len(), rows);
    let dataset = aquant::open_dataset(&assets().join(data)).unwrap();
    let agreement = |model: &aquant_onnx::ModelProto| {
        let session = tract.prepare(model, &[]).unwrap();
        let same = (0..rows)
            .filter(|&i| {
                let logits = session
                    .run(common::sample_inputs(dataset.as_ref(), i))
                    .unwrap();
                top1(logits[0].as_f32("logits").unwrap()) == ort[i]
            })
            .count();
        same as f64 / rows as f64
    };
    let evaluation = agreement(&form(aquant::quantize::ModelForm::Evaluation));
    (evaluation, agreement(&export))
}

const BUNDLED_INT8: [(&str, &str, &str, usize); 3] = [
    (
        "mnist_cnn/mnist_cnn.onnx",
        "mnist_cnn/calib.json",
        "mnist_cnn/val.json",
        1000,
    ),
    (
        "imagenet/mobilenet_v2.onnx",
        "imagenet/val.json",
        "imagenet/val.json",
        300,
    ),
    (
        "imagenet/efficientnet_lite0.onnx",
        "imagenet/val.json",
        "imagenet/val.json",
        300,
    ),
];

#[test]
fn tract_evaluation_agrees_with_onnx_runtime_int8_kernels_on_a_vnni_cpu() {
    if !common::vnni_here("tract_evaluation_agrees_with_onnx_runtime_int8_kernels_on_a_vnni_cpu") {
        return;
    }
    use aquant::quantize::OverflowFix;
    // Full-range weights: the integer kernels are modelled exactly, the rest (float Convs feeding residual
    // Adds, summed in another order) costs at most one image in 200. With the default overflow fix, 3 of the
    // 300 MobileNetV2 images differ (measured; the cause is not found yet): the floor is then 0.99.
    for (model, calib, data, rows) in &BUNDLED_INT8[..2] {
        let (full_range, _) = tract_ort_agreement(model, calib, data, *rows, OverflowFix::Disable);
        assert!(full_range >= 0.995, "{model}: top-1 agreement {full_range}");
        let (default, _) = tract_ort_agreement(model, calib, data, *rows, OverflowFix::FirstLayer);
        assert!(
            default >= 0.99,
            "{model} (overflow fix): top-1 agreement {default}"
        );
    }
}

/// The bench line (bench/agreement.sh): tract ↔ ONNX Runtime top-1 agreement on each bundled INT8 model.
#[test]
#[ignore = "bench: bench/agreement.sh prints it"]
fn bench_tract_onnx_runtime_agreement() {
    let cpu = aquant::CpuFeatures::detect();
    for (model, calib, data, rows) in BUNDLED_INT8 {
        for fix in [
            aquant::quantize::OverflowFix::FirstLayer,
            aquant::quantize::OverflowFix::Disable,
        ] {
            let (evaluation, simulation) = tract_ort_agreement(model, calib, data, rows, fix);
            println!(
                "agreement {model} INT8 (default quantization, overflow fix {}), {rows} rows: tract evaluation \
                 form ↔ ONNX Runtime {} (default optimizations) {:.2}% (plain QDQ simulation {:.2}%), CPU: \
                 {cpu} [{}]",
                fix.name(),
                ort_version(),
                100.0 * evaluation,
                100.0 * simulation,
                cpu.flags()
            );
        }
    }
}

fn ort_version() -> String {
    aquant_ort::OrtBackend::new()
        .map(|b| b.version())
        .unwrap_or_else(|e| format!("(unknown: {e})"))
}

fn top1(logits: &ArrayD<f32>) -> usize {
    aquant::metric::argmax(logits.as_slice().unwrap())
}

#[test]
fn image_folder_reproduces_onnx_runtime_predictions_on_the_photos() {
    let photos = aquant::open_dataset(&assets().join("imagenet/photos.json")).unwrap();
    assert_eq!(photos.len(), 20);
    let model = Graph::load(&assets().join("imagenet/mobilenet_v2.onnx"))
        .unwrap()
        .into_model();
    let session = TractBackend::new().prepare(&model, &[]).unwrap();
    let expected = reference_rows("photos_mobilenet_v2_top1.npy");
    let reference_logits = reference_rows("photos_mobilenet_v2_logits.npy");
    let mut agree = 0;
    for i in 0..20 {
        let sample = photos.get(i).unwrap();
        assert!(sample.metadata["file"].ends_with(".jpg"));
        let input: Vec<Tensor> = sample.inputs.into_iter().map(|(_, t)| t).collect();
        let logits = session.run(input).unwrap().remove(0);
        let ours = top1(logits.as_f32("logits").unwrap());
        let theirs = row_i64(expected.as_ref(), i) as usize;
        if ours == theirs {
            agree += 1;
            continue;
        }
        // JPEG decoders differ from libjpeg-turbo by a unit on a few pixels (the transform itself is exact, see
        // below): a disagreement is only acceptable where ONNX Runtime's own decision is a near tie.
        let reference = row_f32(reference_logits.as_ref(), i);
        let (a, b) = (
            reference.as_slice().unwrap()[theirs],
            reference.as_slice().unwrap()[ours],
        );
        assert!(
            (a - b).abs() < 1e-3 * a.abs(),
            "photo {i}: {ours} vs ONNX Runtime's {theirs} ({b} vs {a})"
        );
    }
    assert!(agree >= 19, "only {agree} of 20 photos agree");
}

#[test]
fn image_transform_is_pillow_exact_on_pillow_decoded_pixels() {
    let spec: DataSpec = serde_json::from_value(serde_json::json!({
        "format": "images", "root": ".", "resize": 256, "center_crop": 224,
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]
    }))
    .unwrap();
    let decoded = spec.open(&reference()).unwrap();
    assert_eq!(decoded.len(), 1, "the one PNG in tests/reference");
    let ours = decoded.get(0).unwrap().inputs[0]
        .1
        .as_f32("photo")
        .unwrap()
        .clone();
    let pil = row_f32(reference_rows("photo_00_pil_decoded_input.npy").as_ref(), 0);
    assert_eq!(ours.shape(), pil.shape());
    let max = ours
        .iter()
        .zip(pil.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-5, "max |aquant - Pillow| = {max}");
    // From the JPEG, the decoder's rounding shows but stays within a few 1/255 steps.
    let photos = aquant::open_dataset(&assets().join("imagenet/photos.json")).unwrap();
    let from_jpeg = photos.get(0).unwrap().inputs[0]
        .1
        .as_f32("photo")
        .unwrap()
        .clone();
    let mean_abs: f32 = from_jpeg
        .iter()
        .zip(pil.iter())
        .map(|(a, b)| (a - b).abs())
        .sum::<f32>()
        / from_jpeg.len() as f32;
    assert!(mean_abs < 0.01, "mean |aquant - PIL| = {mean_abs}");
    assert!(Path::new(&assets().join("imagenet/photos")).is_dir());
}

#[test]
fn real_models_round_trip_losslessly() {
    for model in [
        "mnist_cnn/mnist_cnn.onnx",
        "imagenet/mobilenet_v2.onnx",
        "imagenet/efficientnet_lite0.onnx",
    ] {
        let path = assets().join(model);
        let bytes = std::fs::read(&path).unwrap();
        let loaded = aquant_onnx::load_model(&path).unwrap();
        let encoded = aquant_onnx::encode_model(&loaded);
        assert_eq!(encoded, bytes, "{model}: decode → encode is byte-identical");
        let again = aquant_onnx::decode_model(&encoded, &path).unwrap();
        assert_eq!(again.graph, loaded.graph);
    }
}

/// The case of the fidelity issue (on a CPU without VNNI the search reverts MobileNetV2's first Conv): with the
/// first Conv in FP32 the raw input reaches a float Conv whose output is then quantized, so every bit of the
/// input and of that Conv counts. aquant's ONNX Runtime session computes the same bits as ONNX Runtime's Python
/// package on the saved file, sample by sample.
#[test]
fn ort_backend_computes_the_bits_onnx_runtime_python_computes_with_the_first_conv_reverted() {
    let fp32 = Graph::load(&assets().join("imagenet/mobilenet_v2.onnx"))
        .unwrap()
        .into_model();
    let data = assets().join("imagenet/val.json");
    let dataset = aquant::open_dataset(&data).unwrap();
    let params = aquant::quantize::QuantizationParams {
        stat_subset_size: 32,
        ..Default::default()
    };
    let ort = aquant_ort::OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
    let (q, _) = aquant::quantize::quantize(
        &ort,
        fp32,
        dataset.as_ref(),
        &params,
        1,
        &aquant::NoProgress,
    )
    .unwrap();
    let reverted = ["/features/features.0/features.0.0/Conv".to_string()].into();
    let model = q
        .build(
            &reverted,
            aquant::quantize::RestoreMode::default(),
            aquant::quantize::ModelForm::Export {
                compress_weights: true,
            },
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (saved, logits) = (dir.path().join("model.onnx"), dir.path().join("logits.npy"));
    aquant_onnx::save_model(&model, &saved).unwrap();
    let rows = 100;
    let python = common::ort_eval_with(
        &saved,
        &data,
        &[
            "--limit",
            &rows.to_string(),
            "--logits",
            logits.to_str().unwrap(),
        ],
    );
    assert_eq!(python["samples"], rows);
    let python_logits = reference_rows_at(&logits);
    let session = ort
        .prepare(&aquant_onnx::load_model(&saved).unwrap(), &[])
        .unwrap();
    for i in 0..rows {
        let ours = session
            .run(common::sample_inputs(dataset.as_ref(), i))
            .unwrap()
            .remove(0);
        let ours = ours.as_f32("logits").unwrap();
        let theirs = row_f32(python_logits.as_ref(), i);
        assert_eq!(
            ours.as_slice().unwrap(),
            theirs.as_slice().unwrap(),
            "row {i}"
        );
    }
}

/// Reads an `.npy` file of rows through aquant's own loader.
fn reference_rows_at(file: &Path) -> Box<dyn Dataset> {
    let spec: DataSpec = serde_json::from_value(serde_json::json!({
        "format": "npy", "inputs": {"x": file.file_name().unwrap().to_str().unwrap()}
    }))
    .unwrap();
    spec.open(file.parent().unwrap()).unwrap()
}

/// End to end on the CPU of the fidelity issue: aquant itself runs as on an AVX2 CPU without VNNI, where the
/// full-range INT8 MNIST CNN saturates in ONNX Runtime's kernels, and its accuracy-aware search with ONNX
/// Runtime as the engine reports, for the model it saves, what ONNX Runtime's Python package computes on that
/// CPU. About 2 minutes under emulation.
#[test]
#[ignore = "2 minutes under qemu"]
fn ort_backend_final_metric_is_onnx_runtime_python_on_an_avx2_cpu_without_vnni() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q");
    let val = assets().join("mnist_cnn/val.json");
    let Some(quantize) = common::aquant_avx2_no_vnni(&[
        "quantize",
        "--model",
        assets().join("mnist_cnn/mnist_cnn.onnx").to_str().unwrap(),
        "--calib",
        assets().join("mnist_cnn/calib.json").to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--max-drop",
        "0.003",
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "ort",
        "-q",
    ]) else {
        return;
    };
    assert!(
        quantize.status.code() == Some(0) || quantize.status.code() == Some(1),
        "{quantize:?}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let metric = &report["metrics"][0];
    let python = common::ort_eval_avx2_no_vnni(&out.join("model.onnx"), &val, &[]).unwrap();
    assert_eq!(
        metric["final"].as_f64(),
        python["value"].as_f64(),
        "{report}"
    );
    let quantized = out.join("intermediate/00_quantized.onnx");
    let python = common::ort_eval_avx2_no_vnni(&quantized, &val, &[]).unwrap();
    assert_eq!(
        metric["quantized"].as_f64(),
        python["value"].as_f64(),
        "{report}"
    );
}
