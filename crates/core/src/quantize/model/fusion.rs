//! Which quantized ops ONNX Runtime fuses into integer kernels, and how their output leaves the kernel.
//!
//! Which ops are fused is modelled on ONNX Runtime 1.32's QDQ transformers (`qdq_selectors.cc`,
//! `relu_quantizelinear.cc`, `clip_quantizelinear.cc`, `qdq_propagation.cc`): a quantized Conv or Gemm with
//! 8-bit per-tensor input, 8-bit symmetric weights and an int32 (or no) bias, whose output reaches exactly
//! one `QuantizeLinear` through a chain of single-reader nodes that ONNX Runtime removes (`Relu` when the
//! zero point is the type's minimum, `Clip` when the quantized range lies inside the clip range or the clip
//! bounds, quantized, cover the type's range) or moves the
//! quantizer across (`MaxPool`, `Reshape`, `Transpose`, `Squeeze`, `Unsqueeze`, `Slice` at the op versions
//! the propagation accepts). A Gemm whose output is not quantized becomes a `QGemm` with a float output. A
//! Conv whose output also feeds a float op (a residual `Add`) stays a float Conv in ONNX Runtime too.
//!
//! The op's family names its kernel ([`crate::ops::QuantizedOp::integer_kernel`]); whether the kernel applies
//! depends on the quantizers and on the graph around the op, which this module reads.

use std::collections::BTreeSet;

use aquant_onnx::{attr, tensor, NodeProto, TensorProto};

use super::QuantizedModel;
use crate::graph::Graph;
use crate::numerics::Quantizer;
use crate::ops::{self, IntegerKernel};
use crate::quantize::placement::{ActivationQuantizer, QuantizedNode};
use crate::quantize::Deploy;

/// How a fused op's accumulator leaves the kernel.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum KernelOutput {
    /// Requantized into the 8-bit quantizer of `tensor` (`QLinearConv`, `QGemm` with an 8-bit output).
    Requantized {
        /// The quantized tensor.
        tensor: String,
        /// Whether only elementwise no-ops (removed Relu/Clip) lie between the op and `tensor`: then the
        /// kernel's integers are that quantizer's integers, and its own rounding is not spelled again.
        direct: bool,
    },
    /// Scaled to float (`QGemm` with a float output).
    Float,
}

/// An op that ONNX Runtime fuses into an integer kernel.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Fused {
    /// The kernel, as the op's family names it.
    pub(super) kernel: IntegerKernel,
    /// How the accumulator leaves it.
    pub(super) output: KernelOutput,
}

/// Whether ONNX Runtime fuses `node` into an integer kernel, which one, and how its output leaves it.
pub(super) fn integer_kernel(
    model: &QuantizedModel,
    node: &QuantizedNode,
    reverted: &BTreeSet<String>,
    opset: i64,
) -> Option<Fused> {
    let op = model.fp32.node(&node.name)?;
    if reverted.contains(&node.name) {
        return None;
    }
    let kernel = ops::lookup(&node.op_type)?.integer_kernel(op)?;
    if !(has_integer_operands(model, node) && has_integer_bias(model, node)) {
        return None;
    }
    let output = op.output.first()?;
    let output = match quantized_output(model, output, reverted, opset) {
        Some((tensor, direct)) => KernelOutput::Requantized { tensor, direct },
        None if kernel.float_output() && !has_quantizer(model, output, reverted) => {
            KernelOutput::Float
        }
        None => return None,
    };
    Some(Fused { kernel, output })
}

/// Whether `node` reads one 8-bit per-tensor activation (input 0) with 8-bit symmetric weights, the operands
/// ONNX Runtime's QDQ selectors accept.
fn has_integer_operands(model: &QuantizedModel, node: &QuantizedNode) -> bool {
    let Some(weight) = model.weights.get(&node.name) else {
        return false;
    };
    if weight.bits != 8 || !weight.signed || weight.zero_point.iter().any(|&z| z != 0) {
        return false;
    }
    let [(0, input)] = node.activations.as_slice() else {
        return false;
    };
    !model.dynamic.contains(&node.name)
        && model
            .activations
            .get(input)
            .is_some_and(|input| input.bits == 8 && input.scale.len() == 1)
}

/// Whether `node` has no bias or one that quantizes to int32 per output channel.
fn has_integer_bias(model: &QuantizedModel, node: &QuantizedNode) -> bool {
    node.bias.is_none() || model.bias_integers(node).is_ok_and(|b| b.is_some())
}

/// True when `tensor` has a calibrated quantizer in the built model (a quantized reader that is neither
/// reverted nor quantizing its input at run time).
fn has_quantizer(model: &QuantizedModel, tensor: &str, reverted: &BTreeSet<String>) -> bool {
    model.placement.activations.iter().any(|q| {
        q.tensor == tensor
            && q.consumers
                .iter()
                .any(|c| calibrated_reader(model, c, reverted))
    })
}

/// Whether `op` reads its input through the calibrated quantizer in the built model.
fn calibrated_reader(model: &QuantizedModel, op: &str, reverted: &BTreeSet<String>) -> bool {
    !reverted.contains(op) && !model.dynamic.contains(op)
}

/// The 8-bit quantized tensor that `output` reaches through nodes ONNX Runtime removes or moves its
/// quantizer across, when that quantizer is the only reader at the end of the chain.
fn quantized_output(
    model: &QuantizedModel,
    output: &str,
    reverted: &BTreeSet<String>,
    opset: i64,
) -> Option<(String, bool)> {
    let graph = &model.fp32;
    let mut direct = true;
    let mut tensor = output.to_string();
    let mut removed: Vec<&NodeProto> = Vec::new();
    // Each step moves one node down a chain of the acyclic graph: at most one step per node.
    for _ in 0..=graph.nodes().len() {
        if graph.is_output(&tensor) {
            return None;
        }
        let readers = graph.consumers(&tensor);
        if let Some(quantizer) = model
            .placement
            .activations
            .iter()
            .find(|q| q.tensor == tensor)
        {
            let params = model.activations.get(&tensor)?;
            let fusable = params.bits == 8
                && params.scale.len() == 1
                && read_only_by_its_consumers(model, quantizer, reverted)
                && removed.iter().all(|n| removable(graph, n, params, opset));
            return fusable.then_some((tensor, direct));
        }
        let [reader] = readers.as_slice() else {
            return None;
        };
        let op = reader.op_type.as_deref().unwrap_or_default();
        if reader.input.first() != Some(&tensor) || reader.output.len() != 1 {
            return None;
        }
        match op {
            "Relu" | "Clip" => removed.push(reader),
            _ if moves_quantizer(op, opset) => direct = false,
            _ if lift_across(model, reader).is_some() => direct = false,
            _ => return None,
        }
        tensor = reader.output[0].clone();
    }
    None
}

/// How the export for ONNX Runtime moves an activation quantizer across the value-preserving op producing its
/// tensor, where ONNX Runtime's QDQ rules would leave the kernel before that op in float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lift {
    /// Onto the op's input instead: a zero `Pad`, which ONNX Runtime folds into the Conv after it
    /// (`PadFusion`) only when no quantizer sits between them. Padding quantized values with the zero point
    /// is padding with 0, so the values do not change.
    Before,
    /// Onto the op's input as well, with the same parameters: `Flatten`, which ONNX Runtime's QDQ propagation
    /// does not cross. The kernel before it then requantizes, and the `DequantizeLinear → Flatten →
    /// QuantizeLinear` left is dropped (equal parameters).
    BothSides,
}

/// Where the export for ONNX Runtime puts a quantizer besides its tensor ([`Lift`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Lifted {
    /// The op producing the quantized tensor.
    pub(super) producer: String,
    /// Its data input, which gets the quantizer.
    pub(super) input: String,
    /// How.
    pub(super) lift: Lift,
}

/// True when every reader of `quantizer`'s tensor is one of its quantized consumers reading it through the
/// calibrated quantizer (and the tensor is no graph output): nothing reads the tensor in float, nor quantizes
/// it at run time.
fn read_only_by_its_consumers(
    model: &QuantizedModel,
    quantizer: &ActivationQuantizer,
    reverted: &BTreeSet<String>,
) -> bool {
    let graph = &model.fp32;
    let readers = graph.consumers(&quantizer.tensor);
    !graph.is_output(&quantizer.tensor)
        && !readers.is_empty()
        && readers.iter().all(|r| {
            let name = r.name.as_deref().unwrap_or_default();
            quantizer.consumers.iter().any(|c| c == name)
                && calibrated_reader(model, name, reverted)
        })
}

/// How the export moves a quantizer across `node`, if it does (for ONNX Runtime only).
fn lift_across(model: &QuantizedModel, node: &NodeProto) -> Option<Lift> {
    if model.deploy != Deploy::Ort {
        return None;
    }
    match node.op_type.as_deref() {
        Some("Pad") if pads_with_zero(&model.fp32, node) => Some(Lift::Before),
        Some("Flatten") => Some(Lift::BothSides),
        _ => None,
    }
}

/// Whether a `Pad` pads with the constant 0 (attribute `value` before opset 11, input 2 since).
fn pads_with_zero(graph: &Graph, node: &NodeProto) -> bool {
    let constant_mode = attr::string(node, "mode").is_none_or(|m| m == "constant");
    let value = match node.input.get(2).filter(|n| !n.is_empty()) {
        Some(name) => scalar(graph, name),
        None => Some(attr::float(node, "value").unwrap_or(0.0)),
    };
    constant_mode && value == Some(0.0)
}

/// Where the export for ONNX Runtime lifts `quantizer` across its tensor's producer ([`Lift`]): when that
/// producer's input is read by it alone and has no quantizer of its own, and (moving the quantizer away
/// from the tensor) every reader of the tensor is a quantized one.
pub(super) fn export_lift(
    model: &QuantizedModel,
    quantizer: &ActivationQuantizer,
    reverted: &BTreeSet<String>,
) -> Option<Lifted> {
    let graph = &model.fp32;
    let producer = graph.producer(&quantizer.tensor)?;
    let lift = lift_across(model, producer)?;
    let input = producer.input.first()?;
    let alone = graph.consumers(input).len() == 1
        && !graph.is_output(input)
        && !has_quantizer(model, input, reverted);
    // Moved away from the tensor, the quantizer must leave no float reader of it behind.
    let readers_allow =
        lift == Lift::BothSides || read_only_by_its_consumers(model, quantizer, reverted);
    // A reader quantizing at run time reads the tensor itself, which a lift would change.
    let no_run_time = quantizer
        .consumers
        .iter()
        .all(|c| !model.dynamic.contains(c));
    (alone && readers_allow && no_run_time).then(|| Lifted {
        producer: producer.name.clone().unwrap_or_default(),
        input: input.clone(),
        lift,
    })
}

/// Whether ONNX Runtime's QDQ propagation moves a quantizer up across `op` (at the version `opset` gives it).
fn moves_quantizer(op: &str, opset: i64) -> bool {
    match op {
        "MaxPool" => (12..22).contains(&opset),
        "Reshape" => (5..21).contains(&opset),
        "Transpose" | "Squeeze" | "Unsqueeze" => opset < 21,
        "Slice" => true,
        _ => false,
    }
}

/// Whether ONNX Runtime removes `node` (a Relu or Clip read only by a quantizer with `params`).
fn removable(graph: &Graph, node: &NodeProto, params: &Quantizer, opset: i64) -> bool {
    let (type_min, type_max) = type_range(params);
    let zero_point = params.zero_point[0];
    match node.op_type.as_deref() {
        // ReluQuantFusion: the quantizer clamps at zero already.
        Some("Relu") => zero_point == type_min,
        // ClipQuantFusion (QuantizeLinear 10/13 only): the quantized range lies within the clip range; or the
        // QDQ selector's test (`IsClipMadeRedundantByQ`): the clip bounds, quantized, cover the type's range.
        Some("Clip") => {
            let Some((min, max)) = clip_bounds(graph, node, opset) else {
                return false;
            };
            let scale = params.scale[0];
            let lower = scale * (type_min - zero_point) as f32;
            let upper = scale * (type_max - zero_point) as f32;
            let fusion = opset < 19 && !(f32::EPSILON < min - lower || f32::EPSILON < upper - max);
            let quantized =
                |bound: f32| (bound / scale).round_ties_even() as i64 + zero_point as i64;
            let selector = quantized(min) <= type_min as i64 && quantized(max) >= type_max as i64;
            fusion || selector
        }
        _ => false,
    }
}

/// The clip bounds of a Clip node, when constant (attributes before opset 11, inputs since).
fn clip_bounds(graph: &Graph, node: &NodeProto, opset: i64) -> Option<(f32, f32)> {
    if opset < 11 {
        return Some((
            attr::float(node, "min").unwrap_or(f32::MIN),
            attr::float(node, "max").unwrap_or(f32::MAX),
        ));
    }
    let bound = |index: usize, default: f32| -> Option<f32> {
        match node.input.get(index).filter(|n| !n.is_empty()) {
            None => Some(default),
            Some(name) => scalar(graph, name),
        }
    };
    Some((bound(1, f32::MIN)?, bound(2, f32::MAX)?))
}

/// The value of a constant scalar: an initializer or a `Constant` node's `value`.
fn scalar(graph: &Graph, name: &str) -> Option<f32> {
    let tensor: &TensorProto = match graph.initializer(name) {
        Some(t) => t,
        None => {
            let producer = graph.producer(name)?;
            if producer.op_type.as_deref() != Some("Constant") {
                return None;
            }
            producer
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("value"))?
                .t
                .as_ref()?
        }
    };
    match tensor::to_f32(tensor).ok()?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// The range of the 8-bit storage type (what the kernels saturate to).
pub(super) fn type_range(params: &Quantizer) -> (i32, i32) {
    if params.signed {
        (-128, 127)
    } else {
        (0, 255)
    }
}
