//! Prefix caching is exact: a ranking candidate's suffix, run on the base model's tapped values, gives the
//! outputs of the whole candidate bit for bit — on MobileNetV2, whose residual additions make the suffix
//! read values from several places upstream.

mod common;

use std::collections::BTreeSet;

use aquant::graph::changed_suffix;
use aquant::quantize::{self, ModelForm, QuantizationParams, RestoreMode};
use aquant::{Backend, Graph, NoProgress, Tensor};
use aquant_tract::TractBackend;
use common::{assets, sample_inputs};

#[test]
fn suffixes_on_tapped_values_equal_whole_candidates_bit_for_bit() {
    let model = Graph::load(&assets().join("imagenet/mobilenet_v2.onnx"))
        .unwrap()
        .into_model();
    let data = aquant::open_dataset(&assets().join("imagenet/val.json")).unwrap();
    let backend = TractBackend::new();
    let params = QuantizationParams {
        stat_subset_size: 4,
        ..Default::default()
    };
    let (quantized, _) =
        quantize::quantize(&backend, model, data.as_ref(), &params, 1, &NoProgress).unwrap();
    let groups = aquant::search::quantizer_groups(quantized.placement());
    let build = |reverted: &BTreeSet<String>| {
        quantized
            .build(reverted, RestoreMode::default(), ModelForm::Evaluation)
            .unwrap()
    };
    // The base has one group reverted already, as after a first step of the search.
    let base_reverted: BTreeSet<String> = groups[5].nodes.iter().cloned().collect();
    let base = build(&base_reverted);
    let samples: Vec<Vec<Tensor>> = (0..2).map(|i| sample_inputs(data.as_ref(), i)).collect();
    let mut checked = 0;
    let first_conv: BTreeSet<String> = base_reverted
        .iter()
        .chain(&groups[0].nodes)
        .cloned()
        .collect();
    assert!(
        changed_suffix(&base, &build(&first_conv)).is_none(),
        "a change at the input leaves nothing to share"
    );
    for group in [1, 3, 17, 30, groups.len() - 1] {
        let mut reverted = base_reverted.clone();
        reverted.extend(groups[group].nodes.iter().cloned());
        let candidate = build(&reverted);
        let suffix = changed_suffix(&base, &candidate)
            .unwrap_or_else(|| panic!("group {group} has a suffix"));
        let total = candidate.graph.as_ref().unwrap().node.len();
        assert!(suffix.nodes < total, "group {group}: the suffix is smaller");
        let whole = backend.prepare(&candidate, &[]).unwrap();
        let tapped = backend.prepare(&base, &suffix.boundary).unwrap();
        for inputs in &samples {
            let expected = whole.run(inputs.clone()).unwrap();
            let outputs = tapped.run(inputs.clone()).unwrap();
            let boundary = outputs[1..].to_vec();
            let part = backend
                .prepare(&suffix.model_for(&boundary).unwrap(), &[])
                .unwrap();
            assert_eq!(part.run(boundary).unwrap(), expected, "group {group}");
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
}

#[test]
fn identical_models_have_no_suffix() {
    let model = Graph::load(&assets().join("mnist_cnn/mnist_cnn.onnx"))
        .unwrap()
        .into_model();
    assert!(changed_suffix(&model, &model).is_none());
}
