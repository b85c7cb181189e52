//! `tune_hyperparams`: before reverting anything, try other settings of the base algorithm.
//!
//! A small grid — range estimator (mean of min/max, global min/max, mean of quantiles) × fast bias
//! correction on/off × preset (performance, mixed) — each fully re-quantized and scored on the ranking subset.
//! The best variant replaces the current model only if it also lowers the drop on the full set; otherwise
//! nothing changes. Reverting costs ops in FP32; a better calibration costs nothing at inference time.

use crate::data::Dataset;
use crate::error::Result;
use crate::metric::Direction;
use crate::quant::RangeEstimator;
use crate::quantize::{Preset, QuantizationParams, QuantizedModel};
use crate::search::context::SearchContext;

/// The variants of `base` worth trying (the base itself excluded).
pub(super) fn grid(base: &QuantizationParams) -> Vec<QuantizationParams> {
    let estimators = [
        None,
        Some(RangeEstimator::min_max()),
        Some(RangeEstimator::mean_quantile()),
    ];
    let presets: &[Preset] = match base.preset {
        Preset::Performance => &[Preset::Performance, Preset::Mixed],
        Preset::Mixed => &[Preset::Mixed],
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

/// The best variant on `subset` by metric `metric`, if it beats the current model there.
#[allow(clippy::too_many_arguments)]
pub(super) fn best_variant(
    ctx: &mut SearchContext,
    fp32: &aquant_onnx::ModelProto,
    calibration: &dyn Dataset,
    base: &QuantizationParams,
    subset: &[usize],
    metric: usize,
    batch_size: usize,
) -> Result<Option<(QuantizationParams, QuantizedModel)>> {
    let direction = ctx.evaluator.metrics()[metric].direction();
    let oriented = |v: f64| match direction {
        Direction::HigherBetter => v,
        Direction::HigherWorse => -v,
    };
    let none = Default::default();
    let mut best_score =
        oriented(ctx.evaluate(&none, subset, "tuning: current")?.metrics[metric].value);
    let original = ctx.quantized.clone();
    let mut best = None;
    for (k, variant) in grid(base).into_iter().enumerate() {
        let model = ctx.quantize(fp32, calibration, &variant, batch_size)?;
        ctx.replace_model(model);
        let label = format!("tuning variant {}", k + 1);
        let score = oriented(ctx.evaluate(&none, subset, &label)?.metrics[metric].value);
        if score > best_score {
            best_score = score;
            best = Some((variant, ctx.quantized.clone()));
        }
    }
    ctx.replace_model(original);
    Ok(best)
}
