//! `onnx_load`: bytes → ONNX decode → [`Graph`] → everything that runs without an engine.
//!
//! A model with tensors in external data is also loaded from a file in the fixture folder, where `weights.bin`
//! (64 bytes) is what its `location`s can name; `load_model` itself refuses locations leaving the folder.
//!
//! After the graph is built the body goes as far downstream as it can without a backend: what `aquant inspect`
//! prints, placement, weight quantization, and the quantized model in its three forms, each of which must be a
//! valid graph again (a built model that fails validation is a bug, so that is asserted).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aquant::graph::Graph;
use aquant::numerics::{weight_range, Mode, QuantSpec, Quantizer};
use aquant::quantize::{
    self, ModelForm, Placement, QuantizationParams, QuantizedModel, RestoreMode,
};
use aquant_onnx::proto::tensor_proto::DataLocation;
use aquant_onnx::{tensor, ModelProto};

use crate::fixture;

/// Runs one fuzz input through the ONNX loader and the graph builder.
pub fn onnx_load(bytes: &[u8]) {
    let Ok(model) = aquant_onnx::decode_model(bytes, Path::new("fuzz.onnx")) else {
        return;
    };
    let encoded = aquant_onnx::encode_model(&model);
    aquant_onnx::decode_model(&encoded, Path::new("re-encoded.onnx"))
        .expect("a decoded model re-encodes to a decodable one");
    let model = if has_external_data(&model) {
        let _guard = fixture::lock();
        match aquant_onnx::load_model(&fixture::write("fuzz.onnx", bytes)) {
            Ok(inlined) => inlined,
            Err(_) => return,
        }
    } else {
        model
    };
    let Ok(graph) = Graph::new(model) else {
        return;
    };
    inspect(&graph);
    let params = QuantizationParams::default();
    let Ok(placement) = quantize::place(&graph, &params) else {
        return;
    };
    let Ok(quantized) = quantized_model(graph, placement, &params) else {
        return;
    };
    build_every_form(&quantized);
}

fn has_external_data(model: &ModelProto) -> bool {
    model
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .any(|t| t.data_location == Some(DataLocation::External as i32))
}

/// What `aquant inspect` reads.
fn inspect(graph: &Graph) {
    let _ = (graph.inputs(), graph.outputs(), graph.op_counts());
    let _ = aquant_onnx::default_opset(graph.model());
    for node in graph.nodes() {
        for value in &node.output {
            let _ = (
                graph.value_info(value),
                graph.consumers(value),
                graph.producer(value),
            );
        }
    }
}

/// The quantized model `aquant quantize` would build, with a fixed activation range standing in for
/// calibration (which needs an engine).
fn quantized_model(
    graph: Graph,
    placement: Placement,
    params: &QuantizationParams,
) -> aquant::Result<QuantizedModel> {
    let activation_spec = QuantSpec::new(8, Mode::Symmetric, true, false)?;
    let activations = placement
        .activations
        .iter()
        .map(|q| {
            let p = Quantizer::from_range(&activation_spec, &[-1.0], &[1.0], None)?;
            Ok((q.tensor.clone(), p))
        })
        .collect::<aquant::Result<BTreeMap<_, _>>>()?;
    let w = &params.weights;
    let weight_spec =
        QuantSpec::new(w.bits, w.mode, true, true)?.with_levels(w.level_low, w.level_high)?;
    let mut weights = BTreeMap::new();
    for node in &placement.nodes {
        let Some(slot) = &node.weight else { continue };
        let initializer = graph
            .initializer(&slot.initializer)
            .expect("placement only names existing initializers");
        let dims = tensor::dims(initializer)?;
        let values = tensor::to_f32(initializer)?;
        let (min, max) = weight_range(&values, &dims, node.weight_axis)?;
        let p = Quantizer::from_range(&weight_spec, &min, &max, node.weight_axis)?;
        weights.insert(node.name.clone(), p);
    }
    QuantizedModel::new(graph, placement, activations, weights, BTreeMap::new())
}

/// Builds the export and evaluation forms, with nothing and with the first node reverted.
fn build_every_form(quantized: &QuantizedModel) {
    let first: BTreeSet<String> = quantized
        .placement()
        .nodes
        .iter()
        .take(1)
        .map(|n| n.name.clone())
        .collect();
    let forms = [
        ModelForm::Export {
            compress_weights: true,
        },
        ModelForm::Export {
            compress_weights: false,
        },
        ModelForm::Evaluation,
    ];
    for form in forms {
        for (reverted, mode) in [
            (&BTreeSet::new(), RestoreMode::ActivationsAndWeights),
            (&first, RestoreMode::OnlyActivations),
        ] {
            // Building may refuse what placement accepted (a bias of the wrong length…): an error, not a bug.
            let Ok(model) = quantized.build(reverted, mode, form) else {
                continue;
            };
            if let Err(e) = Graph::new(model) {
                panic!("the built {form:?} model is not a valid graph: {e}");
            }
        }
    }
}
