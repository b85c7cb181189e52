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
use crate::graph::Graph;
use crate::metric::Metric;
use crate::progress::Progress;
use crate::runner::{run_batches, InputBinding};
use crate::tensor::Tensor;

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Metric name.
    pub metric: String,
    /// Aggregate value over the evaluated samples.
    pub value: f64,
    /// Dataset indices evaluated, in order.
    pub indices: Vec<usize>,
    /// Per-sample values, aligned with `indices`.
    pub per_sample: Vec<f64>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs models over one dataset with one metric.
pub struct Evaluator<'a> {
    backend: &'a dyn Backend,
    dataset: &'a dyn Dataset,
    metric: &'a dyn Metric,
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
        metric: &'a dyn Metric,
        reference_model: Option<&'a ModelProto>,
        batch_size: usize,
        progress: &'a dyn Progress,
    ) -> Result<Self> {
        if dataset.is_empty() {
            return Err(Error::data("the dataset is empty"));
        }
        if metric.needs_reference() && reference_model.is_none() {
            return Err(Error::Metric {
                name: metric.name().into(),
                message: "compares with the FP32 model, but no reference model was given".into(),
            });
        }
        Ok(Evaluator {
            backend,
            dataset,
            metric,
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

    /// The metric.
    pub fn metric(&self) -> &dyn Metric {
        self.metric
    }

    /// Every sample index of the dataset.
    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.dataset.len()).collect()
    }

    /// Per-sample outputs and annotations of `model` on `indices`.
    pub fn outputs(&self, model: &ModelProto, indices: &[usize], label: &str) -> Result<Vec<(Vec<Tensor>, Annotation)>> {
        let binding = InputBinding::new(&Graph::new(model.clone())?)?;
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
    pub fn evaluate(&self, model: &ModelProto, indices: &[usize], label: &str) -> Result<Evaluation> {
        let start = Instant::now();
        if self.metric.needs_reference() {
            self.ensure_reference(indices)?;
        }
        let outputs = self.outputs(model, indices, label)?;
        let reference = self.reference_outputs.lock().expect("no panics while holding the lock");
        let per_sample = indices
            .iter()
            .zip(&outputs)
            .map(|(&i, (out, annotation))| {
                self.sample_value(i, out, annotation, reference.get(&i).map(Vec::as_slice))
            })
            .collect::<Result<Vec<f64>>>()?;
        Ok(Evaluation {
            metric: self.metric.name().into(),
            value: self.metric.aggregate(&per_sample),
            indices: indices.to_vec(),
            per_sample,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    fn sample_value(
        &self,
        index: usize,
        outputs: &[Tensor],
        annotation: &Annotation,
        reference: Option<&[Tensor]>,
    ) -> Result<f64> {
        let value = self.metric.sample_value(outputs, annotation, reference)?;
        if !value.is_finite() {
            return Err(Error::Metric {
                name: self.metric.name().into(),
                message: format!("returned {value} for sample {index}"),
            });
        }
        Ok(value)
    }

    fn ensure_reference(&self, indices: &[usize]) -> Result<()> {
        let missing: Vec<usize> = {
            let cache = self.reference_outputs.lock().expect("no panics while holding the lock");
            indices.iter().copied().filter(|i| !cache.contains_key(i)).collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let model = self.reference_model.expect("checked in Evaluator::new");
        let outputs = self.outputs(model, &missing, "FP32 reference")?;
        let mut cache = self.reference_outputs.lock().expect("no panics while holding the lock");
        cache.extend(missing.into_iter().zip(outputs.into_iter().map(|(o, _)| o)));
        Ok(())
    }
}
