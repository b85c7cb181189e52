//! The part of a model that computes some of its values, and nothing after them.
//!
//! A cohort's base model runs to hand its candidates' suffixes their boundary values ([`super::Suffix`]);
//! the nodes downstream of the last boundary value would run for nothing. The prefix keeps only the nodes the
//! values depend on, so a cohort of early groups taps a fraction of the model. Every kept node reads exactly
//! what it read in the whole model, so it computes the same values.

use std::collections::HashSet;

use aquant_onnx::ModelProto;

use super::suffix::has_subgraph;

/// `model` reduced in place to the nodes `values` depend on, with no outputs of its own (the caller adds
/// `values` as outputs when it prepares it); the graph's inputs and the initializers those nodes read are
/// kept. A model with a node holding a subgraph, whose outer-scope reads are not followed here, comes back
/// whole, outputs and all.
pub fn prefix(mut model: ModelProto, values: &[String]) -> ModelProto {
    let Some(graph) = model.graph.as_mut() else {
        return model;
    };
    if graph.node.iter().any(has_subgraph) {
        return model;
    }
    let mut needed: HashSet<String> = values.iter().cloned().collect();
    // Built models list nodes in topological order: walking them backwards reaches every producer after its
    // readers.
    let mut keep = vec![false; graph.node.len()];
    for (i, node) in graph.node.iter().enumerate().rev() {
        if node.output.iter().any(|o| needed.contains(o)) {
            keep[i] = true;
            needed.extend(node.input.iter().cloned());
        }
    }
    let mut kept = keep.into_iter();
    graph
        .node
        .retain(|_| kept.next().expect("one flag per node"));
    let is_needed = |name: &Option<String>| name.as_ref().is_some_and(|n| needed.contains(n));
    graph.initializer.retain(|t| is_needed(&t.name));
    graph.value_info.retain(|v| is_needed(&v.name));
    graph.output.clear();
    model
}
