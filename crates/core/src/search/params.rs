//! Parameters of accuracy control (POT AccuracyAwareQuantization / NNCF `quantize_with_accuracy_control`).
//!
//! Field names are POT's config keys, NNCF's names are serde aliases; defaults are the references'. Like
//! [`crate::quantize::QuantizationParams`], this struct is the schema configs are read with.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quantize::RestoreMode;

/// How the allowed drop is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DropType {
    /// `baseline − value` (sign flipped for higher-worse metrics).
    #[default]
    Absolute,
    /// The absolute drop divided by `|baseline|`.
    Relative,
}

/// What ranks the groups of quantizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum RankingScore {
    /// The controlled metric when it has per-sample values; the output NMSE when it is dataset-level (mAP, F1,
    /// a validation function returning one number).
    #[default]
    Auto,
    /// The controlled metric on the ranking subset (it must have per-sample values).
    Metric,
    /// The normalized MSE between each candidate's outputs and FP32's on the ranking subset, lowest first;
    /// the ranking subset is the samples whose INT8 outputs depart from FP32's most (POT's and NNCF's way
    /// for metrics without per-sample values).
    Nmse,
}

/// One controlled metric (POT `metrics: [{name, baseline_value}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricTarget {
    /// Metric name.
    pub name: String,
    /// FP32 value to compare with; when every metric has one, the FP32 model is not evaluated on the full set.
    #[serde(default)]
    pub baseline_value: Option<f64>,
}

/// Everything accuracy control takes on top of the base algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccuracyControlParams {
    /// Allowed drop (NNCF `max_drop`).
    #[serde(alias = "max_drop")]
    pub maximal_drop: f64,
    /// Absolute or relative drop.
    pub drop_type: DropType,
    /// Samples used to rank groups; default `min(N, 300)`.
    pub ranking_subset_size: Option<usize>,
    /// Most groups reverted (NNCF `max_num_iterations`); default unlimited.
    #[serde(alias = "max_num_iterations")]
    pub max_iter_num: Option<usize>,
    /// Roll back a revert that increased the drop.
    pub use_prev_if_drop_increase: bool,
    /// If the performance preset fails, retry with the mixed preset before reverting.
    pub convert_to_mixed_preset: bool,
    /// Per-metric baselines.
    pub metrics: Vec<MetricTarget>,
    /// With given baselines: fraction of the set on which FP32 and INT8 are compared sample by sample.
    pub metric_subset_ratio: f64,
    /// Grid-search range estimators, bias correction and preset on the ranking subset before reverting.
    pub tune_hyperparams: bool,
    /// What a revert returns to FP32.
    pub restore_mode: RestoreMode,
    /// What ranks the groups: `auto` (the metric, or the output NMSE for a dataset-level metric), `metric`
    /// or `nmse`.
    pub ranking_score: RankingScore,
}

impl Default for AccuracyControlParams {
    fn default() -> Self {
        AccuracyControlParams {
            maximal_drop: 0.01,
            drop_type: DropType::Absolute,
            ranking_subset_size: None,
            max_iter_num: None,
            use_prev_if_drop_increase: true,
            convert_to_mixed_preset: false,
            metrics: Vec::new(),
            metric_subset_ratio: 0.5,
            tune_hyperparams: false,
            restore_mode: RestoreMode::ActivationsAndWeights,
            ranking_score: RankingScore::Auto,
        }
    }
}

impl AccuracyControlParams {
    /// Checks values no type can rule out.
    pub fn validate(&self) -> Result<()> {
        if !(self.maximal_drop.is_finite() && self.maximal_drop >= 0.0) {
            return Err(Error::Config(format!(
                "maximal_drop must be a number ≥ 0, not {}",
                self.maximal_drop
            )));
        }
        if self.ranking_subset_size == Some(0) {
            return Err(Error::Config(
                "ranking_subset_size must be at least 1".into(),
            ));
        }
        if !(self.metric_subset_ratio > 0.0 && self.metric_subset_ratio <= 1.0) {
            return Err(Error::Config(format!(
                "metric_subset_ratio must be in (0, 1], not {}",
                self.metric_subset_ratio
            )));
        }
        if let Some(t) = self
            .metrics
            .iter()
            .find(|t| t.baseline_value.is_some_and(|b| !b.is_finite()))
        {
            return Err(Error::Config(format!(
                "baseline_value of metric '{}' is not a number",
                t.name
            )));
        }
        Ok(())
    }

    /// The drop allowed for a metric whose baseline is `baseline`, in the metric's own units.
    pub fn allowed_drop(&self, baseline: f64) -> f64 {
        match self.drop_type {
            DropType::Absolute => self.maximal_drop,
            DropType::Relative => self.maximal_drop * baseline.abs(),
        }
    }
}
