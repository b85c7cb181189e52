//! The overflow fix: which weight quantizers use half the int8 range, and what half range means.
//!
//! Without VNNI, x86 int8 kernels add each pair of adjacent u8×s8 products in saturating int16
//! (`vpmaddubsw`; see [`crate::saturation`]). With weights in [-64, 63] a pair is at most 255·128 = 32640,
//! which fits: the layer cannot saturate, at the price of one bit of weight resolution. NNCF calls this
//! `overflow_fix` (POT: `saturation_fix`) and applies it by default to the first convolutions only, where
//! dense input images make saturation likely.
//!
//! Half range follows NNCF (`fake_quantize._calculate_scaled_parameters`): the range is computed for the
//! full grid and the scale doubled, so weights land in [-64, 63] (the largest magnitude, at 63.5 steps, is
//! clamped to ±63.5's nearest level: an error of at most half a step, like any rounding).
//!
//! `first_layer` is NNCF's rule (`min_max/algorithm.py::_get_first_quantized_convolutions`): a breadth-first
//! walk from each graph input that stops at the first quantized **Conv** on each path (the ops whose family
//! says [`first_layer`](crate::ops::QuantizedOp::first_layer)); other quantized ops (MatMul, Gemm,
//! ConvTranspose) do not stop the walk and are not halved. `enable` halves every weight of a
//! Conv, ConvTranspose, MatMul or Gemm. `auto` halves exactly the layers the saturation analysis finds at
//! risk (see `quantize::quantize`).

use std::collections::{BTreeSet, HashSet, VecDeque};

use crate::graph::Graph;
use crate::ops;
use crate::params::OverflowFix;
use crate::quantize::placement::Placement;

/// The nodes whose weights `fix` halves (`auto` is decided from data: `at_risk` holds the analysis' verdict).
pub fn halved_layers(
    graph: &Graph,
    placement: &Placement,
    fix: OverflowFix,
    at_risk: &BTreeSet<String>,
) -> BTreeSet<String> {
    let weighted = placement.nodes.iter().filter(|n| n.weight.is_some());
    match fix {
        OverflowFix::Disable => BTreeSet::new(),
        OverflowFix::Enable => weighted.map(|n| n.name.clone()).collect(),
        OverflowFix::Auto => weighted
            .filter(|n| at_risk.contains(&n.name))
            .map(|n| n.name.clone())
            .collect(),
        OverflowFix::FirstLayer => first_convolutions(graph, placement),
    }
}

/// NNCF's `first_layer`: for each graph input, the quantized Convs first reached on each path.
fn first_convolutions(graph: &Graph, placement: &Placement) -> BTreeSet<String> {
    let stops: HashSet<&str> = placement
        .nodes
        .iter()
        .filter(|n| {
            n.weight.is_some() && ops::lookup(&n.op_type).is_some_and(|op| op.first_layer())
        })
        .map(|n| n.name.as_str())
        .collect();
    let mut found = BTreeSet::new();
    for input in graph.inputs() {
        let mut visited: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<String> = graph
            .consumers(&input.name)
            .into_iter()
            .filter_map(|n| n.name.clone())
            .collect();
        // Every node enters the queue's visited set once: the walk ends after at most |nodes| steps.
        while let Some(name) = queue.pop_front() {
            if !visited.insert(name.clone()) {
                continue;
            }
            if stops.contains(name.as_str()) {
                found.insert(name);
                continue;
            }
            let Some(node) = graph.node(&name) else {
                continue;
            };
            for output in &node.output {
                queue.extend(
                    graph
                        .consumers(output)
                        .into_iter()
                        .filter_map(|n| n.name.clone()),
                );
            }
        }
    }
    found
}
