//! Prefix caching is exact: a ranking candidate's suffix, run on the base model's tapped values, gives the
//! outputs of the whole candidate bit for bit — on MobileNetV2, whose residual additions make the suffix
//! read values from several places upstream. On tract (quantization simulated in f32, cut anywhere) and on
//! ONNX Runtime (the QDQ model fused into integer kernels, cut at quantized values only).

mod common;

use std::collections::BTreeSet;

use aquant::graph::{changed_suffix, Cut};
use aquant::quantize::{self, ModelForm, QuantizationParams, RestoreMode};
use aquant::{Backend, Graph, NoProgress, Tensor};
use aquant_tract::TractBackend;
use common::{assets, sample_inputs};

/// Checks every suffix of a few of MobileNetV2's groups on `backend`, candidates built in `form` and cut
/// where `cut` allows; returns the suffix boundaries, by group.
fn suffixes_equal_whole_candidates(
    backend: &dyn Backend,
    form: ModelForm,
    cut: Cut,
) -> Vec<Vec<String>> {
    let model = Graph::load(&assets().join("imagenet/mobilenet_v2.onnx"))
        .unwrap()
        .into_model();
    let data = aquant::open_dataset(&assets().join("imagenet/val.json")).unwrap();
    let params = QuantizationParams {
        stat_subset_size: 4,
        ..Default::default()
    };
    let (quantized, _) =
        quantize::quantize(backend, model, data.as_ref(), &params, 1, &NoProgress).unwrap();
    let groups = aquant::search::quantizer_groups(quantized.placement());
    let build = |reverted: &BTreeSet<String>| {
        quantized
            .build(reverted, RestoreMode::default(), form)
            .unwrap()
    };
    // The base has one group reverted already, as after a first step of the search.
    let base_reverted: BTreeSet<String> = groups[5].nodes.iter().cloned().collect();
    let base = build(&base_reverted);
    let samples: Vec<Vec<Tensor>> = (0..2).map(|i| sample_inputs(data.as_ref(), i)).collect();
    let first_conv: BTreeSet<String> = base_reverted
        .iter()
        .chain(&groups[0].nodes)
        .cloned()
        .collect();
    assert!(
        changed_suffix(&base, &build(&first_conv), cut).is_none(),
        "a change at the input leaves nothing to share"
    );
    let mut boundaries = Vec::new();
    for group in [1, 3, 17, 30, groups.len() - 1] {
        let mut reverted = base_reverted.clone();
        reverted.extend(groups[group].nodes.iter().cloned());
        let candidate = build(&reverted);
        let suffix = changed_suffix(&base, &candidate, cut)
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
        }
        eprintln!(
            "group {group}: {} of {total} nodes, from {:?}",
            suffix.nodes, suffix.boundary
        );
        boundaries.push(suffix.boundary);
    }
    boundaries
}

#[test]
fn suffixes_on_tapped_values_equal_whole_candidates_bit_for_bit() {
    let boundaries =
        suffixes_equal_whole_candidates(&TractBackend::new(), ModelForm::Evaluation, Cut::Anywhere);
    assert_eq!(boundaries.len(), 5);
}

#[test]
fn on_onnx_runtime_suffixes_start_at_quantized_values_and_equal_whole_candidates() {
    let ort = aquant_ort::OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
    let form = ModelForm::Export {
        compress_weights: true,
    };
    let boundaries = suffixes_equal_whole_candidates(&ort, form, Cut::AtQuantizedValues);
    // Every value a suffix reads is what a QuantizeLinear writes (the export names them so): a float value
    // between the ops of a fused group is never an output.
    for value in boundaries.iter().flatten() {
        assert!(value.ends_with("_quantized"), "{value} is not quantized");
    }
}

#[test]
fn identical_models_have_no_suffix() {
    let model = Graph::load(&assets().join("mnist_cnn/mnist_cnn.onnx"))
        .unwrap()
        .into_model();
    for cut in [Cut::Anywhere, Cut::AtQuantizedValues] {
        assert!(changed_suffix(&model, &model, cut).is_none());
    }
}

/// The sensitivity analysis runs each op's model from where it departs from the FP32 model (the prefix-cache
/// lever): on tract its figures are the whole models' bit for bit; on ONNX Runtime, which fuses some FP32
/// nodes with their reader unless the value between them is an output, within float rounding of them.
/// EfficientNet-Lite0 computes shapes at run time: its suffixes take them from the activations themselves.
#[test]
fn sensitivity_from_suffixes_equals_whole_models() {
    let ort = aquant_ort::OrtBackend::new().expect("ONNX Runtime (scripts/requirements.txt)");
    let tract = TractBackend::new();
    let data = aquant::open_dataset(&assets().join("imagenet/val.json")).unwrap();
    let cases: [(&str, &dyn Backend, f64); 4] = [
        ("mobilenet_v2", &tract, 0.0),
        ("mobilenet_v2", &ort, 1e-4),
        ("efficientnet_lite0", &tract, 0.0),
        ("efficientnet_lite0", &ort, 1e-4),
    ];
    for (name, backend, tolerance) in cases {
        let model = Graph::load(&assets().join(format!("imagenet/{name}.onnx")))
            .unwrap()
            .into_model();
        let params = QuantizationParams {
            stat_subset_size: 4,
            ..Default::default()
        };
        let (quantized, _) =
            quantize::quantize(backend, model, data.as_ref(), &params, 1, &NoProgress).unwrap();
        let analyze = |from_suffixes| {
            aquant::sensitivity::analyze(&quantized, backend, data.as_ref(), 2, 1, from_suffixes)
                .unwrap()
                .0
        };
        let (whole, suffixes) = (analyze(false), analyze(true));
        assert_eq!(whole.all_quantized_nmse, suffixes.all_quantized_nmse);
        assert_eq!(whole.layers.len(), suffixes.layers.len());
        for (w, s) in whole.layers.iter().zip(&suffixes.layers) {
            assert_eq!(w.node, s.node);
            let off = (w.nmse - s.nmse).abs() / w.nmse.abs().max(f64::MIN_POSITIVE);
            assert!(
                off <= tolerance,
                "{name}, {}: {} vs {}",
                w.node,
                w.nmse,
                s.nmse
            );
        }
    }
}
