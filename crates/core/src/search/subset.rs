//! The ranking subset: the samples on which quantization changed the metric most.
//!
//! Ranking every group on the full set is what makes the references slow; the samples whose per-sample value
//! did not move between FP32 and INT8 say little about which group to revert. The subset holds the
//! `size` samples with the largest |FP32 − INT8| per-sample difference, most changed first (ties by index,
//! as a stable sort gives), which also lets early-stopping evaluations see the decisive samples first.

/// Dataset indices of the ranking subset, most changed first.
///
/// `indices`, `reference` and `quantized` are aligned: sample `indices[k]` has FP32 value `reference[k]` and
/// INT8 value `quantized[k]`.
pub fn ranking_subset(
    indices: &[usize],
    reference: &[f64],
    quantized: &[f64],
    size: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..indices.len()).collect();
    order.sort_by(|&a, &b| {
        let da = (reference[a] - quantized[a]).abs();
        let db = (reference[b] - quantized[b]).abs();
        db.total_cmp(&da)
    });
    order.into_iter().take(size).map(|k| indices[k]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_changed_first_ties_by_index() {
        let indices = [10, 11, 12, 13, 14];
        let reference = [1.0, 1.0, 0.0, 1.0, 0.5];
        let quantized = [1.0, 0.0, 1.0, 1.0, 0.4];
        assert_eq!(
            ranking_subset(&indices, &reference, &quantized, 3),
            vec![11, 12, 14]
        );
        assert_eq!(
            ranking_subset(&indices, &reference, &quantized, 10).len(),
            5
        );
    }
}
