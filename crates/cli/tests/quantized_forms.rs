//! The evaluation form of a quantized model (fake-quantized FP32 weights, activation quantizers spelled out
//! in f32 ops) gives the same bits as the deployable QDQ form: the search may judge the cheaper one.

mod common;

use std::collections::BTreeSet;

use aquant::quantize::{self, ModelForm, QuantizationParams, RestoreMode};
use aquant::{Backend, Graph, NoProgress};
use aquant_tract::TractBackend;
use common::assets;

fn assert_forms_agree(model: &str, data: &str, samples: usize, reverted: &[&str]) {
    let model = Graph::load(&assets().join(model)).unwrap().into_model();
    let dataset = aquant::open_dataset(&assets().join(data)).unwrap();
    let params = QuantizationParams {
        stat_subset_size: 32,
        ..Default::default()
    };
    let backend = TractBackend::new();
    let (q, _) =
        quantize::quantize(&backend, model, dataset.as_ref(), &params, 1, &NoProgress).unwrap();
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
    let a = backend.prepare(&export, &[]).unwrap();
    let b = backend.prepare(&evaluation, &[]).unwrap();
    for i in 0..samples {
        let input = common::sample_inputs(dataset.as_ref(), i);
        let (ya, yb) = (a.run(input.clone()).unwrap(), b.run(input).unwrap());
        assert_eq!(ya, yb, "sample {i}: the two forms differ");
    }
}

#[test]
fn mnist_forms_are_bit_identical() {
    assert_forms_agree("mnist_cnn/mnist_cnn.onnx", "mnist_cnn/calib.json", 16, &[]);
}

#[test]
fn mobilenet_v2_forms_are_bit_identical_with_a_reverted_op() {
    assert_forms_agree(
        "imagenet/mobilenet_v2.onnx",
        "imagenet/val.json",
        4,
        &["/features/features.3/conv/conv.1/conv.1.0/Conv"],
    );
}
