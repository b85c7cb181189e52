//! The op registry: how each ONNX op type takes part in quantization.
//!
//! *Quantizable* ops (Conv, ConvTranspose, Gemm, MatMul) compute in INT8 when their activation inputs and
//! weights are quantized; the registry says which input is which and where the weight's channel axis is.
//! Everything else runs in floating point. Quantize-agnostic ops (ReLU, pooling, reshapes, concat) need no
//! entry: quantizers sit on the edges into quantized ops (see `quantize::place`), after them.

use aquant_onnx::{attr, NodeProto};

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

/// How `op_type` is quantized, if it is a quantizable op.
pub fn quantizable(op_type: &str) -> Option<QuantizableOp> {
    match op_type {
        "Conv" | "ConvTranspose" => Some(CONV),
        "Gemm" => Some(QuantizableOp {
            bias_input: Some(2),
            ..MATMUL
        }),
        "MatMul" => Some(MATMUL),
        _ => None,
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
