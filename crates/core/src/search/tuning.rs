//! `tune_hyperparams`: before reverting anything, try other settings of the base algorithm.
//!
//! A small grid — range estimator (mean of min/max, global min/max, mean of quantiles) × fast bias
//! correction on/off × preset (performance, mixed) — each fully re-quantized and scored on the ranking subset.
//! The best variant replaces the current model only if it also lowers the drop on the full set; otherwise
//! nothing changes. Reverting costs ops in FP32; a better calibration costs nothing at inference time.

use crate::error::Result;
use crate::metric::{Direction, Metric};
use crate::numerics::RangeEstimator;
use crate::quantize::{Preset, QuantizationParams};
use crate::search::lab::{Bench, Models};

/// The variants of `base` worth trying (the base itself excluded).
pub(crate) fn grid(base: &QuantizationParams) -> Vec<QuantizationParams> {
    let estimators = [
        None,
        Some(RangeEstimator::min_max()),
        Some(RangeEstimator::mean_quantile()),
    ];
    let presets: &[Preset] = match base.preset {
        Preset::Performance => &[Preset::Performance, Preset::Mixed],
        Preset::Mixed => &[Preset::Mixed],
        Preset::Accuracy => &[Preset::Accuracy],
    };
    let mut variants = Vec::new();
    for estimator in estimators {
        for fast_bias_correction in [true, false] {
            for &preset in presets {
                let mut v = base.clone();
                v.activations.range_estimator = estimator;
                v.fast_bias_correction = fast_bias_correction;
                v.preset = preset;
                if v != *base {
                    variants.push(v);
                }
            }
        }
    }
    variants
}

/// The best variant of `base` on `subset` by `metric` (number `index`), if one beats `base` there. Leaves
/// `lab` holding the model quantized with `base`.
pub(crate) fn best_variant(
    lab: &mut (impl Bench + Models),
    metric: &dyn Metric,
    index: usize,
    base: &QuantizationParams,
    subset: &[usize],
) -> Result<Option<QuantizationParams>> {
    let oriented = |v: f64| match metric.direction() {
        Direction::HigherBetter => v,
        Direction::HigherWorse => -v,
    };
    let none = Default::default();
    let mut best_score =
        oriented(lab.evaluate(&none, subset, "tuning: current")?.metrics[index].value);
    let mut best = None;
    for (k, variant) in grid(base).into_iter().enumerate() {
        lab.requantize(&variant, None)?;
        let label = format!("tuning variant {}", k + 1);
        let score = oriented(lab.evaluate(&none, subset, &label)?.metrics[index].value);
        if score > best_score {
            best_score = score;
            best = Some(variant);
        }
    }
    lab.requantize(base, None)?;
    Ok(best)
}
