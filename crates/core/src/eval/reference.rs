//! The FP32 outputs that metrics comparing with the FP32 model read, kept within a memory budget.
//!
//! Every evaluation of a comparing metric (agreement, output distance) needs the FP32 model's outputs of the
//! same samples. Computing them once per sample and keeping them is what makes a search cheap, but a
//! segmentation model's outputs over a large validation set would not fit in memory. So the cache holds at
//! most `budget` bytes: past it, the least recently used outputs are dropped (and computed again when needed),
//! except those the current chunk of samples is being scored against.

use std::collections::HashMap;
use std::sync::Arc;

use crate::tensor::Tensor;

struct Entry {
    outputs: Arc<Vec<Tensor>>,
    bytes: usize,
    last_use: u64,
}

/// FP32 outputs by sample index, least recently used dropped first beyond the budget.
pub(crate) struct ReferenceCache {
    entries: HashMap<usize, Entry>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl ReferenceCache {
    pub(crate) fn new(budget: usize) -> Self {
        ReferenceCache {
            entries: HashMap::new(),
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    /// The outputs of sample `index`, marked as just used.
    pub(crate) fn get(&mut self, index: usize) -> Option<Arc<Vec<Tensor>>> {
        self.clock += 1;
        let entry = self.entries.get_mut(&index)?;
        entry.last_use = self.clock;
        Some(entry.outputs.clone())
    }

    pub(crate) fn contains(&self, index: usize) -> bool {
        self.entries.contains_key(&index)
    }

    /// Samples held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds `outputs` (absent ones only), then drops the least recently used entries outside `pinned` until
    /// the cache is within its budget: the samples about to be scored stay even when they alone exceed it.
    pub(crate) fn insert(
        &mut self,
        outputs: impl IntoIterator<Item = (usize, Arc<Vec<Tensor>>)>,
        pinned: &[usize],
    ) {
        for (index, tensors) in outputs {
            if self.entries.contains_key(&index) {
                continue;
            }
            self.clock += 1;
            let bytes = tensors.iter().map(Tensor::byte_len).sum();
            self.bytes += bytes;
            let outputs = tensors;
            let last_use = self.clock;
            self.entries.insert(
                index,
                Entry {
                    outputs,
                    bytes,
                    last_use,
                },
            );
        }
        if self.bytes <= self.budget {
            return;
        }
        let mut evictable: Vec<(u64, usize)> = self
            .entries
            .iter()
            .filter(|(index, _)| !pinned.contains(index))
            .map(|(&index, entry)| (entry.last_use, index))
            .collect();
        evictable.sort_unstable();
        for (_, index) in evictable {
            if self.bytes <= self.budget {
                break;
            }
            let entry = self.entries.remove(&index).expect("listed above");
            self.bytes -= entry.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::ArrayD;

    use super::*;

    fn outputs(value: f32) -> Arc<Vec<Tensor>> {
        Arc::new(vec![Tensor::F32(ArrayD::from_elem(vec![1, 4], value))])
    }

    #[test]
    fn least_recently_used_outputs_are_dropped_beyond_the_budget_but_never_pinned_ones() {
        // 16 bytes per sample, room for two.
        let mut cache = ReferenceCache::new(32);
        cache.insert([(0, outputs(0.0)), (1, outputs(1.0))], &[0, 1]);
        assert_eq!(cache.bytes(), 32);
        assert!(cache.get(0).is_some()); // 1 is now the least recently used
        cache.insert([(2, outputs(2.0))], &[2]);
        assert!(cache.contains(0) && cache.contains(2) && !cache.contains(1));
        assert_eq!(cache.bytes(), 32);
        // A chunk larger than the budget stays whole while it is scored.
        cache.insert(
            [(3, outputs(3.0)), (4, outputs(4.0)), (5, outputs(5.0))],
            &[3, 4, 5],
        );
        assert!((3..6).all(|i| cache.contains(i)));
        assert!(!cache.contains(0) && !cache.contains(2));
        assert_eq!(cache.bytes(), 48);
        assert_eq!(cache.get(4).unwrap(), outputs(4.0));
    }
}
