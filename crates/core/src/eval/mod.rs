//! Evaluating a model on a dataset with a metric.
//!
//! The evaluator keeps what does not change between the evaluations of a run: the prepared input binding and,
//! for metrics that compare with the FP32 model, the FP32 model's session and outputs (computed on first need,
//! kept within a memory budget, see [`reference`]). Samples stream: each is scored as its batch comes out of the
//! engine and only its metric values are kept, so an evaluation's memory does not grow with the dataset.
//! Results are per sample, so callers can cache them, compare models sample by sample and evaluate any subset.
//!
//! Metrics are user code: they never run under the evaluator's lock (the FP32 outputs they compare with are
//! taken out first, shared), and a metric that panics becomes one [`Error::Metric`], not a crash of the run.

mod latency;
mod model;
mod reference;
mod scores;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::params::DEFAULT_REFERENCE_BUDGET;
pub use latency::{measure_each, measure_latency, timed_together, Latency, Timing};
pub use model::EvaluatedModel;
use reference::ReferenceCache;
pub(crate) use scores::{aggregate, per_sample_value};
use scores::{sample_value, Scores};
use std::time::Instant;

use aquant_onnx::ModelProto;

use crate::backend::{Backend, Session};
use crate::data::{Annotation, Dataset};
use crate::error::{Error, Result};
use crate::metric::confidence::{self, DropInterval, IntervalParams};
use crate::metric::{Direction, Metric};
use crate::profile::Profile;
use crate::progress::{NoProgress, Progress};
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
    /// A dataset-level metric's values over seeded bootstrap resamples of the evaluated samples
    /// ([`confidence::resamples`](crate::metric::confidence::resamples)), when the evaluator is asked for them
    /// ([`Evaluator::with_bootstrap`]); empty otherwise. Two evaluations of the same samples are scored on the
    /// same resamples, so their values pair up into an interval of the drop as per-sample values do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resampled: Vec<f64>,
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

    /// The interval of metric number `metric`'s drop from `fp32`, the FP32 model's evaluation of the same
    /// samples, to this one: paired per-sample values when the metric has them, otherwise its paired values
    /// over bootstrap resamples ([`MetricValue::resampled`]); `None` when it has neither.
    pub fn drop_interval(
        &self,
        fp32: &Evaluation,
        metric: usize,
        direction: Direction,
        asked: IntervalParams,
    ) -> Option<DropInterval> {
        let (base, value) = (fp32.metrics.get(metric)?, self.metrics.get(metric)?);
        if !base.per_sample.is_empty() {
            return confidence::drop_interval(
                &base.per_sample,
                &value.per_sample,
                direction,
                asked,
            );
        }
        let samples = self.indices.len();
        confidence::set_drop_interval(
            &base.resampled,
            &value.resampled,
            samples,
            direction,
            asked.level,
        )
    }
}

/// A model ready to run: how dataset inputs bind to it, and its engine session.
pub(crate) type PreparedModel = (Arc<InputBinding>, Arc<dyn Session>);

/// Runs models over one dataset with one or more metrics.
pub struct Evaluator<'a> {
    backend: &'a dyn Backend,
    dataset: &'a dyn Dataset,
    metrics: Vec<&'a dyn Metric>,
    batch_size: usize,
    progress: &'a dyn Progress,
    reference_model: Option<&'a ModelProto>,
    reference_outputs: Mutex<ReferenceCache>,
    reference_session: Mutex<Option<PreparedModel>>,
    samples_inferred: AtomicUsize,
    profile: Arc<Profile>,
    interrupt: Option<&'a AtomicBool>,
    bootstrap: usize,
    /// Models run a handful of samples each ([`Evaluator::for_few_runs`]).
    few_runs: bool,
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
            reference_outputs: Mutex::new(ReferenceCache::new(DEFAULT_REFERENCE_BUDGET)),
            reference_session: Mutex::new(None),
            samples_inferred: AtomicUsize::new(0),
            profile: Arc::default(),
            interrupt: None,
            bootstrap: 0,
            few_runs: false,
        })
    }

    /// Prepares every model with [`Backend::prepare_for_few_runs`]: for an evaluator whose models each run a
    /// handful of samples, where preparing for speed costs more than it saves.
    pub fn for_few_runs(mut self) -> Self {
        self.few_runs = true;
        self
    }

    /// The engine models run on.
    pub fn backend(&self) -> &'a dyn Backend {
        self.backend
    }

    /// Samples per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Runs later evaluations `batch_size` samples at a time (cached FP32 outputs are kept: they are the
    /// reference the metrics compare with, not a measure of this engine).
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Runs later evaluations on `backend` (cached FP32 outputs are kept: FP32 is the same model).
    pub fn set_backend(&mut self, backend: &'a dyn Backend) {
        self.backend = backend;
        *self
            .reference_session
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Drops the FP32 model's session, prepared again if an output is missing from the cache later: a caller
    /// whose reference outputs are all cached frees the FP32 weights the engine packed for it (the size of
    /// the model, issue #27).
    pub fn release_reference_session(&self) {
        *self
            .reference_session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Keeps at most `bytes` of FP32 outputs (default [`DEFAULT_REFERENCE_BUDGET`]); outputs dropped beyond it
    /// are computed again when needed.
    pub fn with_reference_budget(self, bytes: usize) -> Self {
        *self
            .reference_outputs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = ReferenceCache::new(bytes);
        self
    }

    /// Bytes of FP32 outputs held now.
    pub fn reference_bytes(&self) -> usize {
        self.reference_cache().bytes()
    }

    /// The interrupt flag, if any.
    pub fn interrupt(&self) -> Option<&'a AtomicBool> {
        self.interrupt
    }

    /// The FP32 output cache. No user code runs while it is held, so it is never poisoned; should a bug
    /// poison it anyway, its content is still whole (entries are inserted whole).
    fn reference_cache(&self) -> MutexGuard<'_, ReferenceCache> {
        self.reference_outputs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes evaluations stop with [`Error::Interrupted`] once `flag` is set (checked between batches).
    pub fn with_interrupt(mut self, flag: Option<&'a AtomicBool>) -> Self {
        self.interrupt = flag;
        self
    }

    /// Scores dataset-level metrics on `resamples` bootstrap resamples too in [`Evaluator::evaluate`] and
    /// [`Evaluator::score`] ([`MetricValue::resampled`]), for the interval of their drop. Ranking
    /// ([`Evaluator::evaluate_while`]) never needs them.
    pub fn with_bootstrap(mut self, resamples: usize) -> Self {
        self.bootstrap = resamples;
        self
    }

    /// The bootstrap resamples dataset-level metrics are scored on ([`Evaluator::with_bootstrap`]).
    pub fn bootstrap(&self) -> usize {
        self.bootstrap
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
        self.profile.prepare(|| match self.few_runs {
            true => self.backend.prepare_for_few_runs(model, extra_outputs),
            false => self.backend.prepare(model, extra_outputs),
        })
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
        self.reference_cache()
            .get(index)
            .map(|r| r.as_ref().clone())
    }

    /// Every sample index of the dataset.
    pub fn all_indices(&self) -> Vec<usize> {
        (0..self.dataset.len()).collect()
    }

    /// Whether any metric compares with the FP32 model.
    fn needs_reference(&self) -> bool {
        self.metrics.iter().any(|m| m.needs_reference())
    }

    /// Samples streamed between two fetches of their FP32 outputs: a few waves of parallel batches.
    fn chunk_len(&self) -> usize {
        self.batch_size * rayon::current_num_threads().max(1) * 8
    }

    /// Runs `model` over `indices`, handing each sample's outputs (and, with `with_reference`, the FP32 model's
    /// outputs of the same sample) to `on_sample` in order, until it answers [`Flow::Stop`]. The FP32 outputs
    /// are fetched a chunk of samples at a time, so they never all need to be held. Returns the number of
    /// samples run.
    fn stream(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
        with_reference: bool,
        on_sample: impl FnMut(usize, Vec<Tensor>, Annotation, Option<&[Tensor]>) -> Result<Flow>,
    ) -> Result<usize> {
        self.stream_prepared(
            &self.prepared(model)?,
            indices,
            label,
            with_reference,
            on_sample,
        )
    }

    /// `model`'s input binding and engine session.
    pub(crate) fn prepared(&self, model: &ModelProto) -> Result<PreparedModel> {
        Ok((
            Arc::new(InputBinding::from_model(model)?),
            self.prepare(model, &[])?,
        ))
    }

    /// [`Evaluator::stream`] on a model already prepared.
    fn stream_prepared(
        &self,
        prepared: &PreparedModel,
        indices: &[usize],
        label: &str,
        with_reference: bool,
        mut on_sample: impl FnMut(usize, Vec<Tensor>, Annotation, Option<&[Tensor]>) -> Result<Flow>,
    ) -> Result<usize> {
        let chunk_len = match with_reference {
            true => self.chunk_len(),
            false => indices.len().max(1),
        };
        self.progress.start(label, indices.len() as u64);
        let mut run = 0;
        let mut result = Ok(());
        for chunk in indices.chunks(chunk_len) {
            match self.stream_chunk(prepared, chunk, with_reference, &mut on_sample) {
                Ok((streamed, flow)) => {
                    run += streamed;
                    if flow == Flow::Stop {
                        break;
                    }
                }
                Err(error) => {
                    result = Err(error);
                    break;
                }
            }
        }
        self.progress.finish();
        self.samples_inferred.fetch_add(run, Ordering::Relaxed);
        result.map(|()| run)
    }

    /// Streams one chunk of samples (see [`Evaluator::stream`]) with their FP32 outputs fetched first when
    /// `with_reference`: how many were run, and whether `on_sample` asked to stop.
    fn stream_chunk(
        &self,
        (binding, session): &PreparedModel,
        chunk: &[usize],
        with_reference: bool,
        on_sample: &mut impl FnMut(usize, Vec<Tensor>, Annotation, Option<&[Tensor]>) -> Result<Flow>,
    ) -> Result<(usize, Flow)> {
        let references = match with_reference {
            true => self.references(chunk)?,
            false => Vec::new(),
        };
        let mut flow = Flow::Continue;
        let mut position = 0;
        let streamed = run_batches(
            session.as_ref(),
            binding,
            self.dataset,
            chunk,
            self.batch_size,
            self.progress,
            |batch, tensors, annotations| {
                self.check_interrupt()?;
                for ((row, annotation), &index) in (0..batch.len()).zip(annotations).zip(batch) {
                    let reference = references.get(position).map(|r| r.as_slice());
                    position += 1;
                    let outputs = tensors.iter().map(|t| t.row(row)).collect();
                    if on_sample(index, outputs, annotation, reference)? == Flow::Stop {
                        flow = Flow::Stop;
                    }
                }
                Ok(flow)
            },
        )?;
        Ok((streamed, flow))
    }

    /// Per-sample outputs and annotations of `model` on `indices`.
    pub fn outputs(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Vec<(Vec<Tensor>, Annotation)>> {
        let mut outputs = Vec::with_capacity(indices.len());
        self.stream(model, indices, label, false, |_, tensors, annotation, _| {
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
        if !self.metrics[metric].per_sample() {
            // A dataset-level metric is evaluated on the whole of `indices` at once; it may still say per-sample
            // values (SetValue::per_sample), which are then the answer.
            let evaluation =
                self.evaluate_resampled(&self.prepared(model)?, model, indices, label, 0)?;
            let values = evaluation
                .metrics
                .into_iter()
                .nth(metric)
                .map(|m| m.per_sample);
            return match values {
                Some(values) if values.len() == indices.len() => Ok(values),
                _ => Err(Error::Config(format!(
                    "metric '{}' is dataset-level and gives no per-sample values",
                    self.metrics[metric].name()
                ))),
            };
        }
        let with_reference = self.metrics[metric].needs_reference();
        let mut values = Vec::with_capacity(indices.len());
        self.stream(
            model,
            indices,
            label,
            with_reference,
            |index, outputs, annotation, reference| {
                values.push(self.sample_value(metric, index, &outputs, &annotation, reference)?);
                Ok(if keep_going(&values) {
                    Flow::Continue
                } else {
                    Flow::Stop
                })
            },
        )?;
        Ok(values)
    }

    /// Metric number `metric` on one sample's outputs; `reference` is the FP32 model's outputs of the sample
    /// (from [`Evaluator::references`]) when the metric compares with them.
    pub(crate) fn sample_value(
        &self,
        metric: usize,
        index: usize,
        outputs: &[Tensor],
        annotation: &Annotation,
        reference: Option<&[Tensor]>,
    ) -> Result<f64> {
        sample_value(self.metrics[metric], index, outputs, annotation, reference)
    }

    /// Records `samples` runs made outside [`Evaluator::stream`] (partial models included).
    pub(crate) fn count_inferred(&self, samples: usize) {
        self.samples_inferred.fetch_add(samples, Ordering::Relaxed);
    }

    /// Samples run through the engine by this evaluator so far (FP32 reference runs included).
    pub fn samples_inferred(&self) -> usize {
        self.samples_inferred.load(Ordering::Relaxed)
    }

    /// Evaluates `model` on `indices`, scoring each sample as it streams out of the engine (a dataset-level
    /// metric's samples are kept, and it is scored on them once all have run).
    pub fn evaluate(
        &self,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        self.evaluate_resampled(
            &self.prepared(model)?,
            model,
            indices,
            label,
            self.bootstrap,
        )
    }

    /// [`Evaluator::evaluate`] of `model` already prepared (by [`Evaluator::prepared`], on this engine): a
    /// worker evaluates one candidate on several shards with one session.
    pub(crate) fn evaluate_prepared(
        &self,
        prepared: &PreparedModel,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        self.evaluate_resampled(prepared, model, indices, label, self.bootstrap)
    }

    /// [`Evaluator::evaluate_prepared`], scoring dataset-level metrics on `resamples` bootstrap resamples too.
    fn evaluate_resampled(
        &self,
        prepared: &PreparedModel,
        model: &ModelProto,
        indices: &[usize],
        label: &str,
        resamples: usize,
    ) -> Result<Evaluation> {
        let start = Instant::now();
        let mut scores = Scores::new(&self.metrics, indices.len(), resamples);
        self.stream_prepared(
            prepared,
            indices,
            label,
            self.needs_reference(),
            |index, outputs, annotation, reference| {
                scores.add(index, outputs, annotation, reference)?;
                Ok(Flow::Continue)
            },
        )?;
        let mut evaluation = scores.finish(
            indices,
            &EvaluatedModel::new(self, model, Some(prepared.clone())),
        )?;
        evaluation.seconds = start.elapsed().as_secs_f64();
        Ok(evaluation)
    }

    /// Scores `model`'s per-sample outputs (as returned by [`Evaluator::outputs`] for `indices`) with every
    /// metric.
    pub fn score(
        &self,
        model: &ModelProto,
        indices: &[usize],
        outputs: &[(Vec<Tensor>, Annotation)],
    ) -> Result<Evaluation> {
        let references = match self.needs_reference() {
            true => self.references(indices)?,
            false => Vec::new(),
        };
        let mut scores = Scores::new(&self.metrics, indices.len(), self.bootstrap);
        for (position, (&index, (tensors, annotation))) in indices.iter().zip(outputs).enumerate() {
            let reference = references.get(position).map(|r| r.as_slice());
            scores.add(index, tensors.clone(), annotation.clone(), reference)?;
        }
        scores.finish(indices, &EvaluatedModel::new(self, model, None))
    }

    /// Caches FP32 outputs computed elsewhere (by calibration) for `indices`.
    pub(crate) fn seed_reference(&self, indices: &[usize], outputs: &[(Vec<Tensor>, Annotation)]) {
        if self.reference_model.is_none() {
            return;
        }
        let outputs = indices
            .iter()
            .zip(outputs)
            .map(|(&index, (tensors, _))| (index, Arc::new(tensors.clone())));
        self.reference_cache().insert(outputs, &[]);
    }

    /// The FP32 outputs of `indices`, in order, computing those not cached (for metrics that compare with
    /// them). The caller holds them while it scores, so the cache may drop them meanwhile.
    pub(crate) fn references(&self, indices: &[usize]) -> Result<Vec<Arc<Vec<Tensor>>>> {
        let missing: Vec<usize> = {
            let cache = self.reference_cache();
            indices
                .iter()
                .copied()
                .filter(|&i| !cache.contains(i))
                .collect()
        };
        let mut computed = Vec::with_capacity(missing.len());
        if !missing.is_empty() {
            let (binding, session) = self.reference_session()?;
            let run = run_batches(
                session.as_ref(),
                &binding,
                self.dataset,
                &missing,
                self.batch_size,
                &NoProgress,
                |batch, tensors, _| {
                    self.check_interrupt()?;
                    for (row, &index) in batch.iter().enumerate() {
                        let outputs = tensors.iter().map(|t| t.row(row)).collect();
                        computed.push((index, Arc::new(outputs)));
                    }
                    Ok(Flow::Continue)
                },
            )?;
            self.samples_inferred.fetch_add(run, Ordering::Relaxed);
        }
        // Pinned, the requested outputs all stay in the cache through this insertion, whatever its budget.
        let mut cache = self.reference_cache();
        cache.insert(computed, indices);
        let outputs = indices
            .iter()
            .map(|&i| cache.get(i).expect("pinned by the insertion"))
            .collect();
        // Every sample's outputs held: nothing is inserted again, so nothing is dropped, and the FP32 session
        // would only keep the engine's copy of the weights (a model's worth) through the search.
        if !missing.is_empty() && cache.len() == self.dataset.len() {
            drop(cache);
            self.release_reference_session();
        }
        Ok(outputs)
    }

    /// The FP32 model's input binding and session, prepared once.
    fn reference_session(&self) -> Result<PreparedModel> {
        let mut slot = self
            .reference_session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((binding, session)) = slot.as_ref() {
            return Ok((binding.clone(), session.clone()));
        }
        let model = self.reference_model.expect("checked in Evaluator::new");
        let prepared = (
            Arc::new(InputBinding::from_model(model)?),
            self.prepare(model, &[])?,
        );
        *slot = Some(prepared.clone());
        Ok(prepared)
    }
}
