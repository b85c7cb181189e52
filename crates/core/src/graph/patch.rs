//! Graph edits as values.
//!
//! A [`Patch`] is a label plus a list of [`Edit`]s. Building one never touches the model; [`Graph::apply`]
//! (in the parent module) applies it to a copy and swaps it in only when the result validates. The label is
//! what reports show ("quantize input 0 of conv1", "revert group 3").
//!
//! [`Graph::apply`]: super::Graph::apply

use aquant_onnx::{GraphProto, NodeProto, TensorProto, ValueInfoProto};

use crate::error::{Error, Result};

/// One elementary edit.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Adds a node (position is fixed by the topological sort that follows).
    AddNode(NodeProto),
    /// Removes the node with this name.
    RemoveNode(String),
    /// Makes input `index` of node `node` read `value`.
    SetInput {
        /// Node name.
        node: String,
        /// Input position.
        index: usize,
        /// New value name.
        value: String,
    },
    /// Adds an initializer; its name must be new.
    AddInitializer(TensorProto),
    /// Replaces the initializer of the same name.
    ReplaceInitializer(TensorProto),
    /// Removes an initializer (and any graph input of the same name).
    RemoveInitializer(String),
    /// Adds a graph output.
    AddOutput(ValueInfoProto),
}

/// A labelled list of edits applied atomically.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    /// What the patch does, for reports.
    pub label: String,
    /// The edits, applied in order.
    pub edits: Vec<Edit>,
}

impl Patch {
    /// An empty patch.
    pub fn new(label: impl Into<String>) -> Self {
        Patch {
            label: label.into(),
            edits: Vec::new(),
        }
    }

    /// Appends an edit.
    pub fn push(&mut self, edit: Edit) -> &mut Self {
        self.edits.push(edit);
        self
    }

    /// Appends all edits of `other`.
    pub fn extend(&mut self, other: Patch) {
        self.edits.extend(other.edits);
    }

    /// True when the patch has no edit.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    pub(super) fn apply_to(&self, graph: &mut GraphProto) -> Result<()> {
        let fail = |what: String| Error::InvalidModel(format!("patch '{}': {what}", self.label));
        for edit in &self.edits {
            match edit {
                Edit::AddNode(node) => graph.node.push(node.clone()),
                Edit::RemoveNode(name) => {
                    let before = graph.node.len();
                    graph.node.retain(|n| n.name.as_deref() != Some(name));
                    if graph.node.len() == before {
                        return Err(fail(format!("no node '{name}' to remove")));
                    }
                }
                Edit::SetInput { node, index, value } => {
                    let n = graph
                        .node
                        .iter_mut()
                        .find(|n| n.name.as_deref() == Some(node))
                        .ok_or_else(|| fail(format!("no node '{node}'")))?;
                    let slot = n
                        .input
                        .get_mut(*index)
                        .ok_or_else(|| fail(format!("node '{node}' has no input {index}")))?;
                    *slot = value.clone();
                }
                Edit::AddInitializer(t) => {
                    if graph.initializer.iter().any(|i| i.name == t.name) {
                        return Err(fail(format!(
                            "initializer '{}' exists",
                            t.name.as_deref().unwrap_or("")
                        )));
                    }
                    graph.initializer.push(t.clone());
                }
                Edit::ReplaceInitializer(t) => {
                    let slot = graph
                        .initializer
                        .iter_mut()
                        .find(|i| i.name == t.name)
                        .ok_or_else(|| {
                            fail(format!(
                                "no initializer '{}'",
                                t.name.as_deref().unwrap_or("")
                            ))
                        })?;
                    *slot = t.clone();
                }
                Edit::RemoveInitializer(name) => {
                    graph
                        .initializer
                        .retain(|i| i.name.as_deref() != Some(name));
                    graph.input.retain(|i| i.name.as_deref() != Some(name));
                }
                Edit::AddOutput(v) => graph.output.push(v.clone()),
            }
        }
        Ok(())
    }
}
