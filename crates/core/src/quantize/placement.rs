//! Where quantizers go.
//!
//! A quantized node computes in INT8: its activation inputs get an activation quantizer, its weight a
//! per-channel weight quantizer, its bias is re-expressed in the accumulator's scale. Quantizers sit directly
//! on the edges into quantized nodes, which is the layout runtimes fuse (ONNX Runtime's QDQ selectors and
//! OpenVINO's low-precision transformations look for `DequantizeLinear` right before the op). Through the
//! quantize-agnostic ops between two quantized nodes (ReLU, Clip, MaxPool, Reshape…) nothing needs a quantizer
//! of its own: ReLU/Clip is fused into the producer, and pooling or reshaping commutes with quantization.
//! So a Conv→ReLU→Conv chain gets its activation quantizer *after* the ReLU, as runtimes do.
//!
//! Which nodes compute in INT8, and what their inputs are, is op knowledge: each op family in [`crate::ops`]
//! says it for its op types; placement turns that into quantized nodes, shares the quantizers and applies
//! the ignored scope. One activation quantizer exists per quantized tensor, shared by every quantized node
//! reading it.

use std::collections::{BTreeMap, HashSet};

use aquant_onnx::NodeProto;
use regex::Regex;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::numerics::Granularity;
use crate::ops::{self, OpNode};
use crate::quantize::params::{IgnoredScope, QuantizationParams};

/// An input slot of a quantized node holding an initializer (weight or bias).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantSlot {
    /// Input position on the node.
    pub input: usize,
    /// Initializer name.
    pub initializer: String,
}

/// A node that computes in INT8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizedNode {
    /// Node name.
    pub name: String,
    /// ONNX op type.
    pub op_type: String,
    /// Activation inputs: (input position, tensor name).
    pub activations: Vec<(usize, String)>,
    /// The weight, quantized per channel along `weight_axis` (or per tensor).
    pub weight: Option<ConstantSlot>,
    /// Output-channel axis of the weight for per-channel quantization; `None` = per tensor.
    pub weight_axis: Option<usize>,
    /// The bias, corrected by fast bias correction and quantized to int32 on export.
    pub bias: Option<ConstantSlot>,
}

/// An activation quantizer: one tensor, quantized once for all its quantized readers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationQuantizer {
    /// The quantized tensor.
    pub tensor: String,
    /// Quantized nodes reading it, in topological order.
    pub consumers: Vec<String>,
}

/// The result of placement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Quantized nodes, in topological order.
    pub nodes: Vec<QuantizedNode>,
    /// Activation quantizers, in the order their tensors are first read.
    pub activations: Vec<ActivationQuantizer>,
}

impl Placement {
    /// The quantized node called `name`.
    pub fn node(&self, name: &str) -> Option<&QuantizedNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

impl QuantizedNode {
    /// Whether the node can quantize its input at run time: one activation input, a constant weight, and an
    /// op ONNX Runtime runs so ([`ops::QuantizedOp::quantizes_input_at_run_time`]).
    pub fn can_quantize_input_at_run_time(&self) -> bool {
        self.weight.is_some()
            && self.activations.len() == 1
            && ops::lookup(&self.op_type).is_some_and(|op| op.quantizes_input_at_run_time())
    }
}

/// Decides which nodes are quantized and where their quantizers go.
pub fn place(graph: &Graph, params: &QuantizationParams) -> Result<Placement> {
    check_model(graph, params)?;
    let ignored = IgnoredMatcher::new(&params.ignored_scope)?;
    let mut placement = Placement::default();
    let mut quantizers: BTreeMap<String, usize> = BTreeMap::new();
    for node in graph.nodes() {
        if ignored.matches(node) {
            continue;
        }
        let Some(q) = quantized_node(graph, node, params) else {
            continue;
        };
        for (_, tensor) in &q.activations {
            let index = *quantizers.entry(tensor.clone()).or_insert_with(|| {
                placement.activations.push(ActivationQuantizer {
                    tensor: tensor.clone(),
                    consumers: Vec::new(),
                });
                placement.activations.len() - 1
            });
            let consumers = &mut placement.activations[index].consumers;
            if !consumers.contains(&q.name) {
                consumers.push(q.name.clone());
            }
        }
        placement.nodes.push(q);
    }
    Ok(placement)
}

fn check_model(graph: &Graph, params: &QuantizationParams) -> Result<()> {
    if let Some(node) = graph
        .nodes()
        .iter()
        .find(|n| ops::is_already_quantized(n.op_type.as_deref().unwrap_or("")))
    {
        return Err(Error::UnsupportedOp {
            node: node.name.clone().unwrap_or_default(),
            op_type: node.op_type.clone().unwrap_or_default(),
            reason: "the model is already quantized; give aquant the FP32 model".into(),
        });
    }
    // Like NNCF's strict ignored-scope validation: a name matching no node is almost always a typo.
    if let Some(name) = params
        .ignored_scope
        .names
        .iter()
        .find(|n| graph.node(n).is_none())
    {
        return Err(Error::Config(format!(
            "ignored_scope names node '{name}', which the model does not have"
        )));
    }
    let opset = aquant_onnx::default_opset(graph.model());
    let needed = if params.weights.bits == 16 || params.activations.bits == 16 {
        (
            aquant_onnx::opset::SIXTEEN_BIT_OPSET,
            "16-bit QuantizeLinear",
        )
    } else if params.weights.granularity == Granularity::PerChannel {
        (13, "per-channel DequantizeLinear")
    } else {
        (10, "QuantizeLinear")
    };
    if opset < needed.0 {
        return Err(Error::InvalidModel(format!(
            "the model imports opset {opset}, but {} needs opset {} or later (convert the model, or use per-tensor 8-bit weights)",
            needed.1, needed.0
        )));
    }
    Ok(())
}

/// How `node` is quantized, as its op family places it; `None` leaves it in FP32.
fn quantized_node(
    graph: &Graph,
    node: &NodeProto,
    params: &QuantizationParams,
) -> Option<QuantizedNode> {
    let op_type = node.op_type.clone().unwrap_or_default();
    let op = OpNode::new(graph, node);
    let inputs = ops::lookup(&op_type)?.place(&op, params)?;
    let slot = |input: usize| ConstantSlot {
        input,
        initializer: node.input[input].clone(),
    };
    let weight_axis = inputs.weight.and_then(|w| {
        let rank = op.initializer_rank(w.input)?;
        (params.weights.granularity == Granularity::PerChannel && rank >= 2)
            .then_some(w.channel_axis)
    });
    Some(QuantizedNode {
        name: node.name.clone().unwrap_or_default(),
        op_type,
        activations: inputs
            .activations
            .iter()
            .map(|&i| (i, node.input[i].clone()))
            .collect(),
        weight: inputs.weight.map(|w| slot(w.input)),
        weight_axis,
        bias: inputs.bias.map(slot),
    })
}

/// Matches nodes against an [`IgnoredScope`].
struct IgnoredMatcher<'a> {
    scope: &'a IgnoredScope,
    patterns: Vec<Regex>,
    names: HashSet<&'a str>,
}

impl<'a> IgnoredMatcher<'a> {
    fn new(scope: &'a IgnoredScope) -> Result<Self> {
        Ok(IgnoredMatcher {
            scope,
            patterns: scope.compiled_patterns()?,
            names: scope.names.iter().map(String::as_str).collect(),
        })
    }

    fn matches(&self, node: &NodeProto) -> bool {
        let name = node.name.as_deref().unwrap_or("");
        let op_type = node.op_type.as_deref().unwrap_or("");
        self.names.contains(name)
            || self.scope.types.iter().any(|t| t == op_type)
            || self.patterns.iter().any(|p| p.is_match(name))
    }
}
