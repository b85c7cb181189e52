//! The op registry: how each ONNX op type takes part in quantization.
//!
//! Three roles, as runtimes see them. *Quantizable* ops (Conv, Gemm, MatMul…) compute in INT8 when their
//! activation inputs and weights are quantized. *Quantize-agnostic* ops (Relu, MaxPool, Reshape, Concat…)
//! move or select values without arithmetic that needs a new scale: quantizers propagate through them, and
//! they join the quantizer groups of the ops around them. Everything else stays in FP32 and ends a group.

use aquant_onnx::{attr, NodeProto};

use crate::graph::Graph;

/// How a quantizable op is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizableOp {
    /// Inputs that carry activations and get an activation quantizer.
    pub activation_inputs: &'static [usize],
    /// Input holding the weight (when it is an initializer).
    pub weight_input: Option<usize>,
    /// Input holding the bias, corrected by fast bias correction and restored on revert.
    pub bias_input: Option<usize>,
}

/// The role of an op type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpRole {
    /// Computes in INT8 when quantized.
    Quantizable(QuantizableOp),
    /// Passes quantized values through unchanged in scale.
    Agnostic,
    /// Stays in floating point.
    Float,
}

const CONV: QuantizableOp = QuantizableOp {
    activation_inputs: &[0],
    weight_input: Some(1),
    bias_input: Some(2),
};
const MATMUL: QuantizableOp = QuantizableOp {
    activation_inputs: &[0],
    weight_input: Some(1),
    bias_input: None,
};

/// Ops that quantizers propagate through unchanged.
const AGNOSTIC: &[&str] = &[
    "Relu",
    "Clip",
    "MaxPool",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Identity",
    "Split",
    "Slice",
    "Gather",
    "Pad",
    "Resize",
    "DepthToSpace",
    "SpaceToDepth",
];

/// The role of `op_type` in the default (CNN) pattern set.
pub fn role(op_type: &str) -> OpRole {
    match op_type {
        "Conv" | "ConvTranspose" => OpRole::Quantizable(CONV),
        "Gemm" => OpRole::Quantizable(QuantizableOp {
            bias_input: Some(2),
            ..MATMUL
        }),
        "MatMul" => OpRole::Quantizable(MATMUL),
        op if AGNOSTIC.contains(&op) => OpRole::Agnostic,
        _ => OpRole::Float,
    }
}

/// The weight's output-channel axis for per-channel quantization, from the op and its attributes.
pub fn weight_channel_axis(node: &NodeProto, weight_rank: usize) -> usize {
    match node.op_type.as_deref() {
        Some("ConvTranspose") => 1,
        Some("Gemm") if attr::int(node, "transB").unwrap_or(0) == 0 => 1,
        Some("MatMul") => weight_rank.saturating_sub(1),
        _ => 0,
    }
}

/// True when `node` would be quantized in the default pattern set: a quantizable op whose weight is an
/// initializer (MatMul between two activations only counts in transformer mode).
pub fn is_quantizable(graph: &Graph, node: &NodeProto) -> bool {
    match role(node.op_type.as_deref().unwrap_or("")) {
        OpRole::Quantizable(q) => q
            .weight_input
            .and_then(|w| node.input.get(w))
            .is_some_and(|w| graph.initializer(w).is_some()),
        _ => false,
    }
}
