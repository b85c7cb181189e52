//! Metrics: how good a model's outputs are, sample by sample or over a whole set.
//!
//! POT's Metric interface is stateful (`update`, `avg_value`, `reset`); aquant asks instead for the value of
//! *one* sample ([`SampleMetric::sample_value`]) and an aggregate over per-sample values
//! ([`SampleMetric::aggregate`]).
//! That is the same information, but it lets the evaluator cache per-sample values, evaluate any subset, run
//! samples in parallel, pick the ranking subset by per-sample change, and stop early when the remaining
//! samples cannot change a decision — none of which a stateful accumulator allows.
//!
//! A metric may compare with the FP32 model's outputs for the same sample (`needs_reference`): agreement, MSE
//! and NMSE do; the evaluator then supplies them.
//!
//! Some metrics are not a mean of per-sample values — mAP, macro-F1, AUROC. Such a *dataset-level* metric
//! implements [`SetMetric`] instead of [`SampleMetric`] (its [`Metric::scoring`] says which); the evaluator then
//! hands it every sample's outputs at once, and the search ranks groups by the output NMSE against FP32 (as POT and NNCF do),
//! using the metric itself only for full evaluations.

mod as_set;
mod builtin;
mod classification;
pub mod confidence;
mod detection;

use aquant_onnx::ModelProto;

use crate::data::Annotation;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

pub use as_set::AsSet;
pub use builtin::{argmax, Agreement, FnMetric, OutputError, TopK};
pub use classification::{Auroc, F1Macro};
pub use detection::MeanAveragePrecision;

/// Whether larger values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Accuracy-like: a drop is `baseline - value`.
    HigherBetter,
    /// Error-like: a drop is `value - baseline`.
    HigherWorse,
}

impl Direction {
    /// How much `value` is worse than `baseline` (positive = worse).
    pub fn drop(self, baseline: f64, value: f64) -> f64 {
        match self {
            Direction::HigherBetter => baseline - value,
            Direction::HigherWorse => value - baseline,
        }
    }
}

/// Whether `drop` is within `allowed`, up to the rounding of a mean of per-sample values: the one comparison
/// every summary, page and confirmation makes.
pub fn within_limit(drop: f64, allowed: f64) -> bool {
    drop <= allowed + 1e-12
}

/// `≤` for a drop within `allowed` ([`within_limit`]), `>` otherwise: how summaries write the comparison.
pub fn limit_sign(drop: f64, allowed: f64) -> &'static str {
    if within_limit(drop, allowed) {
        "≤"
    } else {
        ">"
    }
}

/// One sample's outputs, as a dataset-level metric receives them.
#[derive(Debug, Clone)]
pub struct SampleOutputs {
    /// Dataset index of the sample.
    pub index: usize,
    /// The model's outputs for the sample (leading axis of length 1).
    pub outputs: Vec<Tensor>,
    /// The sample's ground truth.
    pub annotation: Annotation,
}

/// A dataset-level metric's result over a set.
#[derive(Debug, Clone, PartialEq)]
pub struct SetValue {
    /// The metric over the whole set.
    pub value: f64,
    /// One value per sample, in the order of the samples given, when the metric can say them (NNCF's
    /// `validation_fn` returning `(value, per_sample_values)`): the search then picks its ranking subset and
    /// ranks with them, as for a per-sample metric, though on whole-subset evaluations.
    pub per_sample: Option<Vec<f64>>,
}

impl From<f64> for SetValue {
    fn from(value: f64) -> Self {
        SetValue {
            value,
            per_sample: None,
        }
    }
}

/// The model a dataset-level metric's samples came from, for a metric that runs it itself (NNCF's
/// `validation_fn` receives the model). The evaluator implements it ([`crate::EvaluatedModel`]); a metric
/// sees only these two methods, so metrics do not depend on the evaluator.
pub trait RunnableModel {
    /// The model itself.
    fn proto(&self) -> &ModelProto;

    /// Runs the model on one batch of inputs named as in a [`Sample`](crate::Sample) (the sole input may be
    /// named [`crate::data::SOLE_INPUT`]); returns its outputs in the model's output order.
    fn run(&self, inputs: Vec<(String, Tensor)>) -> Result<Vec<Tensor>>;
}

/// A metric: what it is called, which way is better, POT's kind, and how it is computed ([`Metric::scoring`]):
/// a value per sample ([`SampleMetric`]) or one value over the whole set ([`SetMetric`]). Each way is its own
/// trait, so a metric implements only what it computes.
pub trait Metric: Send + Sync {
    /// Name shown in reports ("top1").
    fn name(&self) -> &str;

    /// Whether higher is better.
    fn direction(&self) -> Direction {
        Direction::HigherBetter
    }

    /// POT's metric `type` attribute ("accuracy", "error"…).
    fn kind(&self) -> &str {
        "accuracy"
    }

    /// How this metric is computed: `Scoring::PerSample(self)` or `Scoring::WholeSet(self)`.
    fn scoring(&self) -> Scoring<'_>;
}

/// How a metric is computed ([`Metric::scoring`]).
#[derive(Clone, Copy)]
pub enum Scoring<'m> {
    /// A value per sample, aggregated over a set.
    PerSample(&'m dyn SampleMetric),
    /// One value over the whole set (a dataset-level metric: F1, AUROC, mAP, NNCF's `validation_fn`).
    WholeSet(&'m dyn SetMetric),
}

impl dyn Metric + '_ {
    /// Whether the metric has a value per sample.
    pub fn per_sample(&self) -> bool {
        matches!(self.scoring(), Scoring::PerSample(_))
    }

    /// Whether the drop of this metric between two models can be given a confidence interval
    /// ([`confidence`]): from per-sample values, or for a dataset-level metric from bootstrap resamples it can
    /// be scored on ([`SetMetric::bootstrappable`]).
    pub fn has_drop_interval(&self) -> bool {
        match self.scoring() {
            Scoring::PerSample(_) => true,
            Scoring::WholeSet(set_metric) => set_metric.bootstrappable(),
        }
    }

    /// Whether a sample's value needs the FP32 model's outputs for the same sample (never for a whole-set
    /// metric).
    pub fn needs_reference(&self) -> bool {
        match self.scoring() {
            Scoring::PerSample(metric) => metric.needs_reference(),
            Scoring::WholeSet(_) => false,
        }
    }
}

/// A metric with a value per sample, aggregated over a set (the mean by default).
pub trait SampleMetric: Send + Sync {
    /// True when [`SampleMetric::sample_value`] needs the FP32 model's outputs for the same sample.
    fn needs_reference(&self) -> bool {
        false
    }

    /// Bounds of one sample's value, when known (e.g. `(0, 1)` for accuracy). When the aggregate is the mean
    /// ([`SampleMetric::aggregate_is_mean`]), ranking uses them to stop evaluating a candidate once the
    /// remaining samples cannot change its rank.
    fn sample_bounds(&self) -> Option<(f64, f64)> {
        None
    }

    /// The value of one sample. `outputs` are the model's outputs for that sample (leading axis of length 1);
    /// `reference` the FP32 model's, when [`SampleMetric::needs_reference`].
    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        reference: Option<&[Tensor]>,
    ) -> Result<f64>;

    /// The metric over a set of samples; the mean by default. Groups are ranked and the run is judged on
    /// this value. A metric that overrides it must also override [`SampleMetric::aggregate_is_mean`].
    fn aggregate(&self, values: &[f64]) -> f64 {
        mean(values)
    }

    /// Whether [`SampleMetric::aggregate`] is the mean of the per-sample values (true unless overridden). Only
    /// then do [`SampleMetric::sample_bounds`] bound the aggregate of a partly evaluated set, so ranking stops
    /// early only for such metrics; any other aggregate is ranked on complete evaluations.
    fn aggregate_is_mean(&self) -> bool {
        true
    }
}

/// The mean of `values` (NaN for none): the default aggregate of per-sample values.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// A metric over a whole set of samples (a dataset-level metric).
pub trait SetMetric: Send + Sync {
    /// The metric over `samples`, in the order evaluated; `model` is the model that produced them, for a
    /// metric that runs it itself (a validation function given the model).
    ///
    /// A sample may occur more than once: a bootstrap interval of the metric's drop
    /// ([`confidence`]) scores resamples drawn with replacement.
    fn set_value(&self, samples: &[&SampleOutputs], model: &dyn RunnableModel) -> Result<SetValue>;

    /// Whether the metric may be scored on resamples of the evaluated samples, once per resample, for a bootstrap
    /// interval of its drop: true for a metric computed from the samples' outputs alone. A metric that runs the
    /// model itself (NNCF's `validation_fn`) or calls user code per sample says false: two thousand calls would
    /// cost more than the search, and its drop then has no interval.
    fn bootstrappable(&self) -> bool {
        true
    }
}

/// The built-in metric called `name`: `top1`, `top5` (any `topK`), `agreement`, `mse`, `nmse`, and the
/// dataset-level `f1_macro`, `auroc`, `map50`, `map50_95`; with the prefix `dataset:` (`dataset:top1`), a
/// per-sample metric as a dataset-level one ([`AsSet`]).
pub fn builtin(name: &str) -> Result<Box<dyn Metric>> {
    if let Some(inner) = name.strip_prefix(as_set::PREFIX) {
        return Ok(Box::new(AsSet::new(builtin(inner)?)?));
    }
    let metric: Box<dyn Metric> = match name {
        "agreement" => Box::new(Agreement),
        "mse" => Box::new(OutputError::mse()),
        "nmse" => Box::new(OutputError::nmse()),
        "f1_macro" => Box::new(F1Macro),
        "auroc" => Box::new(Auroc),
        "map50" => Box::new(MeanAveragePrecision::map50()),
        "map50_95" => Box::new(MeanAveragePrecision::map50_95()),
        _ => match name
            .strip_prefix("top")
            .and_then(|k| k.parse::<usize>().ok())
        {
            Some(k) if k > 0 => Box::new(TopK::new(k)),
            _ => {
                return Err(Error::Config(format!(
                    "unknown metric '{name}' (built-ins: top1, top5, topK, agreement, mse, nmse, f1_macro, auroc, map50, map50_95; dataset:NAME for NAME as a dataset-level metric)"
                )))
            }
        },
    };
    Ok(metric)
}
