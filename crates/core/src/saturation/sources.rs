//! Where the analysed layers come from: a [`QuantizedModel`] (its placement and parameters, before any model
//! is built) or a saved QDQ model (the integers behind its `DequantizeLinear`s). The op families say which
//! ops an int8 kernel reduces, and how ([`crate::ops::QuantizedOp::reduction`]).

use aquant_onnx::proto::tensor_proto::DataType;
use aquant_onnx::{attr, tensor, NodeProto};

use super::layers::{layer, ActivationCodes, Layer, Observed};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::numerics::Quantizer;
use crate::ops::{self, Reduction};
use crate::quantize::QuantizedModel;

/// The layers of a quantized model: every placed op with a quantized weight whose kernel is modelled.
pub fn from_quantized(model: &QuantizedModel) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    for node in &model.placement().nodes {
        let (Some(weight), Some((_, input))) = (&node.weight, node.activations.first()) else {
            continue;
        };
        let proto = model.fp32().node(&node.name).expect("placed nodes exist");
        let Some(reduction) = reduction(proto) else {
            continue;
        };
        let act = model
            .activation_params(input)
            .expect("placed inputs have parameters");
        let w = model
            .weight_params(&node.name)
            .expect("placed weights have parameters");
        let initializer = model
            .fp32()
            .initializer(&weight.initializer)
            .expect("placement checked it");
        let dims = tensor::dims(initializer)?;
        let codes = w.quantize_tensor(&tensor::to_f32(initializer)?, &dims)?;
        let bits_note = (act.bits != 8 || w.bits != 8).then(|| "16-bit quantizers".to_string());
        layers.push(layer(
            proto,
            reduction,
            Observed::dequantized(format!("{input}_dequantized")),
            activation_codes(act),
            &dims,
            codes,
            bits_note,
        )?);
    }
    Ok(layers)
}

/// How the kernel sees activations quantized by `p`.
fn activation_codes(p: &Quantizer) -> ActivationCodes {
    ActivationCodes {
        scale: p.scale[0],
        zero_point: p.zero_point[0],
        signed: p.signed,
    }
}

/// How an int8 kernel reduces `node`, when its op family models it.
fn reduction(node: &NodeProto) -> Option<Reduction> {
    ops::lookup(node.op_type.as_deref()?)?.reduction(node)
}

/// The layers of a QDQ model: nodes of a modelled kernel whose input and weight come from `DequantizeLinear`.
pub fn from_qdq(graph: &Graph) -> Result<Vec<Layer>> {
    let mut layers = Vec::new();
    // The 8-bit codes `QuantizeLinear`s write: where an activation's codes can be observed as stored.
    let quantized = graph
        .model()
        .graph
        .as_ref()
        .map(crate::graph::quantized_values)
        .unwrap_or_default();
    for node in graph.nodes() {
        let Some(reduction) = reduction(node).filter(|_| node.input.len() >= 2) else {
            continue;
        };
        let Some(act_dq) = graph
            .producer(&node.input[0])
            .filter(|p| is_op(p, "DequantizeLinear"))
        else {
            continue;
        };
        let Some(w_dq) = graph
            .producer(&node.input[1])
            .filter(|p| is_op(p, "DequantizeLinear"))
        else {
            continue;
        };
        let act = dq_params(graph, act_dq)?;
        let Some((dims, codes, w)) = weight_codes(graph, w_dq)? else {
            continue;
        };
        let bits_note = (act.bits != 8 || w.bits != 8).then(|| "16-bit quantizers".to_string());
        layers.push(layer(
            node,
            reduction,
            Observed {
                dequantized: node.input[0].clone(),
                stored: Some(act_dq.input[0].clone())
                    .filter(|codes| quantized.contains_key(codes.as_str())),
            },
            activation_codes(&act),
            &dims,
            codes,
            bits_note,
        )?);
    }
    Ok(layers)
}

fn is_op(node: &NodeProto, op: &str) -> bool {
    node.op_type.as_deref() == Some(op)
}

/// The parameters of a Q/DQ node (inputs: x, scale, zero point), from its constant inputs.
fn dq_params(graph: &Graph, node: &NodeProto) -> Result<Quantizer> {
    let name = node.name.clone().unwrap_or_default();
    let bad = |why: &str| Error::InvalidModel(format!("node '{name}' (DequantizeLinear): {why}"));
    let scale = node
        .input
        .get(1)
        .and_then(|s| graph.initializer(s))
        .ok_or_else(|| bad("the scale is not an initializer"))?;
    let scale = tensor::to_f32(scale)?;
    let (zero_point, ty) = match node.input.get(2).filter(|z| !z.is_empty()) {
        None => (vec![0; scale.len()], DataType::Uint8),
        Some(z) => {
            let z = graph
                .initializer(z)
                .ok_or_else(|| bad("the zero point is not an initializer"))?;
            let ty = tensor::data_type(z)?;
            (
                tensor::to_i64(z)?.into_iter().map(|v| v as i32).collect(),
                ty,
            )
        }
    };
    let (bits, signed) = match ty {
        DataType::Int8 => (8, true),
        DataType::Uint8 => (8, false),
        DataType::Int16 => (16, true),
        DataType::Uint16 => (16, false),
        other => {
            return Err(bad(&format!(
                "unsupported zero point type {}",
                other.as_str_name()
            )))
        }
    };
    let (qmin, qmax) = match (bits, signed) {
        (8, true) => (-128, 127),
        (8, false) => (0, 255),
        (_, true) => (i16::MIN as i32, i16::MAX as i32),
        (_, false) => (0, u16::MAX as i32),
    };
    let axis = (scale.len() > 1).then(|| attr::int(node, "axis").unwrap_or(1).max(0) as usize);
    if zero_point.len() != scale.len() {
        return Err(bad("scale and zero point lengths differ"));
    }
    Ok(Quantizer {
        scale,
        zero_point,
        axis,
        qmin,
        qmax,
        bits,
        signed,
    })
}

/// A weight's dimensions, integer codes and quantizer.
type WeightCodes = (Vec<usize>, Vec<i32>, Quantizer);

/// The integer weights behind a weight `DequantizeLinear`: stored integers, or a constant float weight
/// quantized by a `QuantizeLinear` (uncompressed QDQ). `None` when the weight is not constant.
fn weight_codes(graph: &Graph, dq: &NodeProto) -> Result<Option<WeightCodes>> {
    let params = dq_params(graph, dq)?;
    let source = &dq.input[0];
    if let Some(init) = graph.initializer(source) {
        let dims = tensor::dims(init)?;
        let codes = tensor::to_i64(init)?
            .into_iter()
            .map(|v| v as i32)
            .collect();
        return Ok(Some((dims, codes, params)));
    }
    let Some(q) = graph
        .producer(source)
        .filter(|p| is_op(p, "QuantizeLinear"))
    else {
        return Ok(None);
    };
    let Some(init) = graph.initializer(&q.input[0]) else {
        return Ok(None);
    };
    let dims = tensor::dims(init)?;
    let codes = params.quantize_tensor(&tensor::to_f32(init)?, &dims)?;
    Ok(Some((dims, codes, params)))
}
