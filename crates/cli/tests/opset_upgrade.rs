//! Raising a model to opset 21 (what a 16-bit quantizer needs) changes nothing ONNX Runtime computes.

mod common;

use std::path::Path;

use common::{assets, npy_f32, ort_eval_with};

/// ONNX Runtime's first output on the first samples of `data`, for `model`.
fn logits(model: &Path, data: &Path, out: &Path) -> Vec<f32> {
    ort_eval_with(
        model,
        data,
        &["--limit", "16", "--logits", out.to_str().unwrap()],
    );
    npy_f32(out)
}

#[test]
fn the_bundled_models_at_opset_21_compute_what_they_did_at_13() {
    let dir = tempfile::tempdir().unwrap();
    for (model, data) in [
        ("mnist_cnn/mnist_cnn.onnx", "mnist_cnn/val.json"),
        ("imagenet/mobilenet_v2.onnx", "imagenet/val.json"),
        ("imagenet/efficientnet_lite0.onnx", "imagenet/val.json"),
    ] {
        let original = assets().join(model);
        let mut upgraded = aquant_onnx::load_model(&original).unwrap();
        assert_eq!(aquant_onnx::default_opset(&upgraded), 13, "{model}");
        aquant_onnx::opset::upgrade(&mut upgraded, 21).unwrap();
        let path = dir.path().join("upgraded.onnx");
        aquant_onnx::save_model(&upgraded, &path).unwrap();
        let data = assets().join(data);
        let before = logits(&original, &data, &dir.path().join("before.npy"));
        let after = logits(&path, &data, &dir.path().join("after.npy"));
        assert_eq!(before.len(), after.len(), "{model}");
        let worst = before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-4,
            "{model}: outputs moved by {worst} at opset 21"
        );
    }
}
