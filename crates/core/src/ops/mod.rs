//! The op registry: how each ONNX op type takes part in quantization, one file per op family.
//!
//! Everything aquant knows about an op type lives behind [`QuantizedOp`], registered by `op_type` in
//! [`REGISTRY`]: whether and how it is placed (which inputs are activations, which is the weight and its
//! channel axis, which is the bias, what the target device and model type allow), whether the overflow fix's
//! `first_layer` rule stops at it, which ONNX Runtime integer kernel runs it, and how that kernel reduces it
//! (the saturation analysis). The numerics that use this knowledge stay where they are (`quantize`,
//! `saturation`); they ask the registry instead of naming op types. Adding an op is one file here, its entry
//! in [`REGISTRY`] and its test.
//!
//! Ops without an entry run in floating point. Quantize-agnostic ops (ReLU, max pooling, reshapes, concat)
//! need none: quantizers sit on the edges into quantized ops (see `quantize::place`), after them.

mod conv;
mod eltwise;
mod matmul;
mod pooling;
mod quantized;

use aquant_onnx::NodeProto;

use crate::graph::Graph;
use crate::quantize::QuantizationParams;

pub use quantized::is_already_quantized;

/// How one ONNX op type is quantized. Only [`QuantizedOp::place`] is required: an op that computes in INT8
/// without an integer kernel of its own (Add, average pooling) needs nothing else.
pub trait QuantizedOp: Sync {
    /// The roles of `node`'s inputs when it computes in INT8 under `params`, or `None` to leave it in FP32
    /// (its inputs are not of the kind the op needs, or the target device or model type does not quantize it).
    fn place(&self, node: &OpNode<'_>, params: &QuantizationParams) -> Option<Inputs>;

    /// Whether `overflow_fix: first_layer` stops at this op and halves it (NNCF: convolutions only; `enable`
    /// and `auto` consider every op with a weight).
    fn first_layer(&self) -> bool {
        false
    }

    /// The integer kernel ONNX Runtime fuses `node` into when its inputs and weight are 8-bit.
    fn integer_kernel(&self, _node: &NodeProto) -> Option<IntegerKernel> {
        None
    }

    /// Whether ONNX Runtime runs this op, with a constant 8-bit weight, as an integer kernel that quantizes
    /// its input at run time (`DynamicQuantizeMatMul`): the precision ladder's `dynamic` step.
    fn quantizes_input_at_run_time(&self) -> bool {
        false
    }

    /// How an x86 int8 kernel reduces `node` (the saturation analysis); `None` when it is not modelled.
    fn reduction(&self, _node: &NodeProto) -> Option<Reduction> {
        None
    }
}

/// The registry: every op type that can compute in INT8, and its family.
pub static REGISTRY: &[(&str, &dyn QuantizedOp)] = &[
    ("Conv", &conv::Conv),
    ("ConvTranspose", &conv::ConvTranspose),
    ("Gemm", &matmul::Gemm),
    ("MatMul", &matmul::MatMul),
    ("Add", &eltwise::Add),
    ("AveragePool", &pooling::AveragePool),
    ("GlobalAveragePool", &pooling::AveragePool),
];

/// How `op_type` is quantized, if it can be.
pub fn lookup(op_type: &str) -> Option<&'static dyn QuantizedOp> {
    REGISTRY
        .iter()
        .find(|(name, _)| *name == op_type)
        .map(|(_, op)| *op)
}

/// The roles of a quantized node's inputs, by input position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// Inputs that carry activations and get an activation quantizer.
    pub activations: Vec<usize>,
    /// The weight (an initializer), quantized per channel along its axis or per tensor.
    pub weight: Option<Weight>,
    /// The bias input, corrected by fast bias correction and quantized to int32, when it is an initializer.
    pub bias: Option<usize>,
}

/// A weight input and its output-channel axis (for per-channel quantization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weight {
    /// Input position.
    pub input: usize,
    /// Output-channel axis of the weight.
    pub channel_axis: usize,
}

impl Inputs {
    /// Only activations, no weight: an op whose every input in `activations` is quantized.
    pub fn activations(activations: Vec<usize>) -> Self {
        Inputs {
            activations,
            weight: None,
            bias: None,
        }
    }
}

/// A node seen from its graph, with the questions placement asks about its inputs.
pub struct OpNode<'a> {
    graph: &'a Graph,
    node: &'a NodeProto,
}

impl<'a> OpNode<'a> {
    /// `node`, a node of `graph`.
    pub fn new(graph: &'a Graph, node: &'a NodeProto) -> Self {
        OpNode { graph, node }
    }

    /// The node itself (attributes, input names).
    pub fn proto(&self) -> &'a NodeProto {
        self.node
    }

    /// The tensor at input `input`, when it is present.
    pub fn input(&self, input: usize) -> Option<&'a str> {
        self.node
            .input
            .get(input)
            .map(String::as_str)
            .filter(|name| !name.is_empty())
    }

    /// Whether input `input` carries an activation: a value that depends on the values fed to the graph
    /// ([`Graph::carries_input_values`]; not a constant, nor computed from constants and input shapes alone,
    /// which has no batch axis to calibrate along).
    pub fn is_activation(&self, input: usize) -> bool {
        self.input(input)
            .is_some_and(|name| self.graph.carries_input_values(name))
    }

    /// The rank of input `input` when it is an initializer (a weight or bias can only be one).
    pub fn initializer_rank(&self, input: usize) -> Option<usize> {
        self.input(input)
            .and_then(|name| self.graph.initializer(name))
            .map(|t| t.dims.len())
    }
}

/// The common shape of a weighted op (Conv, Gemm, MatMul): activation on input 0, an initializer weight on
/// `weight` with its channel axis from `channel_axis(rank)`, and the bias on `bias` when it is an initializer.
fn weighted(
    node: &OpNode<'_>,
    weight: usize,
    bias: Option<usize>,
    channel_axis: impl Fn(usize) -> usize,
) -> Option<Inputs> {
    if !node.is_activation(0) {
        return None;
    }
    let rank = node.initializer_rank(weight)?;
    Some(Inputs {
        activations: vec![0],
        weight: Some(Weight {
            input: weight,
            channel_axis: channel_axis(rank),
        }),
        bias: bias.filter(|&b| node.initializer_rank(b).is_some()),
    })
}

/// An ONNX Runtime integer kernel (CPU, default graph optimizations), as the evaluation form spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegerKernel {
    /// `QLinearConv`: its output is always requantized; per-channel scales broadcast over the spatial axes.
    QLinearConv,
    /// `QGemm`: requantized, or scaled to float when its output is not quantized.
    QGemm,
}

impl IntegerKernel {
    /// Whether the kernel can leave its accumulator in float (no quantizer on the output).
    pub fn float_output(self) -> bool {
        self == IntegerKernel::QGemm
    }

    /// The shape of a per-channel factor on the kernel's output (channels on axis 1): `[]` for one channel,
    /// `[c, 1, …]` over a convolution's spatial axes (`weight_rank − 2` of them), `[c]` for a matrix product.
    pub fn channel_shape(self, channels: usize, weight_rank: usize) -> Vec<usize> {
        match (channels, self) {
            (1, _) => vec![],
            (c, IntegerKernel::QLinearConv) => std::iter::once(c)
                .chain(std::iter::repeat_n(1, weight_rank.saturating_sub(2)))
                .collect(),
            (c, IntegerKernel::QGemm) => vec![c],
        }
    }
}

/// How an int8 GEMM-based kernel lays out an op's reduction (which weights multiply which activations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// A convolution: im2col over the kernel window and input channels (weights OIHW or OIW).
    Convolution,
    /// A matrix product reducing the activation's last axis against a 2-D weight.
    Dense {
        /// The activation is transposed (Gemm `transA`).
        transposed_activation: bool,
        /// The weight is stored `[N, K]` (Gemm `transB`) instead of `[K, N]`.
        transposed_weight: bool,
    },
}

#[cfg(test)]
mod tests;
