//! The part of a model that another model computes differently: what a candidate must really run.
//!
//! A ranking candidate differs from the current model in one group of quantizers. Every node upstream of
//! that group computes exactly what the current model computes, so its results can be taken from the
//! current model and only the *suffix* — the changed nodes and everything that reads their results — needs
//! to run. The suffix is found by comparing the two models node by node (a node is unchanged when an
//! identical node produces the same value in the base and all its constant inputs are identical), so it is
//! correct whatever changed, without knowing how the candidate was built.

use std::collections::{BTreeSet, HashMap, HashSet};

use aquant_onnx::proto::tensor_shape_proto::{dimension::Value as DimValue, Dimension};
use aquant_onnx::proto::type_proto::{Tensor as TensorType, Value as TypeValue};
use aquant_onnx::proto::TensorShapeProto;
use aquant_onnx::{GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

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

/// The suffix of `candidate` relative to `base`, or `None` when the whole model must run: nothing is
/// shared, a graph output does not depend on the change, or a node has a subgraph (whose outer-scope
/// reads are invisible here).
pub fn changed_suffix(base: &ModelProto, candidate: &ModelProto) -> Option<Suffix> {
    let (base_graph, graph) = (base.graph.as_ref()?, candidate.graph.as_ref()?);
    if graph.node.iter().any(has_subgraph) {
        return None;
    }
    let constants = constants(graph);
    let (constant_values, constant_nodes) = constant_only(graph, &constants);
    let changed_values = changed_values(base_graph, graph, &constants);
    if graph
        .output
        .iter()
        .any(|o| !changed_values.contains(o.name.as_deref().unwrap_or("")))
    {
        return None;
    }
    let suffix = suffix_nodes(graph, &changed_values, &constant_nodes);
    if suffix.len() == graph.node.len() {
        return None;
    }
    let boundary: BTreeSet<&str> = suffix
        .iter()
        .flat_map(|n| n.input.iter())
        .map(String::as_str)
        .filter(|i| !i.is_empty() && !constant_values.contains(i) && !changed_values.contains(i))
        .collect();
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
/// produces.
fn changed_values<'g>(
    base: &GraphProto,
    graph: &'g GraphProto,
    constants: &HashMap<&str, &TensorProto>,
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
    let mut changed: HashSet<&str> = HashSet::new();
    for node in &graph.node {
        let same_node = node
            .output
            .first()
            .and_then(|o| base_producers.get(o.as_str()))
            .is_some_and(|b| *b == node);
        if !same_node
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

/// The nodes the suffix runs, in graph order: those producing a changed value, and the unchanged
/// constant-only nodes they read (and what those read in turn).
fn suffix_nodes<'g>(
    graph: &'g GraphProto,
    changed_values: &HashSet<&str>,
    constant_nodes: &HashMap<&str, &'g NodeProto>,
) -> Vec<&'g NodeProto> {
    let produces_changed =
        |n: &NodeProto| n.output.iter().any(|o| changed_values.contains(o.as_str()));
    let mut needed: Vec<&str> = graph
        .node
        .iter()
        .filter(|n| produces_changed(n))
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let mut copied: HashSet<*const NodeProto> = HashSet::new();
    while let Some(value) = needed.pop() {
        if changed_values.contains(value) {
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
        .filter(|n| copied.contains(&(*n as *const NodeProto)) || produces_changed(n))
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
            let elem_type = match tensor {
                Tensor::F32(_) => 1,
                Tensor::I64(_) => 7,
            };
            *input = declared(
                input.name.as_deref().unwrap_or(""),
                elem_type,
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

fn has_subgraph(node: &NodeProto) -> bool {
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
