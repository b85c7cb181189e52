//! Evaluating a model on a dataset with a metric.
//!
//! The evaluator keeps what does not change between the evaluations of a run: the prepared input binding and,
//! for metrics that compare with the FP32 model, the FP32 outputs of every sample it has seen (computed once,
//! on first need). Results are per sample, so callers can cache them, compare models sample by sample and
//! evaluate any subset.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::{Annotation, Dataset};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::progress::Progress;
use crate::runner::{run_batches, InputBinding};
use crate::tensor::Tensor;

/// One metric's result in an evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricValue {
    /// Metric name.
    pub name: String,
    /// Aggregate value over the evaluated samples.
    pub value: f64,
    /// Per-sample values, aligned with [`Evaluation::indices`].
    pub per_sample: Vec<f64>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Dataset indices evaluated, in order.
    pub indices: Vec<usize>,
    /// One entry per metric, in the evaluator's metric order.
    pub metrics: Vec<MetricValue>,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl Evaluation {
    /// The first metric's aggregate value.
    pub fn value(&self) -> f64 {
        self.metrics[0].value
    }
}

/// Runs models over one dataset with one or more metrics.
pub struct Evaluator<'a> {
    backend: &'a dyn Backend,
    dataset: &'a dyn Dataset,
    metrics: Vec<&'a dyn Metric>,
    batch_size: usize,
    progress: &'a dyn Progress,
    reference_model: Option<&'a ModelProto>,
    reference_outputs: Mutex<HashMap<usize, Vec<Tensor>>>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator; `reference_model` (the FP32 model) is required by metrics that compare with it.
    pub fn new(
        backend: &'a dyn Backend,
        dataset: &'a dyn Dataset,
        metrics: Vec<&'a dyn Metric>,
        reference_model: Option<&'a ModelProto>,
        batch_size: usize,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        if dataset.is_empty() {
            return Err(Error::data("the dataset is empty"));
        }
        if metrics.is_empty() {
            return Err(Error::Config("no metric given".into()));
        }
        if let Some(metric) = metrics.iter().find(|m| m.needs_reference()) {
            if reference_model.is_none() {
                return Err(Error::Metric {
                    name: metric.name().into(),
                    message: "compares with the FP32 model, but no reference model was given"
                        .into(),
                });
            }
        }
        Ok(Evaluator {
            backend,
            dataset,
            metrics,
            batch_size: batch_size.max(1),
            progress,
            reference_model,
            reference_outputs: Mutex::new(HashMap::new()),
        })
    }

    /// The dataset.
    pub fn dataset(&self) -> &dyn Dataset {
        self.dataset
    }

    /// The metrics.
    pub fn metrics(&self) -> &[&'a dyn Metric] {
        &self.metrics
    }

    /// The FP32 outputs cached for sample `index`, if any.
    pub fn reference_outputs(&self, index: usize) -> Option<Vec<Tensor>> {
        self.reference_outputs
            .lock()
            .expect("no panics while holding the lock")
            .get(&index)
            .cloned()
    }

    /// Every sample index of the dataset.
    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.dataset.len()).collect()
    }

    /// Per-sample outputs and annotations of `model` on `indices`.
    pub fn outputs(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Vec<(Vec<Tensor>, Annotation)>> {
        let binding = InputBinding::from_model(model)?;
        let session = self.backend.prepare(model, &[])?;
        let mut outputs = Vec::with_capacity(indices.len());
        self.progress.start(label, indices.len() as u64);
        let result = run_batches(
            session.as_ref(),
            &binding,
            self.dataset,
            indices,
            self.batch_size,
            self.progress,
            |batch, tensors, annotations| {
                for (row, annotation) in (0..batch.len()).zip(annotations) {
                    outputs.push((tensors.iter().map(|t| t.row(row)).collect(), annotation));
                }
                Ok(())
            },
        );
        self.progress.finish();
        result?;
        Ok(outputs)
    }

    /// Evaluates `model` on `indices`.
    pub fn evaluate(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let start = Instant::now();
        if self.metrics.iter().any(|m| m.needs_reference()) {
            self.ensure_reference(indices)?;
        }
        let outputs = self.outputs(model, indices, label)?;
        let mut evaluation = self.score(indices, &outputs)?;
        evaluation.seconds = start.elapsed().as_secs_f64();
        Ok(evaluation)
    }

    /// Scores per-sample outputs (as returned by [`Evaluator::outputs`] for `indices`) with every metric.
    pub fn score(
        &self,
        indices: &[usize],
        outputs: &[(Vec<Tensor>, Annotation)],
    ) -> Result<Evaluation> {
        if self.metrics.iter().any(|m| m.needs_reference()) {
            self.ensure_reference(indices)?;
        }
        let reference = self
            .reference_outputs
            .lock()
            .expect("no panics while holding the lock");
        let metrics = self
            .metrics
            .iter()
            .map(|metric| {
                let per_sample = indices
                    .iter()
                    .zip(outputs)
                    .map(|(&i, (out, annotation))| {
                        sample_value(
                            *metric,
                            i,
                            out,
                            annotation,
                            reference.get(&i).map(Vec::as_slice),
                        )
                    })
                    .collect::<Result<Vec<f64>>>()?;
                Ok(MetricValue {
                    name: metric.name().into(),
                    value: metric.aggregate(&per_sample),
                    per_sample,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Evaluation {
            indices: indices.to_vec(),
            metrics,
            seconds: 0.0,
        })
    }

    fn ensure_reference(&self, indices: &[usize]) -> Result<()> {
        let missing: Vec<usize> = {
            let cache = self
                .reference_outputs
                .lock()
                .expect("no panics while holding the lock");
            indices
                .iter()
                .copied()
                .filter(|i| !cache.contains_key(i))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let model = self.reference_model.expect("checked in Evaluator::new");
        let outputs = self.outputs(model, &missing, "FP32 reference")?;
        let mut cache = self
            .reference_outputs
            .lock()
            .expect("no panics while holding the lock");
        cache.extend(missing.into_iter().zip(outputs.into_iter().map(|(o, _)| o)));
        Ok(())
    }
}

/// One sample's value, rejecting non-finite results (a NaN would silently poison every comparison).
fn sample_value(
    metric: &dyn Metric,
    index: usize,
    outputs: &[Tensor],
    annotation: &Annotation,
    reference: Option<&[Tensor]>,
) -> Result<f64> {
    let value = metric.sample_value(outputs, annotation, reference)?;
    if !value.is_finite() {
        return Err(Error::Metric {
            name: metric.name().into(),
            message: format!("returned {value} for sample {index}"),
        });
    }
    Ok(value)
}
