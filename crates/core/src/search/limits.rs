//! FP32 baselines and allowed drops, and the comparisons of model states the loop makes with them.

use crate::eval::Evaluation;
use crate::metric::confidence::IntervalParams;
use crate::metric::Metric;

/// Tolerance on drop comparisons: metric values are means of per-sample values, so equal models can differ in
/// the last bits.
pub(crate) const EPSILON: f64 = 1e-9;

/// FP32 baselines and allowed drops, per metric.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub baselines: Vec<f64>,
    pub allowed: Vec<f64>,
    /// The interval the target is judged on the upper end of (`None`: on the point estimate).
    pub confidence: Option<IntervalParams>,
}

impl Limits {
    /// Each metric's drop in `evaluation` (positive = worse than FP32).
    pub fn drops(&self, metrics: &[&dyn Metric], evaluation: &Evaluation) -> Vec<f64> {
        metrics
            .iter()
            .zip(&evaluation.metrics)
            .zip(&self.baselines)
            .map(|((metric, value), baseline)| metric.direction().drop(*baseline, value.value))
            .collect()
    }

    /// What each metric's limit is compared with: its drop, or with a confidence level the upper end of the
    /// drop's interval at that level from FP32's evaluation `reference` ([`Evaluation::drop_interval`]). A
    /// metric whose drop has no interval cannot be shown within any limit at a confidence level: its judged
    /// drop is infinite (validation refuses such metrics beforehand; this keeps a miss from passing silently).
    pub fn judged(
        &self,
        metrics: &[&dyn Metric],
        evaluation: &Evaluation,
        reference: Option<&Evaluation>,
    ) -> Vec<f64> {
        let (Some(asked), Some(reference)) = (self.confidence, reference) else {
            return self.drops(metrics, evaluation);
        };
        metrics
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                evaluation
                    .drop_interval(reference, i, metric.direction(), asked)
                    .map_or(f64::INFINITY, |interval| interval.high)
            })
            .collect()
    }

    /// Whether any model could meet the limits as they are judged: one identical to FP32 (`reference`) does
    /// on its point estimate, but at a confidence level its intervals keep a width that on a small set can
    /// exceed the allowed drop, and then no search can meet them.
    pub fn attainable(&self, metrics: &[&dyn Metric], reference: &Evaluation) -> bool {
        self.met(&self.judged(metrics, reference, Some(reference)))
    }

    /// How far each metric is beyond its limit (≤ 0: within).
    fn excess(&self, drops: &[f64]) -> Vec<f64> {
        drops
            .iter()
            .zip(&self.allowed)
            .map(|(d, a)| d - a)
            .collect()
    }

    /// Whether every metric is within its limit.
    pub fn met(&self, drops: &[f64]) -> bool {
        self.excess(drops).iter().all(|e| *e <= EPSILON)
    }

    /// The metric furthest beyond its limit (SPEC §4.8: the worse one first; ties to the first metric).
    pub fn controlled(&self, drops: &[f64]) -> usize {
        let excess = self.excess(drops);
        (0..excess.len())
            .max_by(|&a, &b| excess[a].total_cmp(&excess[b]).then(b.cmp(&a)))
            .unwrap_or(0)
    }

    /// A single number to compare states: the worst excess.
    pub fn worst(&self, drops: &[f64]) -> f64 {
        self.excess(drops)
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_furthest_beyond_its_limit_is_controlled() {
        let limits = Limits {
            baselines: vec![0.9, 0.1],
            allowed: vec![0.01, 0.05],
            confidence: None,
        };
        assert_eq!(limits.controlled(&[0.02, 0.07]), 1);
        assert_eq!(limits.controlled(&[0.05, 0.07]), 0);
        assert!(!limits.met(&[0.0, 0.06]));
        assert!(limits.met(&[0.01, 0.05]));
        assert_eq!(limits.worst(&[0.02, 0.07]), 0.07 - 0.05);
    }
}
