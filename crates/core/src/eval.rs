//! Evaluating a model on a dataset with a metric.
//!
//! The evaluator keeps what does not change between the evaluations of a run: the prepared input binding and,
//! for metrics that compare with the FP32 model, the FP32 outputs of every sample it has seen (computed once,
//! on first need). Results are per sample, so callers can cache them, compare models sample by sample and
//! evaluate any subset.
//!
//! Metrics are user code: they never run under the evaluator's lock (the FP32 outputs they compare with are
//! taken out first, shared), and a metric that panics becomes one [`Error::Metric`], not a crash of the run.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use aquant_onnx::ModelProto;

use crate::backend::{Backend, Session};
use crate::data::{Annotation, Dataset};
use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::profile::Profile;
use crate::progress::Progress;
use crate::runner::{run_batches, Flow, InputBinding};
use crate::tensor::Tensor;

/// One metric's result in an evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricValue {
    /// Metric name.
    pub name: String,
    /// Aggregate value over the evaluated samples.
    pub value: f64,
    /// Per-sample values, aligned with [`Evaluation::indices`].
    pub per_sample: Vec<f64>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    reference_outputs: Mutex<HashMap<usize, Arc<Vec<Tensor>>>>,
    samples_inferred: AtomicUsize,
    profile: Arc<Profile>,
    interrupt: Option<&'a AtomicBool>,
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
            samples_inferred: AtomicUsize::new(0),
            profile: Arc::default(),
            interrupt: None,
        })
    }

    /// The engine models run on.
    pub fn backend(&self) -> &'a dyn Backend {
        self.backend
    }

    /// Runs later evaluations on `backend` (cached FP32 outputs are kept: FP32 is the same model).
    pub fn set_backend(&mut self, backend: &'a dyn Backend) {
        self.backend = backend;
    }

    /// The interrupt flag, if any.
    pub fn interrupt(&self) -> Option<&'a AtomicBool> {
        self.interrupt
    }

    /// The FP32 output cache. No user code runs while it is held, so it is never poisoned; should a bug
    /// poison it anyway, its content is still whole (entries are inserted whole).
    fn reference_cache(&self) -> MutexGuard<'_, HashMap<usize, Arc<Vec<Tensor>>>> {
        self.reference_outputs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes evaluations stop with [`Error::Interrupted`] once `flag` is set (checked between batches).
    pub fn with_interrupt(mut self, flag: Option<&'a AtomicBool>) -> Self {
        self.interrupt = flag;
        self
    }

    /// [`Error::Interrupted`] once the interrupt flag is set.
    pub fn check_interrupt(&self) -> Result<()> {
        match self.interrupt {
            Some(flag) if flag.load(Ordering::Relaxed) => Err(Error::Interrupted),
            _ => Ok(()),
        }
    }

    /// Prepares `model` on the engine, timing it and its runs in [`Evaluator::profile`].
    pub fn prepare(
        &self,
        model: &ModelProto,
        extra_outputs: &[String],
    ) -> Result<Arc<dyn Session>> {
        self.profile
            .prepare(|| self.backend.prepare(model, extra_outputs))
    }

    /// Where the time of this evaluator's work went.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The dataset.
    pub fn dataset(&self) -> &dyn Dataset {
        self.dataset
    }

    /// Where progress is reported.
    pub fn progress(&self) -> &'a dyn Progress {
        self.progress
    }

    /// The metrics.
    pub fn metrics(&self) -> &[&'a dyn Metric] {
        &self.metrics
    }

    /// The FP32 outputs cached for sample `index`, if any.
    pub fn reference_outputs(&self, index: usize) -> Option<Vec<Tensor>> {
        self.shared_reference(index).map(|r| r.as_ref().clone())
    }

    fn shared_reference(&self, index: usize) -> Option<Arc<Vec<Tensor>>> {
        self.reference_cache().get(&index).cloned()
    }

    /// Every sample index of the dataset.
    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.dataset.len()).collect()
    }

    /// Runs `model` over `indices`, handing each sample's outputs to `on_sample` in order, until it answers
    /// [`Flow::Stop`]. Returns the number of samples run.
    fn stream(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
        mut on_sample: impl FnMut(usize, Vec<Tensor>, Annotation) -> Result<Flow>,
    ) -> Result<usize> {
        let binding = InputBinding::from_model(model)?;
        let session = self.prepare(model, &[])?;
        self.progress.start(label, indices.len() as u64);
        let result = run_batches(
            session.as_ref(),
            &binding,
            self.dataset,
            indices,
            self.batch_size,
            self.progress,
            |batch, tensors, annotations| {
                self.check_interrupt()?;
                let mut flow = Flow::Continue;
                for ((row, annotation), &index) in (0..batch.len()).zip(annotations).zip(batch) {
                    if on_sample(
                        index,
                        tensors.iter().map(|t| t.row(row)).collect(),
                        annotation,
                    )? == Flow::Stop
                    {
                        flow = Flow::Stop;
                    }
                }
                Ok(flow)
            },
        );
        self.progress.finish();
        let run = result?;
        self.samples_inferred.fetch_add(run, Ordering::Relaxed);
        Ok(run)
    }

    /// Per-sample outputs and annotations of `model` on `indices`.
    pub fn outputs(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Vec<(Vec<Tensor>, Annotation)>> {
        let mut outputs = Vec::with_capacity(indices.len());
        self.stream(model, indices, label, |_, tensors, annotation| {
            outputs.push((tensors, annotation));
            Ok(Flow::Continue)
        })?;
        Ok(outputs)
    }

    /// Per-sample values of metric number `metric` on a prefix of `indices`: after each sample,
    /// `keep_going(values so far)` decides whether to continue (checked once per wave of parallel batches, so a
    /// few more samples than needed may be returned).
    pub fn evaluate_while(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
        metric: usize,
        mut keep_going: impl FnMut(&[f64]) -> bool,
    ) -> Result<Vec<f64>> {
        if self.metrics[metric].needs_reference() {
            self.ensure_reference(indices)?;
        }
        let mut values = Vec::with_capacity(indices.len());
        self.stream(model, indices, label, |index, outputs, annotation| {
            values.push(self.sample_value(metric, index, &outputs, &annotation)?);
            Ok(if keep_going(&values) {
                Flow::Continue
            } else {
                Flow::Stop
            })
        })?;
        Ok(values)
    }

    /// Metric number `metric` on one sample's outputs (the FP32 reference must be cached when it needs it).
    pub(crate) fn sample_value(
        &self,
        metric: usize,
        index: usize,
        outputs: &[Tensor],
        annotation: &Annotation,
    ) -> Result<f64> {
        let metric = self.metrics[metric];
        let reference = if metric.needs_reference() {
            self.shared_reference(index)
        } else {
            None
        };
        sample_value(
            metric,
            index,
            outputs,
            annotation,
            reference.as_ref().map(|r| r.as_slice()),
        )
    }

    /// Records `samples` runs made outside [`Evaluator::stream`] (partial models included).
    pub(crate) fn count_inferred(&self, samples: usize) {
        self.samples_inferred.fetch_add(samples, Ordering::Relaxed);
    }

    /// Samples run through the engine by this evaluator so far (FP32 reference runs included).
    pub fn samples_inferred(&self) -> usize {
        self.samples_inferred.load(Ordering::Relaxed)
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
        let reference: Vec<Option<Arc<Vec<Tensor>>>> = {
            let cache = self.reference_cache();
            indices.iter().map(|i| cache.get(i).cloned()).collect()
        };
        let metrics = self
            .metrics
            .iter()
            .map(|metric| {
                let per_sample = indices
                    .iter()
                    .zip(outputs)
                    .zip(&reference)
                    .map(|((&i, (out, annotation)), reference)| {
                        sample_value(
                            *metric,
                            i,
                            out,
                            annotation,
                            reference.as_ref().map(|r| r.as_slice()),
                        )
                    })
                    .collect::<Result<Vec<f64>>>()?;
                Ok(MetricValue {
                    name: metric.name().into(),
                    value: aggregate(*metric, &per_sample)?,
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

    /// Caches FP32 outputs computed elsewhere (by calibration) for `indices`.
    pub(crate) fn seed_reference(&self, indices: &[usize], outputs: &[(Vec<Tensor>, Annotation)]) {
        if self.reference_model.is_none() {
            return;
        }
        let mut cache = self.reference_cache();
        for (&index, (tensors, _)) in indices.iter().zip(outputs) {
            cache
                .entry(index)
                .or_insert_with(|| Arc::new(tensors.clone()));
        }
    }

    /// Makes sure the FP32 outputs of `indices` are cached (for metrics that compare with them).
    pub(crate) fn ensure_reference(&self, indices: &[usize]) -> Result<()> {
        let missing: Vec<usize> = {
            let cache = self.reference_cache();
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
        let mut cache = self.reference_cache();
        cache.extend(
            missing
                .into_iter()
                .zip(outputs.into_iter().map(|(o, _)| Arc::new(o))),
        );
        Ok(())
    }
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

/// The metric's aggregate of `values` (a panic in it is an [`Error::Metric`]).
pub(crate) fn aggregate(metric: &dyn Metric, values: &[f64]) -> Result<f64> {
    guarded(metric, "aggregate", || Ok(metric.aggregate(values)))
}

/// One sample's value, rejecting non-finite results (a NaN would silently poison every comparison).
fn sample_value(
    metric: &dyn Metric,
    index: usize,
    outputs: &[Tensor],
    annotation: &Annotation,
    reference: Option<&[Tensor]>,
) -> Result<f64> {
    let value = guarded(metric, &format!("sample_value (sample {index})"), || {
        metric.sample_value(outputs, annotation, reference)
    })?;
    if !value.is_finite() {
        return Err(Error::Metric {
            name: metric.name().into(),
            message: format!("returned {value} for sample {index}"),
        });
    }
    Ok(value)
}
