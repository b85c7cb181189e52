//! How an activation's range is estimated from calibration samples: POT's `range_estimator` block and NNCF's
//! named estimators, as the schema the config, the flags and the Python package read. The reductions that
//! compute a range live with the quantization math (`crate::numerics::TensorStats`).

use serde::{Deserialize, Serialize};

use crate::params::Mode;

/// The per-sample statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Largest magnitude.
    AbsMax,
    /// The `outlier_prob` (min side) or `1 − outlier_prob` (max side) quantile.
    Quantile,
    /// The `1 − outlier_prob` quantile of magnitudes.
    AbsQuantile,
}

/// How per-sample statistics combine over the calibration set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregator {
    /// Arithmetic mean.
    Mean,
    /// Largest.
    Max,
    /// Smallest.
    Min,
    /// Median.
    Median,
    /// Mean of the values inside the `[p, 1 − p]` quantiles (p = outlier_prob).
    MeanNoOutliers,
    /// Median of the values inside the `[p, 1 − p]` quantiles.
    MedianNoOutliers,
}

const fn default_outlier_prob() -> f64 {
    1e-4
}

/// One side of a range estimator (POT's `{"type": ..., "aggregator": ..., "outlier_prob": ...}` block).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimator {
    /// Per-sample statistic.
    #[serde(rename = "type")]
    pub statistic: Statistic,
    /// Aggregator over samples.
    pub aggregator: Aggregator,
    /// Outlier probability for quantiles and no-outlier aggregators.
    #[serde(default = "default_outlier_prob")]
    pub outlier_prob: f64,
}

impl Estimator {
    /// An estimator with the default outlier probability.
    pub const fn new(statistic: Statistic, aggregator: Aggregator) -> Self {
        Estimator {
            statistic,
            aggregator,
            outlier_prob: default_outlier_prob(),
        }
    }
}

/// How an activation's range is estimated (POT's `range_estimator` block).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeEstimator {
    /// Low end.
    pub min: Estimator,
    /// High end.
    pub max: Estimator,
}

impl RangeEstimator {
    /// Default for activations (NNCF `MEAN_MINMAX`, POT default), whatever the mode: symmetric quantization then
    /// uses the larger magnitude of the two ends.
    pub fn default_activations(_mode: Mode) -> Self {
        Self::mean_min_max()
    }

    /// NNCF's `MEAN_MINMAX`: the mean of per-sample minimums and maximums.
    pub const fn mean_min_max() -> Self {
        RangeEstimator {
            min: Estimator::new(Statistic::Min, Aggregator::Mean),
            max: Estimator::new(Statistic::Max, Aggregator::Mean),
        }
    }

    /// NNCF's `MINMAX`: the extreme values over the whole calibration set.
    pub const fn min_max() -> Self {
        RangeEstimator {
            min: Estimator::new(Statistic::Min, Aggregator::Min),
            max: Estimator::new(Statistic::Max, Aggregator::Max),
        }
    }

    /// NNCF's `MEAN_QUANTILE`: the mean of per-sample 1e-4 / 1−1e-4 quantiles, robust to outliers.
    pub const fn mean_quantile() -> Self {
        RangeEstimator {
            min: Estimator::new(Statistic::Quantile, Aggregator::Mean),
            max: Estimator::new(Statistic::Quantile, Aggregator::Mean),
        }
    }
}

/// A flag names one of NNCF's three estimators (`--range-estimator minmax`), so the parameter's own type is the
/// flag's value; a config can spell any other estimator, which has no name.
#[cfg(feature = "clap")]
impl clap::ValueEnum for RangeEstimator {
    fn value_variants<'a>() -> &'a [Self] {
        static NAMED: [RangeEstimator; 3] = [
            RangeEstimator::mean_min_max(),
            RangeEstimator::min_max(),
            RangeEstimator::mean_quantile(),
        ];
        &NAMED
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let (name, help) = match *self {
            e if e == Self::mean_min_max() => {
                ("mean_minmax", "Mean of per-sample minimums and maximums")
            }
            e if e == Self::min_max() => ("minmax", "Extreme values over the calibration set"),
            e if e == Self::mean_quantile() => (
                "mean_quantile",
                "Mean of per-sample 1e-4 and 1-1e-4 quantiles",
            ),
            _ => return None,
        };
        Some(clap::builder::PossibleValue::new(name).help(help))
    }
}
