//! Scoring an evaluation's samples: per-sample values as samples stream, dataset-level metrics over the kept
//! samples, and user metric code guarded (a panic or a non-finite value is one [`Error::Metric`]).

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{EvaluatedModel, Evaluation, MetricValue};
use crate::data::Annotation;
use crate::error::{Error, Result};
use crate::metric::confidence;
use crate::metric::{mean, Metric, SampleMetric, SampleOutputs, Scoring, SetMetric, SetValue};
use crate::tensor::Tensor;

/// An evaluation's results as samples come in: per-sample metrics' values, and the samples a dataset-level
/// metric needs all at once (kept only when there is such a metric), scored on `resamples` bootstrap resamples
/// of them too when asked (see [`MetricValue::resampled`]).
pub(super) struct Scores<'m> {
    metrics: &'m [&'m dyn Metric],
    per_sample: Vec<Vec<f64>>,
    kept: Vec<SampleOutputs>,
    keep_samples: bool,
    resamples: usize,
}

impl<'m> Scores<'m> {
    pub(super) fn new(metrics: &'m [&'m dyn Metric], samples: usize, resamples: usize) -> Self {
        let keep_samples = metrics.iter().any(|m| !m.per_sample());
        Scores {
            metrics,
            per_sample: metrics
                .iter()
                .map(|m| Vec::with_capacity(if m.per_sample() { samples } else { 0 }))
                .collect(),
            kept: Vec::with_capacity(if keep_samples { samples } else { 0 }),
            keep_samples,
            resamples,
        }
    }

    pub(super) fn add(
        &mut self,
        index: usize,
        outputs: Vec<Tensor>,
        annotation: Annotation,
        reference: Option<&[Tensor]>,
    ) -> Result<()> {
        for (metric, values) in self.metrics.iter().zip(&mut self.per_sample) {
            if metric.per_sample() {
                values.push(sample_value(
                    *metric,
                    index,
                    &outputs,
                    &annotation,
                    reference,
                )?);
            }
        }
        if self.keep_samples {
            self.kept.push(SampleOutputs {
                index,
                outputs,
                annotation,
            });
        }
        Ok(())
    }

    /// Every metric's value: the aggregate of its per-sample values, or its value over the kept samples.
    pub(super) fn finish(self, indices: &[usize], model: &EvaluatedModel) -> Result<Evaluation> {
        // In dataset-index order: the order resamples are drawn in, the same for every model.
        let mut kept: Vec<&SampleOutputs> = self.kept.iter().collect();
        kept.sort_by_key(|s| s.index);
        let metrics = self
            .metrics
            .iter()
            .zip(self.per_sample)
            .map(|(metric, per_sample)| match metric.scoring() {
                Scoring::PerSample(_) => per_sample_value(*metric, per_sample),
                Scoring::WholeSet(set_metric) => {
                    let set = set_value(*metric, set_metric, &kept, model)?;
                    Ok(MetricValue {
                        name: metric.name().into(),
                        value: set.value,
                        per_sample: set.per_sample.unwrap_or_default(),
                        resampled: resampled(*metric, set_metric, &kept, model, self.resamples),
                    })
                }
            })
            .collect::<Result<_>>()?;
        Ok(Evaluation {
            indices: indices.to_vec(),
            metrics,
            seconds: 0.0,
        })
    }
}

/// The dataset-level `metric` over `count` bootstrap resamples of `samples` ([`confidence::resamples`]); none
/// when the metric is not [`SetMetric::bootstrappable`], or when a resample cannot be scored (an AUROC resample
/// with one class): an interval from the rest would be biased toward resamples the metric likes.
fn resampled(
    metric: &dyn Metric,
    set_metric: &dyn SetMetric,
    samples: &[&SampleOutputs],
    model: &EvaluatedModel,
    count: usize,
) -> Vec<f64> {
    if !set_metric.bootstrappable() {
        return Vec::new();
    }
    let mut resample = Vec::with_capacity(samples.len());
    let scored = confidence::resamples(samples.len(), count).map(|positions| {
        resample.clear();
        resample.extend(positions.into_iter().map(|p| samples[p]));
        set_value(metric, set_metric, &resample, model).map(|set| set.value)
    });
    scored.collect::<Result<Vec<f64>>>().unwrap_or_default()
}

/// A dataset-level metric's value over `samples`, rejecting non-finite results as [`sample_value`] does, and
/// per-sample values that do not match the samples.
fn set_value(
    metric: &dyn Metric,
    set_metric: &dyn SetMetric,
    samples: &[&SampleOutputs],
    model: &EvaluatedModel,
) -> Result<SetValue> {
    let set = guarded(metric, "set_value", || set_metric.set_value(samples, model))?;
    let fail = |message: String| {
        Err(Error::Metric {
            name: metric.name().into(),
            message,
        })
    };
    if !set.value.is_finite() {
        return fail(format!(
            "returned {} over {} samples",
            set.value,
            samples.len()
        ));
    }
    if let Some(values) = &set.per_sample {
        if values.len() != samples.len() {
            return fail(format!(
                "returned {} per-sample values for {} samples",
                values.len(),
                samples.len()
            ));
        }
        if let Some(position) = values.iter().position(|v| !v.is_finite()) {
            let index = samples[position].index;
            return fail(format!("returned {} for sample {index}", values[position]));
        }
    }
    Ok(set)
}

/// Runs user metric code, turning a panic into an [`Error::Metric`].
fn guarded<T>(metric: &dyn Metric, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(Error::Metric {
            name: metric.name().into(),
            message: format!("panicked in {what}: {message}"),
        })
    })
}

/// A per-sample metric's result from its values: their aggregate, beside them.
pub(crate) fn per_sample_value(metric: &dyn Metric, per_sample: Vec<f64>) -> Result<MetricValue> {
    Ok(MetricValue {
        name: metric.name().into(),
        value: aggregate(metric, &per_sample)?,
        per_sample,
        resampled: Vec::new(),
    })
}

/// The metric's aggregate of per-sample `values` (a panic in it is an [`Error::Metric`]). A whole-set metric
/// that gives per-sample values (NNCF's `validation_fn` returning them) is ranked by their mean.
pub(crate) fn aggregate(metric: &dyn Metric, values: &[f64]) -> Result<f64> {
    match metric.scoring() {
        Scoring::PerSample(per_sample) => {
            guarded(metric, "aggregate", || Ok(per_sample.aggregate(values)))
        }
        Scoring::WholeSet(_) => Ok(mean(values)),
    }
}

/// The per-sample side of `metric`; a whole-set metric has none to ask (the evaluator never does).
fn sample_side(metric: &dyn Metric) -> Result<&dyn SampleMetric> {
    match metric.scoring() {
        Scoring::PerSample(per_sample) => Ok(per_sample),
        Scoring::WholeSet(_) => Err(Error::Metric {
            name: metric.name().into(),
            message: "a dataset-level metric has no per-sample values".into(),
        }),
    }
}

/// One sample's value, rejecting non-finite results (a NaN would silently poison every comparison).
pub(super) fn sample_value(
    metric: &dyn Metric,
    index: usize,
    outputs: &[Tensor],
    annotation: &Annotation,
    reference: Option<&[Tensor]>,
) -> Result<f64> {
    let per_sample = sample_side(metric)?;
    let value = guarded(metric, &format!("sample_value (sample {index})"), || {
        per_sample.sample_value(outputs, annotation, reference)
    })?;
    if !value.is_finite() {
        return Err(Error::Metric {
            name: metric.name().into(),
            message: format!("returned {value} for sample {index}"),
        });
    }
    Ok(value)
}
