//! The part of a model that another model computes differently: what a candidate must really run.
//!
//! A ranking candidate differs from the current model in one group of quantizers. Every node upstream of
//! that group computes exactly what the current model computes, so its results can be taken from the
//! current model and only the *suffix* — the changed nodes and everything that reads their results — needs
//! to run. The suffix is found by comparing the two models node by node (a node is unchanged when an
//! identical node produces the same value in the base and all its constant inputs are identical), so it is
//! correct whatever changed, without knowing how the candidate was built.
//!
//! Where the suffix may start depends on the engine ([`Cut`]): anywhere for plain f32 ops, only at quantized
//! values for an engine that fuses quantized ops, so that taking a value from the base changes nothing the
//! engine computes.

use std::collections::{BTreeSet, HashMap, HashSet};

use aquant_onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
use aquant_onnx::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use aquant_onnx::proto::TensorShapeProto;
use aquant_onnx::{GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Where a suffix may start reading the base model's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// At any value: every node computes the same whatever reads its results (plain f32 ops, and quantization
    /// simulated in f32, tract's evaluation form).
    Anywhere,
    /// Only at the graph's inputs and at 8-bit quantized values (what a `QuantizeLinear` writes). An engine that
    /// fuses `DequantizeLinear → op → QuantizeLinear` into one integer kernel (ONNX Runtime) never computes
    /// the float values in between, and computes them otherwise once they are outputs; the quantized value the
    /// kernel writes is the same whether or not it is also an output, and a suffix starting there keeps every
    /// fused group whole. A node whose results have other readers in the candidate than in the base runs in
    /// the suffix too: whether the engine fuses it with its readers may differ.
    AtQuantizedValues,
    /// At any value but the result of a node that an engine may fuse with its reader in float: a convolution's
    /// or a matrix product's (`Conv`, `ConvTranspose`, `MatMul`, `Gemm`). ONNX Runtime fuses an FP32 convolution with the residual
    /// `Add` reading it unless the value between them is an output, and the fused kernel rounds differently;
    /// so that producer runs in the suffix too, and the value it reads is where the suffix starts.
    OutsideFloatFusions,
}

/// The ops whose result an engine may fuse with its reader in float ([`Cut::OutsideFloatFusions`]).
const FUSED_WITH_READER: [&str; 4] = ["Conv", "ConvTranspose", "MatMul", "Gemm"];

/// The changed part of a candidate model, runnable on its own.
#[derive(Debug, Clone)]
pub struct Suffix {
    /// A model whose inputs are [`Suffix::boundary`] (declared without a type until [`Suffix::model_for`])
    /// and whose outputs are the candidate's outputs.
    model: ModelProto,
    /// Values the suffix reads from the unchanged part, in the order of the suffix model's inputs; the base
    /// model computes each of them exactly as the candidate would.
    pub boundary: Vec<String>,
    /// Nodes in the suffix, out of the candidate's total.
    pub nodes: usize,
}

/// The suffix of `candidate` relative to `base`, starting where `cut` allows, or `None` when the whole model
/// must run: nothing is shared, a graph output does not depend on the change, or a node has a subgraph (whose
/// outer-scope reads are invisible here).
pub fn changed_suffix(base: &ModelProto, candidate: &ModelProto, cut: Cut) -> Option<Suffix> {
    let (base_graph, graph) = (base.graph.as_ref()?, candidate.graph.as_ref()?);
    if graph.node.iter().any(has_subgraph) {
        return None;
    }
    let constants = constants(graph);
    let (constant_values, constant_nodes) = constant_only(graph, &constants);
    let mut computed = changed_values(base_graph, graph, &constants, cut);
    // Shape values (int64, no batch axis) are never read from the base: the suffix takes them itself from the
    // activation they are the shape of, whatever the cut.
    let shapes = shape_values(graph, &constant_values);
    let quantized = quantized_values(graph);
    grow_upstream(graph, &mut computed, &constant_values, |value, producer| {
        !shapes.contains(value)
            && match cut {
                Cut::Anywhere => true,
                Cut::AtQuantizedValues => quantized.contains_key(value),
                Cut::OutsideFloatFusions => {
                    !FUSED_WITH_READER.contains(&producer.op_type.as_deref().unwrap_or(""))
                }
            }
    });
    if graph
        .output
        .iter()
        .any(|o| !computed.contains(o.name.as_deref().unwrap_or("")))
    {
        return None;
    }
    let suffix = suffix_nodes(graph, &computed, &constant_nodes);
    if suffix.len() == graph.node.len() {
        return None;
    }
    let boundary = boundary(&suffix, &constant_values, &computed);
    if boundary.is_empty() {
        return None;
    }
    Some(Suffix {
        nodes: suffix.len(),
        boundary: boundary.iter().map(|b| b.to_string()).collect(),
        model: ModelProto {
            graph: Some(suffix_graph(graph, &suffix, &boundary, &constants)),
            ..candidate.clone_without_graph()
        },
    })
}

/// The values the suffix's nodes read from outside it: neither computed from constants nor by the suffix.
fn boundary<'g>(
    suffix: &[&'g NodeProto],
    constant_values: &HashSet<&str>,
    computed: &HashSet<&str>,
) -> BTreeSet<&'g str> {
    suffix
        .iter()
        .flat_map(|n| n.input.iter())
        .map(String::as_str)
        .filter(|i| !i.is_empty() && !constant_values.contains(i) && !computed.contains(i))
        .collect()
}

/// The ONNX element type (uint8 or int8) of each value a `QuantizeLinear` writes at 8 bits: where a
/// [`Cut::AtQuantizedValues`] may start. Its zero point says the type (uint8 when there is none, unless the
/// node's `output_dtype` says otherwise).
pub(crate) fn quantized_values(graph: &GraphProto) -> HashMap<&str, i32> {
    const UINT8: i32 = 2;
    const INT8: i32 = 3;
    let constants = constants(graph);
    graph
        .node
        .iter()
        .filter(|n| {
            n.op_type.as_deref() == Some("QuantizeLinear")
                && n.domain.as_deref().unwrap_or("").is_empty()
        })
        .filter_map(|n| {
            let zero_point = n.input.get(2).filter(|z| !z.is_empty());
            let elem_type = match zero_point {
                Some(z) => constants.get(z.as_str())?.data_type?,
                None => n
                    .attribute
                    .iter()
                    .find(|a| a.name.as_deref() == Some("output_dtype"))
                    .and_then(|a| a.i)
                    .map_or(UINT8, |t| t as i32),
            };
            let value = n.output.first()?;
            matches!(elem_type, UINT8 | INT8).then_some((value.as_str(), elem_type))
        })
        .collect()
}

/// Grows `computed` upstream until every value the suffix reads from the base is a graph input, a constant
/// or a value `may_start(value, its producer)` accepts: the producer of any other value it reads runs in the
/// suffix too, and so on up.
fn grow_upstream<'g>(
    graph: &'g GraphProto,
    computed: &mut HashSet<&'g str>,
    constant_values: &HashSet<&str>,
    may_start: impl Fn(&str, &NodeProto) -> bool,
) {
    let producers: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut reads: Vec<&str> = graph
        .node
        .iter()
        .filter(|n| n.output.iter().any(|o| computed.contains(o.as_str())))
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    while let Some(value) = reads.pop() {
        if value.is_empty() || computed.contains(value) || constant_values.contains(value) {
            continue;
        }
        // A graph input has no producer: the suffix reads it as it is.
        if let Some(&producer) = producers.get(value).filter(|p| !may_start(value, p)) {
            computed.extend(producer.output.iter().map(String::as_str));
            reads.extend(producer.input.iter().map(String::as_str));
        }
    }
}

/// Values computed from the *shapes* of activations (through `Shape` or `Size`) and constants only: the same
/// for every sample, int64 and without a batch axis, unlike the float values a suffix is handed.
fn shape_values<'g>(graph: &'g GraphProto, constant_values: &HashSet<&str>) -> HashSet<&'g str> {
    let mut shapes: HashSet<&str> = HashSet::new();
    for node in &graph.node {
        let of_shapes = matches!(node.op_type.as_deref(), Some("Shape" | "Size"))
            || node.input.iter().any(|i| shapes.contains(i.as_str()))
                && (node.input.iter()).all(|i| {
                    i.is_empty()
                        || shapes.contains(i.as_str())
                        || constant_values.contains(i.as_str())
                });
        if of_shapes {
            shapes.extend(node.output.iter().map(String::as_str));
        }
    }
    shapes
}

/// Values computed from constants alone (Constant nodes, shapes folded from initializers), and the nodes
/// computing them: they are cheap and may have no batch axis, so the suffix computes them itself rather
/// than reading them.
fn constant_only<'g>(
    graph: &'g GraphProto,
    constants: &HashMap<&'g str, &'g TensorProto>,
) -> (HashSet<&'g str>, HashMap<&'g str, &'g NodeProto>) {
    let mut constant_values: HashSet<&str> = constants.keys().copied().collect();
    let mut constant_nodes: HashMap<&str, &NodeProto> = HashMap::new();
    for node in &graph.node {
        if node
            .input
            .iter()
            .all(|i| i.is_empty() || constant_values.contains(i.as_str()))
        {
            for output in &node.output {
                constant_values.insert(output);
                constant_nodes.insert(output, node);
            }
        }
    }
    (constant_values, constant_nodes)
}

/// The values of `graph` that `base` does not compute identically. Nodes are in topological order: one
/// pass marks every node that is new, edited, reads an edited constant, or reads a value a marked node
/// produces — and under [`Cut::AtQuantizedValues`] one whose results have other readers than in the base.
fn changed_values<'g>(
    base: &GraphProto,
    graph: &'g GraphProto,
    constants: &HashMap<&str, &TensorProto>,
    cut: Cut,
) -> HashSet<&'g str> {
    let base_producers: HashMap<&str, &NodeProto> = base
        .node
        .iter()
        .filter_map(|n| Some((n.output.first()?.as_str(), n)))
        .collect();
    let base_constants = self::constants(base);
    let changed_constant = |name: &str| {
        constants
            .get(name)
            .is_some_and(|t| base_constants.get(name) != Some(t))
    };
    let readers = (cut == Cut::AtQuantizedValues).then(|| (readers(base), readers(graph)));
    let readers_differ = |node: &NodeProto| {
        readers.as_ref().is_some_and(|(base, candidate)| {
            node.output
                .iter()
                .any(|o| base.get(o.as_str()) != candidate.get(o.as_str()))
        })
    };
    let mut changed: HashSet<&str> = HashSet::new();
    for node in &graph.node {
        let same_node = node
            .output
            .first()
            .and_then(|o| base_producers.get(o.as_str()))
            .is_some_and(|b| *b == node);
        if !same_node
            || readers_differ(node)
            || node
                .input
                .iter()
                .any(|i| changed_constant(i) || changed.contains(i.as_str()))
        {
            changed.extend(node.output.iter().map(String::as_str));
        }
    }
    changed
}

/// Who reads each value: the first output of every node reading it, and `""` for the graph's outputs.
fn readers(graph: &GraphProto) -> HashMap<&str, BTreeSet<&str>> {
    let mut readers: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for node in &graph.node {
        let reader = node.output.first().map_or("", String::as_str);
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            readers.entry(input).or_default().insert(reader);
        }
    }
    for output in &graph.output {
        let name = output.name.as_deref().unwrap_or("");
        readers.entry(name).or_default().insert("");
    }
    readers
}

/// The nodes the suffix runs, in graph order: those producing a value it computes, and the unchanged
/// constant-only nodes they read (and what those read in turn).
fn suffix_nodes<'g>(
    graph: &'g GraphProto,
    computed: &HashSet<&str>,
    constant_nodes: &HashMap<&str, &'g NodeProto>,
) -> Vec<&'g NodeProto> {
    let produces_computed = |n: &NodeProto| n.output.iter().any(|o| computed.contains(o.as_str()));
    let mut needed: Vec<&str> = graph
        .node
        .iter()
        .filter(|n| produces_computed(n))
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let mut copied: HashSet<*const NodeProto> = HashSet::new();
    while let Some(value) = needed.pop() {
        if computed.contains(value) {
            continue;
        }
        if let Some(&node) = constant_nodes.get(value) {
            if copied.insert(node as *const NodeProto) {
                needed.extend(node.input.iter().map(String::as_str));
            }
        }
    }
    graph
        .node
        .iter()
        .filter(|n| copied.contains(&(*n as *const NodeProto)) || produces_computed(n))
        .collect()
}

/// The suffix as a graph: its nodes, the constants they read, the boundary as (untyped) inputs and the
/// candidate's outputs.
fn suffix_graph(
    graph: &GraphProto,
    suffix: &[&NodeProto],
    boundary: &BTreeSet<&str>,
    constants: &HashMap<&str, &TensorProto>,
) -> GraphProto {
    let used_constants: BTreeSet<&str> = suffix
        .iter()
        .flat_map(|n| n.input.iter())
        .map(String::as_str)
        .filter(|i| constants.contains_key(i))
        .collect();
    GraphProto {
        name: graph.name.clone(),
        node: suffix.iter().map(|&n| n.clone()).collect(),
        initializer: used_constants
            .iter()
            .map(|&c| constants[c].clone())
            .collect(),
        input: boundary.iter().map(|&b| untyped(b)).collect(),
        output: graph
            .output
            .iter()
            .map(|o| ValueInfoProto {
                name: o.name.clone(),
                r#type: o.r#type.as_ref().map(without_shape),
                ..Default::default()
            })
            .collect(),
        // Intermediate declarations may name symbols the new inputs do not: engines infer them instead.
        value_info: Vec::new(),
        ..Default::default()
    }
}

impl Suffix {
    /// The suffix model with its inputs declared as exactly the given boundary tensors (type and shape),
    /// so the engine can optimise it for them. Fails on a tensor the suffix cannot take.
    pub fn model_for(&self, boundary: &[Tensor]) -> Result<ModelProto> {
        if boundary.len() != self.boundary.len() {
            return Err(Error::InvalidModel(format!(
                "the suffix reads {} values, {} given",
                self.boundary.len(),
                boundary.len()
            )));
        }
        let mut model = self.model.clone();
        let graph = model.graph.as_mut().expect("suffix models have a graph");
        for (input, tensor) in graph.input.iter_mut().zip(boundary) {
            *input = declared(
                input.name.as_deref().unwrap_or(""),
                tensor.onnx_elem_type(),
                tensor.shape(),
            );
        }
        Ok(model)
    }
}

/// Copying a model's metadata without cloning its (large) graph.
trait CloneWithoutGraph {
    fn clone_without_graph(&self) -> ModelProto;
}

impl CloneWithoutGraph for ModelProto {
    fn clone_without_graph(&self) -> ModelProto {
        ModelProto {
            ir_version: self.ir_version,
            opset_import: self.opset_import.clone(),
            producer_name: self.producer_name.clone(),
            producer_version: self.producer_version.clone(),
            domain: self.domain.clone(),
            model_version: self.model_version,
            doc_string: self.doc_string.clone(),
            metadata_props: self.metadata_props.clone(),
            functions: self.functions.clone(),
            ..Default::default()
        }
    }
}

fn constants(graph: &GraphProto) -> HashMap<&str, &TensorProto> {
    graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.as_deref()?, t)))
        .collect()
}

pub(super) fn has_subgraph(node: &NodeProto) -> bool {
    node.attribute
        .iter()
        .any(|a| a.g.is_some() || !a.graphs.is_empty())
}

/// An input placeholder, declared for real by [`Suffix::model_for`].
fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

fn declared(name: &str, elem_type: i32, shape: &[usize]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| Dimension {
            value: Some(DimValue::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn without_shape(declared: &TypeProto) -> TypeProto {
    match &declared.value {
        Some(TypeValue::TensorType(t)) => TypeProto {
            value: Some(TypeValue::TensorType(TensorType {
                elem_type: t.elem_type,
                shape: None,
            })),
            ..declared.clone()
        },
        _ => declared.clone(),
    }
}
