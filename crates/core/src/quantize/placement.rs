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
//! One activation quantizer exists per quantized tensor, shared by every quantized node reading it.

use std::collections::{BTreeMap, HashSet};

use aquant_onnx::NodeProto;
use regex::Regex;

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::ops;
use crate::quant::Granularity;
use crate::quantize::params::{IgnoredScope, ModelType, QuantizationParams, TargetDevice};

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

impl QuantizedNode {
    /// A node without weights whose activation inputs are quantized (Add, pooling, MatMul of activations).
    fn activations_only(name: String, op_type: String, activations: Vec<(usize, String)>) -> Self {
        QuantizedNode {
            name,
            op_type,
            activations,
            weight: None,
            weight_axis: None,
            bias: None,
        }
    }
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

/// Ops that mean the model is already quantized.
const QUANTIZED_OPS: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "DynamicQuantizeLinear",
];

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
        .find(|n| QUANTIZED_OPS.contains(&n.op_type.as_deref().unwrap_or("")))
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
        (21, "16-bit QuantizeLinear")
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

fn is_activation(graph: &Graph, tensor: &str) -> bool {
    !tensor.is_empty()
        && graph.initializer(tensor).is_none()
        && graph
            .producer(tensor)
            .is_none_or(|p| p.op_type.as_deref() != Some("Constant"))
}

fn constant_slot(graph: &Graph, node: &NodeProto, input: usize) -> Option<ConstantSlot> {
    let name = node.input.get(input).filter(|n| !n.is_empty())?;
    graph.initializer(name).map(|_| ConstantSlot {
        input,
        initializer: name.clone(),
    })
}

fn quantized_node(
    graph: &Graph,
    node: &NodeProto,
    params: &QuantizationParams,
) -> Option<QuantizedNode> {
    let op_type = node.op_type.clone().unwrap_or_default();
    let name = node.name.clone().unwrap_or_default();
    let activation = |i: usize| {
        node.input
            .get(i)
            .filter(|t| is_activation(graph, t))
            .map(|t| (i, t.clone()))
    };
    let transformer = params.model_type == Some(ModelType::Transformer);
    match ops::quantizable(&op_type) {
        Some(q) => {
            let weight = q.weight_input.and_then(|w| constant_slot(graph, node, w));
            let activations: Vec<(usize, String)> = q
                .activation_inputs
                .iter()
                .filter_map(|&i| activation(i))
                .collect();
            if activations.len() != q.activation_inputs.len() {
                return None;
            }
            match weight {
                Some(weight) => {
                    let rank = graph
                        .initializer(&weight.initializer)
                        .map_or(0, |t| t.dims.len());
                    let per_channel =
                        params.weights.granularity == Granularity::PerChannel && rank >= 2;
                    Some(QuantizedNode {
                        name,
                        op_type,
                        activations,
                        weight_axis: per_channel.then(|| ops::weight_channel_axis(node, rank)),
                        weight: Some(weight),
                        bias: q.bias_input.and_then(|b| constant_slot(graph, node, b)),
                    })
                }
                // MatMul between two activations: attention scores, quantized in transformer mode.
                None if transformer && op_type == "MatMul" => {
                    let both: Vec<(usize, String)> = (0..2).filter_map(activation).collect();
                    (both.len() == 2).then(|| QuantizedNode::activations_only(name, op_type, both))
                }
                None => None,
            }
        }
        _ if op_type == "Add" && (transformer || params.target_device == TargetDevice::Cpu) => {
            // Residual Add between two activations: runtimes add in INT8 when both inputs are quantized.
            let both: Vec<(usize, String)> = (0..2).filter_map(activation).collect();
            (both.len() == 2 && both[0].1 != both[1].1)
                .then(|| QuantizedNode::activations_only(name, op_type, both))
        }
        _ if matches!(op_type.as_str(), "GlobalAveragePool" | "AveragePool")
            && params.target_device == TargetDevice::Cpu =>
        {
            activation(0).map(|a| QuantizedNode::activations_only(name, op_type, vec![a]))
        }
        _ => None,
    }
}

/// Matches nodes against an [`IgnoredScope`].
struct IgnoredMatcher<'a> {
    scope: &'a IgnoredScope,
    patterns: Vec<Regex>,
    names: HashSet<&'a str>,
}

impl<'a> IgnoredMatcher<'a> {
    fn new(scope: &'a IgnoredScope) -> Result<Self> {
        let patterns = scope
            .patterns
            .iter()
            .map(|p| {
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| Error::Config(format!("ignored_scope pattern '{p}': {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(IgnoredMatcher {
            scope,
            patterns,
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
