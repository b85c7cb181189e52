//! The graph IR: an indexed, validated view of one ONNX model.
//!
//! [`Graph`] owns the [`ModelProto`] and keeps indices over it (producer and consumers of every value,
//! initializers by name, a topological order). The protobuf stays the single source of truth so that what
//! aquant does not understand is written back untouched. Every edit is a [`Patch`]: a labelled list of edits
//! applied in one place ([`Graph::apply`]), after which the indices are rebuilt and the graph revalidated, so
//! no code path can leave a half-edited model behind.
//!
//! Invariants after construction and after every patch: every node has a unique name (unnamed nodes get
//! `<op_type>_<index>` on load), every value is produced once, every node input is produced by a node, a graph
//! input or an initializer, the nodes are acyclic, and `model.graph.node` is stored in topological order.

mod patch;
mod prefix;
mod suffix;

use std::collections::{HashMap, HashSet};

use aquant_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use aquant_onnx::proto::type_proto::Value as TypeValue;
use aquant_onnx::{GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};

use crate::error::{Error, Result};

pub use patch::{Edit, Patch};
pub use prefix::prefix;
pub(crate) use suffix::quantized_values;
pub use suffix::{changed_suffix, Cut, Suffix};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic size (e.g. the batch `N`), or unknown.
    Symbolic(String),
}

/// A graph input or output as the model declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Tensor name.
    pub name: String,
    /// ONNX element type code (1 = float).
    pub elem_type: i32,
    /// Declared shape, when the model declares one.
    pub shape: Option<Vec<Dim>>,
}

/// The files a model was read from: what a run must never write over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// The model file, then its external data files (ONNX) or its weights (IR `.bin`).
    pub files: Vec<std::path::PathBuf>,
    /// Whether an ONNX model kept tensors in external data files.
    pub external_data: bool,
}

/// An indexed, validated ONNX model.
#[derive(Debug, Clone)]
pub struct Graph {
    model: ModelProto,
    producer: HashMap<String, usize>,
    consumers: HashMap<String, Vec<usize>>,
    initializer: HashMap<String, usize>,
    node_by_name: HashMap<String, usize>,
}

impl Graph {
    /// Indexes and validates `model`, naming unnamed nodes.
    pub fn new(mut model: ModelProto) -> Result<Graph> {
        let graph = model
            .graph
            .as_mut()
            .ok_or_else(|| Error::InvalidModel("model has no graph".into()))?;
        name_unnamed_nodes(graph);
        sort_topologically(graph)?;
        let mut g = Graph {
            model,
            producer: HashMap::new(),
            consumers: HashMap::new(),
            initializer: HashMap::new(),
            node_by_name: HashMap::new(),
        };
        g.reindex()?;
        Ok(g)
    }

    /// Loads, decodes and validates the model at `path`: ONNX, or an OpenVINO IR `.xml` with its `.bin` beside
    /// it.
    pub fn load(path: &std::path::Path) -> Result<Graph> {
        Graph::load_with_weights(path, None)
    }

    /// [`Graph::load`] with the weights of an IR given (POT's `model.weights`); `weights` must be `None` for
    /// an ONNX model, which carries its own.
    pub fn load_with_weights(
        path: &std::path::Path,
        weights: Option<&std::path::Path>,
    ) -> Result<Graph> {
        Graph::open(path, weights).map(|(graph, _)| graph)
    }

    /// [`Graph::load_with_weights`], with the files the model was read from.
    pub fn open(
        path: &std::path::Path,
        weights: Option<&std::path::Path>,
    ) -> Result<(Graph, Sources)> {
        if aquant_ir::is_ir(path) {
            let bin = weights.map_or_else(|| aquant_ir::weights_beside(path), |w| w.to_path_buf());
            let sources = Sources {
                files: vec![path.to_path_buf(), bin],
                external_data: false,
            };
            return Ok((Graph::new(aquant_ir::load_ir(path, weights)?)?, sources));
        }
        if let Some(weights) = weights {
            return Err(Error::InvalidModel(format!(
                "weights '{}' given for '{}', which is not an OpenVINO IR (.xml)",
                weights.display(),
                path.display()
            )));
        }
        let loaded = aquant_onnx::load(path)?;
        let sources = Sources {
            external_data: !loaded.external_files.is_empty(),
            files: std::iter::once(path.to_path_buf())
                .chain(loaded.external_files)
                .collect(),
        };
        Ok((Graph::new(loaded.model)?, sources))
    }

    /// The underlying model.
    pub fn model(&self) -> &ModelProto {
        &self.model
    }

    /// Gives the model back.
    pub fn into_model(self) -> ModelProto {
        self.model
    }

    fn proto(&self) -> &GraphProto {
        self.model.graph.as_ref().expect("validated in Graph::new")
    }

    /// Nodes in topological order.
    pub fn nodes(&self) -> &[NodeProto] {
        &self.proto().node
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodeProto> {
        self.node_by_name.get(name).map(|&i| &self.proto().node[i])
    }

    /// Position of node `name` in the topological order.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.node_by_name.get(name).copied()
    }

    /// The node producing `value`, if a node does (not for inputs and initializers).
    pub fn producer(&self, value: &str) -> Option<&NodeProto> {
        self.producer.get(value).map(|&i| &self.proto().node[i])
    }

    /// The nodes reading `value`, in topological order.
    pub fn consumers(&self, value: &str) -> Vec<&NodeProto> {
        self.consumers
            .get(value)
            .map(|v| v.iter().map(|&i| &self.proto().node[i]).collect())
            .unwrap_or_default()
    }

    /// The initializer called `name`.
    pub fn initializer(&self, name: &str) -> Option<&TensorProto> {
        self.initializer
            .get(name)
            .map(|&i| &self.proto().initializer[i])
    }

    /// Whether `value` depends on the values fed to the graph: an activation, which changes from sample to
    /// sample and carries the batch. A value computed from initializers, constants and only the *shapes* of
    /// the inputs (through `Shape` or `Size`: a position embedding gathered by sequence length) is the same for
    /// every sample and has no batch axis.
    pub fn carries_input_values(&self, value: &str) -> bool {
        let mut pending = vec![value];
        let mut seen: HashSet<&str> = HashSet::new();
        // Each value is expanded once: the walk ends after at most every value of the graph.
        while let Some(value) = pending.pop() {
            if value.is_empty() || !seen.insert(value) || self.initializer(value).is_some() {
                continue;
            }
            match self.producer(value) {
                None => return true,
                Some(p) if matches!(p.op_type.as_deref(), Some("Shape" | "Size")) => {}
                Some(p) => pending.extend(p.input.iter().map(String::as_str)),
            }
        }
        false
    }

    /// True when `value` is a graph output.
    pub fn is_output(&self, value: &str) -> bool {
        self.proto()
            .output
            .iter()
            .any(|o| o.name.as_deref() == Some(value))
    }

    /// Graph inputs that are fed at run time (initializers excluded).
    pub fn inputs(&self) -> Vec<Port> {
        runtime_inputs(self.proto())
    }

    /// Graph outputs.
    pub fn outputs(&self) -> Vec<Port> {
        self.proto().output.iter().map(port).collect()
    }

    /// Declared element type and shape of any value (input, output or `value_info`).
    pub fn value_info(&self, value: &str) -> Option<Port> {
        let g = self.proto();
        g.input
            .iter()
            .chain(&g.output)
            .chain(&g.value_info)
            .find(|v| v.name.as_deref() == Some(value))
            .map(port)
    }

    /// Count of nodes per op type, sorted by op type.
    pub fn op_counts(&self) -> Vec<(String, usize)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for n in self.nodes() {
            *counts
                .entry(n.op_type.as_deref().unwrap_or(""))
                .or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(k, c)| (k.to_string(), c))
            .collect();
        v.sort();
        v
    }

    /// Applies a patch, then reorders, reindexes and revalidates. On error the graph is unchanged.
    pub fn apply(&mut self, patch: &Patch) -> Result<()> {
        *self = self.clone().patched(patch)?;
        Ok(())
    }

    /// Applies a patch to an owned graph: no copy is made, and on error the graph is gone (callers that
    /// must keep it use [`Graph::apply`]).
    pub fn patched(mut self, patch: &Patch) -> Result<Graph> {
        let graph = self.model.graph.as_mut().expect("validated in Graph::new");
        patch.apply_to(graph)?;
        sort_topologically(graph)?;
        self.reindex()?;
        Ok(self)
    }

    fn reindex(&mut self) -> Result<()> {
        let graph = self.model.graph.as_ref().expect("validated in Graph::new");
        let mut producer = HashMap::new();
        let mut consumers: HashMap<String, Vec<usize>> = HashMap::new();
        let mut node_by_name = HashMap::new();
        let initializer: HashMap<String, usize> = graph
            .initializer
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone().unwrap_or_default(), i))
            .collect();
        for (i, node) in graph.node.iter().enumerate() {
            let name = node.name.clone().unwrap_or_default();
            if node_by_name.insert(name.clone(), i).is_some() {
                return Err(Error::InvalidModel(format!("two nodes are named '{name}'")));
            }
            for out in node.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(out.clone(), i).is_some() {
                    return Err(Error::InvalidModel(format!(
                        "value '{out}' is produced twice (second time by node '{name}')"
                    )));
                }
            }
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                consumers.entry(input.clone()).or_default().push(i);
            }
        }
        self.producer = producer;
        self.consumers = consumers;
        self.initializer = initializer;
        self.node_by_name = node_by_name;
        Ok(())
    }
}

/// The inputs of `graph` fed at run time (those that are not initializers), without indexing the graph.
pub fn runtime_inputs(graph: &GraphProto) -> Vec<Port> {
    let initializers: HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_deref().unwrap_or("")))
        .map(port)
        .collect()
}

fn port(v: &ValueInfoProto) -> Port {
    let tensor = v.r#type.as_ref().and_then(|t| match &t.value {
        Some(TypeValue::TensorType(tt)) => Some(tt),
        _ => None,
    });
    let shape = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(DimValue::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as usize),
                Some(DimValue::DimParam(p)) => Dim::Symbolic(p.clone()),
                _ => Dim::Symbolic(String::new()),
            })
            .collect()
    });
    Port {
        name: v.name.clone().unwrap_or_default(),
        elem_type: tensor.and_then(|t| t.elem_type).unwrap_or(0),
        shape,
    }
}

fn name_unnamed_nodes(graph: &mut GraphProto) {
    let mut taken: HashSet<String> = graph.node.iter().filter_map(|n| n.name.clone()).collect();
    for (i, node) in graph.node.iter_mut().enumerate() {
        if node.name.as_deref().unwrap_or("").is_empty() {
            let op = node.op_type.clone().unwrap_or_default();
            let mut name = format!("{op}_{i}");
            while taken.contains(&name) {
                name.push('_');
            }
            taken.insert(name.clone());
            node.name = Some(name);
        }
    }
}

/// Stable topological sort (Kahn, preferring the existing order); checks that every input is defined.
fn sort_topologically(graph: &mut GraphProto) -> Result<()> {
    let mut defined: HashSet<&str> = graph
        .input
        .iter()
        .filter_map(|i| i.name.as_deref())
        .chain(graph.initializer.iter().filter_map(|t| t.name.as_deref()))
        .collect();
    defined.insert("");
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    for node in &graph.node {
        for input in &node.input {
            if !defined.contains(input.as_str()) && !producer.contains_key(input.as_str()) {
                return Err(Error::InvalidModel(format!(
                    "node '{}' ({}) reads '{input}', which no node, input or initializer defines",
                    node.name.as_deref().unwrap_or(""),
                    node.op_type.as_deref().unwrap_or("")
                )));
            }
        }
    }
    let n = graph.node.len();
    let mut pending: Vec<usize> = graph
        .node
        .iter()
        .map(|node| {
            node.input
                .iter()
                .filter(|i| !defined.contains(i.as_str()))
                .filter(|i| producer.contains_key(i.as_str()))
                .count()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|i| !defined.contains(i.as_str())) {
            if let Some(&p) = producer.get(input.as_str()) {
                dependents[p].push(i);
            }
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n).find(|i| pending[*i] > 0).expect("some node is left");
        let node = &graph.node[stuck];
        return Err(Error::InvalidModel(format!(
            "the graph has a cycle through node '{}' ({})",
            node.name.as_deref().unwrap_or(""),
            node.op_type.as_deref().unwrap_or("")
        )));
    }
    if order.iter().enumerate().any(|(pos, &i)| pos != i) {
        let mut nodes: Vec<Option<NodeProto>> = std::mem::take(&mut graph.node)
            .into_iter()
            .map(Some)
            .collect();
        graph.node = order
            .into_iter()
            .map(|i| nodes[i].take().expect("each index once"))
            .collect();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
