//! What ONNX Runtime runs of a model: its optimized graph, read for the nodes still computing in float.
//!
//! ONNX Runtime fuses a QDQ model into integer kernels (QLinearConv, QLinearAdd, QGemm, …) only where the
//! quantizers sit as its QDQ selectors expect; elsewhere the float op stays, between DequantizeLinear nodes,
//! and runs at FP32 speed. The graph is dumped at `ORT_ENABLE_EXTENDED`: the QDQ fusions without the layout
//! transforms of `ORT_ENABLE_ALL`, which depend on the CPU (the same count on every machine).
//! `scripts/ort_fusion.py` applies the same rules from Python.

use std::collections::{BTreeSet, HashMap};

use aquant::FloatOps;
use aquant_onnx::{GraphProto, NodeProto};

/// Ops whose second input is a weight when it is constant.
const WEIGHTED: &[&str] = &[
    "Conv",
    "FusedConv",
    "ConvTranspose",
    "Gemm",
    "FusedGemm",
    "MatMul",
    "FusedMatMul",
];

/// Ops that compute nothing in float: quantizers, data movement and shape computation.
const NOT_FLOAT_COMPUTE: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "Reshape",
    "Flatten",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Shape",
    "Gather",
    "Slice",
    "Concat",
    "Identity",
    "Constant",
    "MaxPool",
    "Cast",
    "Expand",
    "Pad",
];

/// Whether `op_type` is one of ONNX Runtime's integer kernels (QLinear*, QGemm, *Integer*, …).
fn integer_kernel(op_type: &str) -> bool {
    op_type.starts_with("QLinear")
        || op_type.starts_with("DynamicQuantize")
        || op_type.contains("Integer")
        || matches!(op_type, "QGemm" | "QAttention" | "QEmbedLayerNormalization")
}

fn computes_in_float(node: &NodeProto) -> bool {
    !NOT_FLOAT_COMPUTE.contains(&node.op_type()) && !integer_kernel(node.op_type())
}

/// The float nodes of an optimized graph, and among them the weighted ones (a Conv/Gemm/MatMul whose weight
/// is an initializer, a Constant, or a DequantizeLinear of one: a weight no integer kernel took).
pub fn float_ops(graph: &GraphProto) -> FloatOps {
    let initializers: BTreeSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    let producer: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    // Follows DequantizeLinear inputs back to a constant; a path is at most as long as the graph.
    let constant = |name: &str| {
        let mut name = name;
        for _ in 0..=graph.node.len() {
            if initializers.contains(name) {
                return true;
            }
            match producer.get(name) {
                Some(n) if n.op_type() == "Constant" => return true,
                Some(n) if n.op_type() == "DequantizeLinear" && !n.input.is_empty() => {
                    name = n.input[0].as_str()
                }
                _ => return false,
            }
        }
        false
    };
    let float: Vec<&NodeProto> = graph.node.iter().filter(|n| computes_in_float(n)).collect();
    let weighted = float
        .iter()
        .filter(|n| WEIGHTED.contains(&n.op_type()))
        .filter(|n| n.input.get(1).is_some_and(|w| constant(w)))
        .map(|n| n.name().to_owned())
        .collect();
    FloatOps {
        count: float.len(),
        weighted,
    }
}
