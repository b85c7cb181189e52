//! Quantizer groups: the units accuracy control reverts.
//!
//! Starting from a quantizer, take the quantized ops it feeds, then every other quantizer feeding those ops,
//! and repeat (SPEC §4.5). Reverting only part of such a closure would leave an op with one input quantized
//! and another not, which no runtime executes as INT8. Since quantizers sit on the edges into quantized ops
//! (see [`placement`](crate::quantize::place)), the closure through quantize-agnostic ops is already folded
//! into the placement: a group is a connected component of the bipartite graph of quantized ops and the
//! activation quantizers they read. A weight quantizer belongs to its op.

use std::collections::BTreeMap;

use crate::params::Precision;
use crate::quantize::Placement;

/// A set of quantized ops reverted together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QuantizerGroup {
    /// Group number, in topological order of the groups' first ops.
    pub id: usize,
    /// Quantized ops of the group, in topological order.
    pub nodes: Vec<String>,
    /// Activation quantizers (tensor names) of the group.
    pub tensors: Vec<String>,
    /// The ops the ladder's `dynamic` step moves: those that can quantize their input at run time
    /// ([`QuantizedNode::can_quantize_input_at_run_time`](crate::quantize::QuantizedNode)). Empty: the group
    /// skips that step.
    #[serde(skip)]
    pub dynamic: Vec<String>,
}

impl QuantizerGroup {
    /// The ops a move to `rung` changes: [`QuantizerGroup::dynamic`] for the dynamic step, every op else.
    pub fn ops_at(&self, rung: Precision) -> &[String] {
        match rung {
            Precision::Dynamic => &self.dynamic,
            _ => &self.nodes,
        }
    }
}

/// Partitions the placement into groups.
pub fn quantizer_groups(placement: &Placement) -> Vec<QuantizerGroup> {
    let index: BTreeMap<&str, usize> = placement
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut parent: Vec<usize> = (0..placement.nodes.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for quantizer in &placement.activations {
        let mut consumers = quantizer.consumers.iter().map(|c| index[c.as_str()]);
        if let Some(first) = consumers.next() {
            for other in consumers {
                let (a, b) = (find(&mut parent, first), find(&mut parent, other));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut by_root: BTreeMap<usize, QuantizerGroup> = BTreeMap::new();
    for (i, node) in placement.nodes.iter().enumerate() {
        let root = find(&mut parent, i);
        let group = by_root.entry(root).or_insert_with(|| QuantizerGroup {
            id: 0,
            nodes: Vec::new(),
            tensors: Vec::new(),
            dynamic: Vec::new(),
        });
        group.nodes.push(node.name.clone());
        if node.can_quantize_input_at_run_time() {
            group.dynamic.push(node.name.clone());
        }
        for (_, tensor) in &node.activations {
            if !group.tensors.contains(tensor) {
                group.tensors.push(tensor.clone());
            }
        }
    }
    by_root
        .into_values()
        .enumerate()
        .map(|(id, g)| QuantizerGroup { id, ..g })
        .collect()
}
