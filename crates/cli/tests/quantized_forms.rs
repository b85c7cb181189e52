//! The evaluation form of a quantized model (integer kernels where ONNX Runtime fuses, fake quantization
//! elsewhere, in f32 ops; what the search judges with tract) computes what the deployable QDQ form computes in
//! ONNX Runtime with its int8 kernels (default optimizations): the same top-1 and nearly the same logits. Those
//! kernels depend on the CPU (without VNNI they saturate int16 pair sums), so the tests need one with VNNI.

mod common;

use std::collections::BTreeSet;

use aquant::quantize::{self, ModelForm, QuantizationParams, RestoreMode};
use aquant::{Backend, Graph, NoProgress};
use aquant_tract::TractBackend;
use common::assets;

fn assert_forms_agree(model: &str, data: &str, samples: usize, reverted: &[&str], tolerance: f32) {
    let model = Graph::load(&assets().join(model)).unwrap().into_model();
    let dataset = aquant::open_dataset(&assets().join(data)).unwrap();
    let params = QuantizationParams {
        stat_subset_size: 32,
        ..Default::default()
    };
    let tract = TractBackend::new();
    let (q, _) =
        quantize::quantize(&tract, model, dataset.as_ref(), &params, 1, &NoProgress).unwrap();
    let reverted: BTreeSet<String> = reverted.iter().map(|s| s.to_string()).collect();
    let export = q
        .build(
            &reverted,
            RestoreMode::default(),
            ModelForm::Export {
                compress_weights: true,
            },
        )
        .unwrap();
    let evaluation = q
        .build(&reverted, RestoreMode::default(), ModelForm::Evaluation)
        .unwrap();
    let ort = aquant_ort::OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
    let deployed = ort.prepare(&export, &[]).unwrap();
    let evaluated = tract.prepare(&evaluation, &[]).unwrap();
    for i in 0..samples {
        let input = common::sample_inputs(dataset.as_ref(), i);
        let a = deployed.run(input.clone()).unwrap().remove(0);
        let b = evaluated.run(input).unwrap().remove(0);
        let (a, b) = (a.as_f32("ort").unwrap(), b.as_f32("tract").unwrap());
        let top1 = |x: &ndarray::ArrayD<f32>| aquant::metric::argmax(x.as_slice().unwrap());
        assert_eq!(top1(a), top1(b), "sample {i}: the forms disagree on top-1");
        let max = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(max <= tolerance, "sample {i}: logits differ by {max}");
    }
}

#[test]
fn mnist_evaluation_form_computes_onnx_runtime_int8_kernels_on_a_vnni_cpu() {
    if common::vnni_here("mnist_evaluation_form_computes_onnx_runtime_int8_kernels_on_a_vnni_cpu") {
        // Every MNIST op but one Conv and its MaxPool runs as an integer kernel: nearly the same bits.
        assert_forms_agree(
            "mnist_cnn/mnist_cnn.onnx",
            "mnist_cnn/calib.json",
            16,
            &[],
            1e-3,
        );
    }
}

#[test]
fn mobilenet_v2_evaluation_form_computes_onnx_runtime_int8_kernels_with_a_reverted_op_on_a_vnni_cpu(
) {
    if common::vnni_here("mobilenet_v2_evaluation_form_computes_onnx_runtime_int8_kernels_with_a_reverted_op_on_a_vnni_cpu") {
        // Float convs (residual branches) sum in a different order than ONNX Runtime's: a few output steps.
        assert_forms_agree(
            "imagenet/mobilenet_v2.onnx",
            "imagenet/val.json",
            4,
            &["/features/features.3/conv/conv.1/conv.1.0/Conv"],
            1.0,
        );
    }
}
