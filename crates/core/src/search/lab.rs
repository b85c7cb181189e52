//! What the restore loop needs from the world, as three small traits, one per role: a [`Bench`] evaluates
//! candidates and scores ranking candidates, [`Models`] is the quantized model the search changes (its groups,
//! what a revert costs in integer kernels, re-quantization, intermediate saves), a [`Deployment`] judges the
//! saved model on the engine it is deployed on. A [`Lab`] is all three.
//!
//! The loop ([`restorer`](super::restorer)) only decides; a [`Lab`] does the work. Code that needs one role
//! asks for that one (tuning needs a bench and models, never the deployment). The real one
//! ([`EngineLab`](super::engine_lab::EngineLab)) builds models and runs them on an engine; the journal
//! ([`Recorded`](super::record::Recorded)) wraps any lab to record and replay its results; the unit tests'
//! fake answers from scripted per-sample values, so that the whole loop runs in milliseconds.

use std::collections::BTreeSet;

use crate::backend::EngineSettings;
use crate::error::Result;
use crate::eval::{Evaluation, Latency};
use crate::quantize::{FittedQuantizers, QuantizationParams};
use crate::search::groups::QuantizerGroup;
use crate::search::ranker::Scorer;

/// A ranking candidate handed to [`Bench::scorer`]: its group id and its ladder entries (base included).
pub(crate) type RankingCandidate = (usize, BTreeSet<String>);

/// The engine the saved model is deployed on and how it is measured there, as the report names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineId {
    pub name: String,
    pub version: String,
    pub settings: EngineSettings,
    /// Samples per batch of the deployed check.
    pub batch: usize,
}

/// Evaluates models on the validation set: the FP32 model, candidates, ranking candidates.
pub(crate) trait Bench {
    /// Number of validation samples.
    fn samples(&self) -> usize;

    /// What identifies an evaluation's conditions besides the candidate and samples: the judging engine and
    /// the quantized model (journal and cache key).
    fn tag(&self) -> String;

    /// Evaluates the FP32 model on `indices`.
    fn evaluate_fp32(&mut self, indices: &[usize]) -> Result<Evaluation>;

    /// Evaluates the current quantized model with the ops `reverted` names away from the base precision on
    /// `indices` ([`ladder`](super::ladder) entries: a bare op name is FP32, `op@w8a16` a 16-bit step).
    fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation>;

    /// The evaluation of `indices` made of per-sample values already computed — `known(metric, index)` —
    /// when every metric is scored per sample and each of its values on `indices` is known; `None` otherwise
    /// (a bench that cannot tell says so). What a ranking that scored a candidate on every sample of an
    /// evaluation leaves to compute: nothing (a validation set no larger than the ranking subset).
    fn evaluation_from_values(
        &self,
        _indices: &[usize],
        _known: &dyn Fn(usize, usize) -> Option<f64>,
    ) -> Result<Option<Evaluation>> {
        Ok(None)
    }

    /// A scorer of `members` (candidates on top of the ops `base` reverts) by metric number `metric` on
    /// `subset`.
    fn scorer<'s>(
        &'s mut self,
        base: &BTreeSet<String>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Result<Box<dyn Scorer + 's>>;

    /// The search ranks no more: whatever the bench keeps prepared for the next scorer of a ranking (a
    /// cohort's engine sessions, a copy of the model's weights each) goes, before the deployed check
    /// prepares FP32 and the saved model beside it (issue #27).
    fn end_ranking(&mut self);

    /// [`Error::Interrupted`](crate::Error::Interrupted) once the run is asked to stop.
    fn check_interrupt(&self) -> Result<()>;
}

/// The quantized model the search changes: its groups, what a revert costs, re-quantization, saves.
pub(crate) trait Models {
    /// The groups of the current quantized model.
    fn groups(&self) -> Vec<QuantizerGroup>;

    /// How many quantized ops the deployed engine runs as integer kernels with the ladder entries `reverted`
    /// out of INT8 ([`crate::quantize::QuantizedModel::integer_kernels`]). What a move loses of them is its
    /// cost in speed: ranking prefers the cheaper of two groups that restore the metric equally.
    fn integer_kernels(&self, reverted: &BTreeSet<String>) -> usize;

    /// Replaces the quantized model with the model quantized with `params`: rebuilt from `recorded` when
    /// given, calibrated otherwise. Returns the calibration to record, if one was made.
    fn requantize(
        &mut self,
        params: &QuantizationParams,
        recorded: Option<FittedQuantizers>,
    ) -> Result<Option<FittedQuantizers>>;

    /// Saves the deployable model with `reverted` ops in FP32 as intermediate model `name` (when asked to).
    fn save_intermediate(&self, name: &str, reverted: &BTreeSet<String>) -> Result<()>;
}

/// The engine the saved model is deployed on: judging the saved model there, and timing it.
pub(crate) trait Deployment {
    /// The engine the saved model is deployed on, when one is given.
    fn deployed(&self) -> Option<EngineId>;

    /// Whether the judge's evaluation of a candidate is exactly the deployed engine's evaluation of the saved
    /// model (same engine, version and model bytes).
    fn judge_is_deployed(&self) -> bool;

    /// Evaluates the saved form of the model with `reverted` ops in FP32 on the deployed engine, on every
    /// sample.
    fn evaluate_deployed(&mut self, reverted: &BTreeSet<String>) -> Result<Evaluation>;

    /// Makes the deployed engine the judge of every later evaluation.
    fn judge_on_deployed(&mut self) -> Result<()>;

    /// The latency of FP32 and of the candidate `reverted`'s saved model on the deployed engine (`None`
    /// without one, or when the run measures none).
    fn deployed_latency(&mut self, reverted: &BTreeSet<String>) -> Result<Option<Latency>>;
}

/// The world the restore loop acts on: every role at once.
pub(crate) trait Lab: Bench + Models + Deployment {}

impl<T: Bench + Models + Deployment> Lab for T {}
