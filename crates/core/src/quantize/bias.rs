//! Fast bias correction (NNCF `FastBiasCorrection`, POT `use_fast_bias`).
//!
//! Quantizing a layer's weights and input shifts the mean of its output. For each quantized layer with a bias,
//! the layer is run alone on the mean calibration input, once in FP32 and once quantized (input fake-quantized
//! by its activation quantizer, weights by theirs); the per-channel difference of the output means is added to
//! the bias. Like NNCF, a correction larger than `MAX_SHIFT_MAGNITUDE` times the bias itself is rejected as
//! unreliable. The corrected bias lives in [`QuantizedModel`](super::QuantizedModel), so reverting the layer
//! restores the original one.

use std::collections::{BTreeMap, HashMap};

use aquant_onnx::{tensor, NodeProto};
use ndarray::{ArrayD, Axis};

use crate::backend::Backend;
use crate::builder::ModelBuilder;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::numerics::Quantizer;
use crate::quantize::placement::{Placement, QuantizedNode};
use crate::tensor::Tensor;

/// NNCF's threshold on `max |shift / bias|` above which a correction is not applied.
const MAX_SHIFT_MAGNITUDE: f32 = 2.0;

/// Corrected biases by node name, for every layer where a correction applies.
pub fn fast_bias_correction(
    backend: &dyn Backend,
    graph: &Graph,
    placement: &Placement,
    activations: &BTreeMap<String, Quantizer>,
    weights: &BTreeMap<String, Quantizer>,
    mean_inputs: &HashMap<String, ArrayD<f32>>,
) -> Result<BTreeMap<String, Vec<f32>>> {
    let mut corrected = BTreeMap::new();
    for node in placement
        .nodes
        .iter()
        .filter(|n| n.bias.is_some() && n.weight.is_some())
    {
        let input = &node.activations[0].1;
        let Some(mean) = mean_inputs.get(input) else {
            continue;
        };
        let bias = correct_one(
            backend,
            graph,
            node,
            mean,
            &activations[input],
            &weights[&node.name],
        )?;
        if let Some(bias) = bias {
            corrected.insert(node.name.clone(), bias);
        }
    }
    Ok(corrected)
}

fn correct_one(
    backend: &dyn Backend,
    graph: &Graph,
    node: &QuantizedNode,
    mean_input: &ArrayD<f32>,
    input_params: &Quantizer,
    weight_params: &Quantizer,
) -> Result<Option<Vec<f32>>> {
    let original = graph.node(&node.name).expect("placed nodes exist");
    let weight = node.weight.as_ref().expect("filtered on weight");
    let bias = node.bias.as_ref().expect("filtered on bias");
    let w = graph
        .initializer(&weight.initializer)
        .expect("placement checked it");
    let b = graph
        .initializer(&bias.initializer)
        .expect("placement checked it");
    let (w_dims, w_values) = (tensor::dims(w)?, tensor::to_f32(w)?);
    let (b_dims, b_values) = (tensor::dims(b)?, tensor::to_f32(b)?);
    let mut w_quantized = w_values.clone();
    weight_params.fake_quantize_tensor(&mut w_quantized, &w_dims)?;
    let mut x_quantized = mean_input.clone();
    let x_shape = x_quantized.shape().to_vec();
    input_params.fake_quantize_tensor(
        x_quantized
            .as_slice_mut()
            .ok_or_else(|| Error::data("mean input is not contiguous"))?,
        &x_shape,
    )?;

    let opset = aquant_onnx::default_opset(graph.model());
    let dims: Vec<Option<usize>> = x_shape.iter().map(|&d| Some(d)).collect();
    let probe = ModelBuilder::new(opset)
        .input("x", &dims)
        .input("x_q", &dims)
        .initializer("w", &w_dims, &w_values)
        .initializer("w_q", &w_dims, &w_quantized)
        .initializer("b", &b_dims, &b_values)
        .raw_node(probe_node(original, node, ["x", "w", "b"], "y"))
        .raw_node(probe_node(original, node, ["x_q", "w_q", "b"], "y_q"))
        .output_untyped("y")
        .output_untyped("y_q")
        .build();
    let session = backend.prepare(&probe, &[])?;
    let outputs = session.run(vec![
        Tensor::F32(mean_input.clone()),
        Tensor::F32(x_quantized),
    ])?;
    let (y, y_q) = (
        outputs[0].as_f32("probe output")?,
        outputs[1].as_f32("probe output")?,
    );
    Ok(shifted(&b_values, y, y_q))
}

/// `bias` shifted by the per-channel mean of `y − y_q` (channels on axis 1); `None` when the output does not
/// have one channel per bias value or the shift is unreliable (not finite, or at least
/// `MAX_SHIFT_MAGNITUDE` times the bias).
fn shifted(bias: &[f32], y: &ArrayD<f32>, y_q: &ArrayD<f32>) -> Option<Vec<f32>> {
    if y.ndim() < 2 || y.shape()[1] != bias.len() {
        return None;
    }
    let diff = y - y_q;
    let channel_mean = |a: &ArrayD<f32>| -> Vec<f32> {
        let moved = a.view().permuted_axes(channel_first_order(a.ndim()));
        moved
            .axis_iter(Axis(0))
            .map(|c| c.mean().unwrap_or(0.0))
            .collect()
    };
    let shift = channel_mean(&diff);
    let magnitude = shift
        .iter()
        .zip(bias)
        .filter(|(_, b)| **b != 0.0)
        .map(|(s, b)| (s / b).abs())
        .fold(0.0f32, f32::max);
    if !shift.iter().all(|s| s.is_finite()) || magnitude >= MAX_SHIFT_MAGNITUDE {
        return None;
    }
    Some(bias.iter().zip(&shift).map(|(b, s)| b + s).collect())
}

/// Axis order putting axis 1 (channels) first.
fn channel_first_order(ndim: usize) -> Vec<usize> {
    std::iter::once(1)
        .chain(std::iter::once(0))
        .chain(2..ndim)
        .collect()
}

fn probe_node(
    original: &NodeProto,
    node: &QuantizedNode,
    inputs: [&str; 3],
    output: &str,
) -> NodeProto {
    let weight = node.weight.as_ref().map_or(1, |w| w.input);
    let bias = node.bias.as_ref().map_or(2, |b| b.input);
    let mut input = original.input.clone();
    input[node.activations[0].0] = inputs[0].into();
    input[weight] = inputs[1].into();
    input[bias] = inputs[2].into();
    NodeProto {
        name: Some(format!("probe_{output}")),
        input,
        output: vec![output.into()],
        ..original.clone()
    }
}
