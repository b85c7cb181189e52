//! The search's side of an [`Executor`]: what the [`EngineLab`] sends out instead of evaluating itself — the
//! blobs of the current quantized model, full-set evaluations cut into shards, and ranking candidates scored
//! shard by shard ([`ExecutorScorer`]).
//!
//! Only per-sample metrics go out (a dataset-level metric, NNCF's `validation_fn`, needs every sample at once:
//! it runs here). Decisions stay here: a ranking candidate is sent one shard at a time, and whether it gets
//! the next one is the ranking's `keep_going` on every value it has so far — branch and bound at the
//! granularity of a shard (a few more values than a local run computes, never a different ranking). The FP32
//! evaluation runs here too (once per run).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::eval::{aggregate, Evaluation, MetricValue};
use crate::executor::{
    encode_samples, fingerprint, Blob, BlobKind, Executor, UnitValues, WorkUnit,
};
use crate::search::engine_lab::EngineLab;
use crate::search::lab::RankingCandidate;
use crate::search::ranker::{KeepGoing, ScoreRequest, Scorer};
use crate::search::worker::Setup;

/// An executor and what was sent to it.
pub(crate) struct Remote<'a> {
    pub executor: &'a dyn Executor,
    /// The validation samples, encoded once, a shard of [`Executor::shard_size`] dataset indices each.
    shards: Vec<Blob>,
    /// The FP32 model's blob.
    model: Option<Blob>,
    /// The setup published last.
    setup: Option<Blob>,
}

impl<'a> Remote<'a> {
    pub fn new(executor: &'a dyn Executor) -> Self {
        Remote {
            executor,
            shards: Vec::new(),
            model: None,
            setup: None,
        }
    }
}

/// The setup key of the current quantized model, publishing its blobs first when they are new.
fn published(ctx: &mut EngineLab) -> Result<String> {
    let setup = setup_blob(ctx)?;
    let remote = ctx.remote.as_mut().expect("callers check for an executor");
    if remote.setup.as_ref().is_some_and(|s| s.key == setup.key) {
        return Ok(setup.key);
    }
    if remote.shards.is_empty() {
        remote.shards = encode_shards(ctx.evaluator.dataset(), remote.executor.shard_size())?;
    }
    if remote.model.is_none() {
        let bytes = aquant_onnx::encode_model(&ctx.fp32);
        remote.model = Some(blob(BlobKind::Model, "model", bytes));
    }
    let mut blobs: Vec<Blob> = remote.model.iter().cloned().collect();
    blobs.push(setup.clone());
    blobs.extend(remote.shards.iter().cloned());
    remote.executor.publish(&blobs)?;
    let key = setup.key.clone();
    remote.setup = Some(setup);
    Ok(key)
}

/// A blob of `kind`, keyed by `prefix` and the fingerprint of `bytes`.
fn blob(kind: BlobKind, prefix: &str, bytes: Vec<u8>) -> Blob {
    Blob {
        kind,
        key: format!("{prefix}-{:016x}", fingerprint(&bytes)),
        bytes: Arc::new(bytes),
    }
}

/// The current quantized model's setup, as a blob.
fn setup_blob(ctx: &EngineLab) -> Result<Blob> {
    let model_key = match ctx.remote.as_ref().and_then(|r| r.model.as_ref()) {
        Some(model) => model.key.clone(),
        None => {
            blob(
                BlobKind::Model,
                "model",
                aquant_onnx::encode_model(&ctx.fp32),
            )
            .key
        }
    };
    let backend = ctx.evaluator.backend();
    let setup = Setup {
        model: model_key,
        params: ctx.params.clone(),
        calibration: ctx.quantized.calibration(),
        restore_mode: ctx.restore_mode,
        export: match ctx.evaluation_form {
            crate::quantize::ModelForm::Export { compress_weights } => Some(compress_weights),
            crate::quantize::ModelForm::Evaluation => None,
        },
        engine: backend.name().to_owned(),
        engine_version: backend.version(),
        batch_size: ctx.evaluator.batch_size(),
        metrics: ctx
            .evaluator
            .metrics()
            .iter()
            .map(|m| m.name().to_owned())
            .collect(),
    };
    let bytes = serde_json::to_vec(&setup).map_err(|e| Error::Executor(format!("setup: {e}")))?;
    Ok(blob(BlobKind::Setup, "setup", bytes))
}

/// Every sample of `dataset`, encoded by shards of `size` consecutive indices.
fn encode_shards(dataset: &dyn crate::data::Dataset, size: usize) -> Result<Vec<Blob>> {
    let indices: Vec<usize> = (0..dataset.len()).collect();
    indices
        .chunks(size.max(1))
        .map(|chunk| {
            let samples = chunk
                .iter()
                .map(|&i| Ok((i, dataset.get(i)?)))
                .collect::<Result<Vec<_>>>()?;
            Ok(blob(
                BlobKind::Samples,
                "samples",
                encode_samples(&samples)?,
            ))
        })
        .collect()
}

/// The unit `id` of candidate `reverted` on `samples` by `metrics`, under setup `setup`.
fn unit(
    ctx: &EngineLab,
    setup: &str,
    id: usize,
    reverted: &BTreeSet<String>,
    metrics: Vec<usize>,
    samples: &[usize],
) -> WorkUnit {
    let remote = ctx.remote.as_ref().expect("published");
    let size = remote.executor.shard_size().max(1);
    let shards: BTreeSet<usize> = samples.iter().map(|i| i / size).collect();
    let mut blobs: Vec<String> = remote.model.iter().map(|m| m.key.clone()).collect();
    blobs.push(setup.to_owned());
    blobs.extend(shards.into_iter().map(|s| remote.shards[s].key.clone()));
    WorkUnit {
        id,
        setup: setup.to_owned(),
        reverted: reverted.clone(),
        metrics,
        samples: samples.to_vec(),
        blobs,
    }
}

/// Whether every metric of the lab's evaluator can be evaluated by the executor (all per-sample).
pub(crate) fn evaluates_remotely(ctx: &EngineLab) -> bool {
    ctx.remote.is_some() && ctx.evaluator.metrics().iter().all(|m| m.per_sample())
}

/// Evaluates candidate `reverted` on `indices` through the executor, one unit per shard of indices.
pub(crate) fn evaluate(
    ctx: &mut EngineLab,
    reverted: &BTreeSet<String>,
    indices: &[usize],
    label: &str,
) -> Result<Evaluation> {
    let start = std::time::Instant::now();
    let setup = published(ctx)?;
    let executor = ctx.remote.as_ref().expect("published").executor;
    let all: Vec<usize> = (0..ctx.evaluator.metrics().len()).collect();
    let units: Vec<WorkUnit> = indices
        .chunks(executor.shard_size().max(1))
        .enumerate()
        .map(|(id, chunk)| unit(ctx, &setup, id, reverted, all.clone(), chunk))
        .collect();
    let progress = ctx.evaluator.progress();
    progress.start(
        &format!(
            "{label}: {} shards on {} workers",
            units.len(),
            executor.workers()
        ),
        indices.len() as u64,
    );
    let results = ordered(executor.run(units.clone())?, &units);
    progress.finish();
    let results = results?;
    // The workers' inferences are this run's too (the report's samples inferred).
    ctx.evaluator.count_inferred(indices.len());
    let metrics = ctx
        .evaluator
        .metrics()
        .iter()
        .enumerate()
        .map(|(m, metric)| {
            let per_sample: Vec<f64> = results
                .iter()
                .flat_map(|r| r.values[m].iter().copied())
                .collect();
            Ok(MetricValue {
                name: metric.name().into(),
                value: aggregate(*metric, &per_sample)?,
                per_sample,
                // Per-sample metrics only go out to workers: their interval comes from the values.
                resampled: Vec::new(),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Evaluation {
        indices: indices.to_vec(),
        metrics,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `results` in the order of `units`, each checked to answer its unit in full.
fn ordered(results: Vec<UnitValues>, units: &[WorkUnit]) -> Result<Vec<UnitValues>> {
    let mut by_id: HashMap<usize, UnitValues> = results.into_iter().map(|r| (r.id, r)).collect();
    units
        .iter()
        .map(|u| {
            let r = by_id
                .remove(&u.id)
                .ok_or_else(|| Error::Executor(format!("no answer to unit {}", u.id)))?;
            let whole = r.values.len() == u.metrics.len()
                && r.values.iter().all(|v| v.len() == u.samples.len());
            match whole {
                true => Ok(r),
                false => Err(Error::Executor(format!(
                    "unit {} answered with the wrong number of values",
                    u.id
                ))),
            }
        })
        .collect()
}

/// Ranking candidates scored through the executor, a shard of the subset at a time.
pub(crate) struct ExecutorScorer<'s, 'a> {
    pub ctx: &'s mut EngineLab<'a>,
    pub members: HashMap<usize, BTreeSet<String>>,
    pub subset: Vec<usize>,
    pub metric: usize,
}

impl<'s, 'a> ExecutorScorer<'s, 'a> {
    pub fn new(
        ctx: &'s mut EngineLab<'a>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Self {
        ExecutorScorer {
            ctx,
            members: members.into_iter().collect(),
            subset: subset.to_vec(),
            metric,
        }
    }
}

/// One job of an extend: where it is in the subset, its values so far, and whether it goes on.
struct InFlight {
    group: usize,
    next: usize,
    values: Vec<f64>,
    live: bool,
}

impl Scorer for ExecutorScorer<'_, '_> {
    fn width(&self) -> usize {
        self.ctx.remote.as_ref().map_or(1, |r| r.executor.workers())
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        let setup = published(self.ctx)?;
        let executor = self.ctx.remote.as_ref().expect("published").executor;
        let size = executor.shard_size().max(1);
        let mut flights: Vec<InFlight> = jobs
            .iter()
            .map(|j| InFlight {
                group: j.group,
                next: j.start,
                values: Vec::new(),
                live: j.start < until,
            })
            .collect();
        let progress = self.ctx.evaluator.progress();
        let total = flights
            .iter()
            .map(|f| until.saturating_sub(f.next) as u64)
            .sum();
        progress.start(
            &format!(
                "ranking {} groups on {} workers",
                jobs.len(),
                executor.workers()
            ),
            total,
        );
        loop {
            self.ctx.evaluator.check_interrupt()?;
            let units: Vec<WorkUnit> = flights
                .iter()
                .enumerate()
                .filter(|(_, f)| f.live)
                .map(|(id, f)| {
                    let samples = &self.subset[f.next..(f.next + size).min(until)];
                    unit(
                        self.ctx,
                        &setup,
                        id,
                        &self.members[&f.group],
                        vec![self.metric],
                        samples,
                    )
                })
                .collect();
            if units.is_empty() {
                break;
            }
            for answer in ordered(executor.run(units.clone())?, &units)? {
                let flight = &mut flights[answer.id];
                let new = answer.values.into_iter().next().unwrap_or_default();
                progress.advance(new.len() as u64);
                self.ctx.evaluator.count_inferred(new.len());
                flight.next += new.len();
                flight.values.extend(new);
                flight.live = flight.next < until && keep_going(flight.group, &flight.values);
            }
        }
        progress.finish();
        self.ctx.counts.subset += jobs.len();
        Ok(flights.into_iter().map(|f| (f.group, f.values)).collect())
    }
}
