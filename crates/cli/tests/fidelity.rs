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
    let (model, calib, val) = (
        assets().join("mnist_cnn/mnist_cnn.onnx"),
        assets().join("mnist_cnn/calib.json"),
        assets().join("mnist_cnn/val.json"),
    );
    let out = dir.path().join("q");
    let quantize = common::aquant(&[
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--backend",
        "ort",
        "-q",
    ]);
    assert!(quantize.status.success(), "{quantize:?}");
    // Calibrated through ONNX Runtime (the model input is one of the tapped values): the INT8 model is as
    // good as FP32 and scored as ONNX Runtime's Python package scores it.
    let quantized = out.join("intermediate/00_quantized.onnx");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let int8 = report["metrics"][0]["quantized"].as_f64().unwrap();
    assert!(int8 > 0.97, "INT8 top-1 {int8}");
    assert_eq!(report["reverted_ops"], 0);
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
    assert_eq!(ours["value"].as_f64().unwrap(), int8);
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
