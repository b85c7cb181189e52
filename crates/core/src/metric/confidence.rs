//! How sure a measured drop is: its confidence interval, from the paired per-sample values of the FP32 model
//! and the quantized one on the same samples (issue #30).
//!
//! A drop measured on n samples moves by a whole sample, 1/n, when one prediction flips: on 300 images a drop of
//! 0.003 is one image. The interval says how far the drop on the population could be from the one measured.
//! Both models ran on the same samples, so the interval is a *paired* one: only the samples where they differ
//! carry information about the drop.
//! - Per-sample values that are all 0 or 1 (top-1, agreement): Newcombe's hybrid score interval for a
//!   difference of paired proportions (Newcombe 1998, method 10: Wilson intervals of the two accuracies,
//!   combined with the correlation of the pairs). Deterministic, and close to its nominal coverage even with few
//!   discordant pairs, where the normal approximation is not.
//! - Other per-sample values (a loss, an error): the percentile interval of a paired bootstrap of the mean
//!   difference, over seeded resamples of the samples.
//! - A dataset-level metric (mAP, F1) has no per-sample values, but it can be scored again on resamples of the
//!   samples: the percentile interval of the drop over seeded bootstrap resamples ([`resamples`]), each scored
//!   for both models ([`set_drop_interval`]). The same seed and sample order give both models the same
//!   resamples, so the drops pair up resample by resample.

use serde::Serialize;

use super::Direction;
use crate::numerics::SplitMix64;
use crate::params::AccuracyControlParams;

/// The confidence level of the reported intervals.
pub const LEVEL: f64 = 0.95;
/// The bootstrap's seed: the same report for the same run.
const BOOTSTRAP_SEED: u64 = 0x5EED;

/// How an interval was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// Newcombe's hybrid score interval for paired proportions (0/1 per-sample values).
    PairedScore,
    /// Percentile interval of a paired bootstrap of the mean difference.
    PairedBootstrap,
    /// Percentile interval of the drop of a dataset-level metric scored on both models' bootstrap resamples.
    SetBootstrap,
}

/// A confidence interval of a drop, in the metric's units (positive = worse than FP32).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DropInterval {
    /// Confidence level (0.95).
    pub level: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Paired samples it rests on.
    pub samples: usize,
    /// How it was computed.
    pub method: IntervalMethod,
}

impl DropInterval {
    /// "95% CI [-0.0037, 0.0037]", as the summary lines write it.
    pub fn summary(&self) -> String {
        format!(
            "{}% CI [{:.4}, {:.4}]",
            percent(self.level),
            self.low,
            self.high
        )
    }
}

/// A confidence level as a percentage without float noise: 0.95 → "95", 0.975 → "97.5".
pub fn percent(level: f64) -> String {
    ((level * 1000.0).round() / 10.0).to_string()
}

/// What an interval is asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalParams {
    /// Confidence level.
    pub level: f64,
    /// Resamples of a bootstrap interval (a non-binary metric's).
    pub resamples: usize,
}

impl IntervalParams {
    /// The intervals a run reports: at its confidence level (95 % without one), with its bootstrap resamples.
    pub fn of(control: &AccuracyControlParams) -> Self {
        IntervalParams {
            level: control.confidence.unwrap_or(LEVEL),
            resamples: control.bootstrap_samples,
        }
    }
}

/// The interval of the drop from `fp32` to `quantized`, paired sample by sample (`None` when there are no
/// pairs).
pub fn drop_interval(
    fp32: &[f64],
    quantized: &[f64],
    direction: Direction,
    asked: IntervalParams,
) -> Option<DropInterval> {
    let IntervalParams { level, resamples } = asked;
    let n = fp32.len().min(quantized.len());
    if n == 0 {
        return None;
    }
    // The drop is mean(better) − mean(worse) of the pairs ordered so: FP32 first for accuracy-like metrics.
    let (first, second) = match direction {
        Direction::HigherBetter => (&fp32[..n], &quantized[..n]),
        Direction::HigherWorse => (&quantized[..n], &fp32[..n]),
    };
    let binary = |v: &[f64]| v.iter().all(|&x| x == 0.0 || x == 1.0);
    let ((low, high), method) = if binary(first) && binary(second) {
        (
            paired_score(first, second, level),
            IntervalMethod::PairedScore,
        )
    } else {
        let seed = BOOTSTRAP_SEED;
        let bounds = paired_bootstrap(first, second, level, resamples, seed);
        (bounds, IntervalMethod::PairedBootstrap)
    };
    Some(DropInterval {
        level,
        low,
        high,
        samples: n,
        method,
    })
}

/// `count` seeded bootstrap resamples of `n` samples, as positions into them (drawn with replacement).
/// Deterministic: two evaluations of the same samples in the same order get the same resamples, which is what
/// pairs their scores in [`set_drop_interval`].
pub fn resamples(n: usize, count: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut random = SplitMix64::new(BOOTSTRAP_SEED);
    (0..if n == 0 { 0 } else { count }).map(move |_| (0..n).map(|_| random.below(n)).collect())
}

/// The interval at `level` of the drop from `fp32` to `quantized`, a dataset-level metric's values over the
/// same [`resamples`] of `samples` samples, resample by resample (`None` without resamples or when their counts
/// differ, which would unpair them).
pub fn set_drop_interval(
    fp32: &[f64],
    quantized: &[f64],
    samples: usize,
    direction: Direction,
    level: f64,
) -> Option<DropInterval> {
    if fp32.is_empty() || fp32.len() != quantized.len() {
        return None;
    }
    let mut drops: Vec<f64> = fp32
        .iter()
        .zip(quantized)
        .map(|(&f, &q)| direction.drop(f, q))
        .collect();
    drops.sort_by(f64::total_cmp);
    let (low, high) = percentiles(&drops, level);
    Some(DropInterval {
        level,
        low,
        high,
        samples,
        method: IntervalMethod::SetBootstrap,
    })
}

/// The two-sided percentile bounds at `level` of `sorted` values (at least one).
fn percentiles(sorted: &[f64], level: f64) -> (f64, f64) {
    let at = |q: f64| sorted[((q * sorted.len() as f64) as usize).min(sorted.len() - 1)];
    (at((1.0 - level) / 2.0), at((1.0 + level) / 2.0))
}

/// Newcombe's method 10 for `mean(x) − mean(y)`, `x` and `y` 0/1 values of the same samples.
fn paired_score(x: &[f64], y: &[f64], level: f64) -> (f64, f64) {
    let n = x.len() as f64;
    let count = |want_x: f64, want_y: f64| {
        x.iter()
            .zip(y)
            .filter(|(a, b)| **a == want_x && **b == want_y)
            .count() as f64
    };
    let (a, b, c, d) = (
        count(1.0, 1.0),
        count(1.0, 0.0),
        count(0.0, 1.0),
        count(0.0, 0.0),
    );
    let (p1, p2) = ((a + b) / n, (a + c) / n);
    let z = normal_quantile(0.5 + level / 2.0);
    let ((l1, u1), (l2, u2)) = (wilson(p1, n, z), wilson(p2, n, z));
    let denominator = ((a + b) * (c + d) * (a + c) * (b + d)).sqrt();
    let phi = if denominator > 0.0 {
        (a * d - b * c) / denominator
    } else {
        0.0
    };
    let spread = |e1: f64, e2: f64| (e1 * e1 - 2.0 * phi * e1 * e2 + e2 * e2).max(0.0).sqrt();
    let drop = p1 - p2;
    (
        drop - spread(p1 - l1, u2 - p2),
        drop + spread(u1 - p1, p2 - l2),
    )
}

/// Wilson's score interval of a proportion `p` of `n` at normal quantile `z`.
fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let center = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    (center - half, center + half)
}

/// The percentile interval at `level` of the mean of `x − y` over `resamples` seeded bootstrap resamples.
fn paired_bootstrap(x: &[f64], y: &[f64], level: f64, resamples: usize, seed: u64) -> (f64, f64) {
    let differences: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    let n = differences.len();
    let mut random = SplitMix64::new(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| differences[random.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    percentiles(&means, level)
}

/// The standard normal distribution's quantile at `p` in (0, 1) (Acklam's rational approximation, relative
/// error below 1.2e-9: ample for an interval's bounds).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
#[path = "confidence_tests.rs"]
mod tests;
