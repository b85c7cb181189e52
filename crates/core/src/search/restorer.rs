//! The restore loop (SPEC §4) as an explicit state machine:
//!
//! ```text
//! Baselines → Quantized → [MixedPreset] → [Tuning] → Restore ⟲ → DeployedCheck → Targets → Done(StopReason)
//!                                                       ↑______________| (deployed engine missed the target)
//! ```
//!
//! Each state does one thing and names the next. In `Restore`, one step moves the best-ranked group one rung
//! up the precision ladder (`fallback`; by default the one rung `fp32`: a revert) and evaluates on the full
//! set; the [`StepOutcome`] says what follows:
//! - `TargetMet`: stop;
//! - `DropDecreased`: keep it and take the next group of the same ranking;
//! - `NoImprovement` / `KeptDespiteIncrease`: keep it and re-rank the groups on the new model;
//! - `RolledBack` (`use_prev_if_drop_increase`): undo it; the group's next candidate is the rung after, re-rank.
//!
//! Each group has a place on the ladder: its candidate is the first rung from there that moves some of its ops
//! (a group without a MatMul skips the `dynamic` step), and a group past the last rung is never a candidate
//! again.
//!
//! Every model evaluated on the full set on the way (the INT8 start, each step's candidate, kept or rolled
//! back) is a point of the path the verdict returns: the accuracy / size / latency front the job measures.
//! With several targets (`maximal_drop` a list) the loop runs to the tightest; `Targets` then gives each looser
//! one the first model of the kept path that meets it, judged on the deployed engine (the next one when that
//! engine misses it), so several targets cost one search plus their deployed checks.
//!
//! Why it ends: every step, kept or rolled back, moves its group's place past the rung it tried, which never
//! decreases and is bounded by the ladder's length; so there are at most groups × rungs steps (groups with
//! the default ladder). The deployed engine takes over the judging at most once. With several metrics the
//! loop works on the one furthest beyond its limit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::eval::Evaluation;
use crate::metric::confidence::IntervalParams;
use crate::metric::Metric;
use crate::params::AccuracyControlParams;
use crate::quantize::{Precision, Preset, QuantizationParams};
use crate::search::groups::QuantizerGroup;
use crate::search::lab::Lab;
use crate::search::ladder;
use crate::search::limits::{Limits, EPSILON};
use crate::search::ranker::Ranking;
use crate::search::report::{
    DeployedReport, RankedBy, RankingEntry, StepOutcome, StepReport, StopReason, Timings,
};
use crate::search::tuning;

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Measure (or take) the FP32 baselines.
    Baselines,
    /// Evaluate the fully quantized model.
    Quantized,
    /// `convert_to_mixed_preset`: try the mixed preset.
    MixedPreset,
    /// `tune_hyperparams`: try other base-algorithm settings.
    Tuning,
    /// Revert the next group.
    Restore,
    /// Judge the final model on the deployed engine; the search stopped for the given reason.
    DeployedCheck(StopReason),
    /// Pick and judge the model of each looser target.
    Targets(StopReason),
    /// Finished.
    Done(StopReason),
}

/// A model state evaluated on the full set.
#[derive(Clone)]
struct State {
    /// The ops not at the base precision, as [`ladder`](super::ladder) entries (a bare name: FP32).
    reverted: BTreeSet<String>,
    evaluation: Evaluation,
    drops: Vec<f64>,
    /// What the limits are compared with ([`Limits::judged`]): the drops, or their intervals' upper ends.
    judged: Vec<f64>,
}

/// A model evaluated on the full set on the search's path: a point of the front.
#[derive(Debug, Clone)]
pub(crate) struct PathPoint {
    /// The step whose candidate it is (`None`: the quantized model the steps start from).
    pub step: Option<usize>,
    /// Its ops not at the base precision ([`ladder`](super::ladder) entries).
    pub reverted: BTreeSet<String>,
    /// Its evaluation on the full set (the controlled metrics first), each metric's drop, and what each limit
    /// was compared with.
    pub evaluation: Evaluation,
    pub drops: Vec<f64>,
    pub judged: Vec<f64>,
    /// On the kept path (the start and every kept step), not rolled back.
    pub kept: bool,
    /// Evaluated by the deployed engine on the saved model's bytes: its deployed check is this evaluation.
    pub on_deployed: bool,
}

/// The model a looser target gets and how it fares.
#[derive(Debug, Clone)]
pub(crate) struct TargetVerdict {
    /// The target (`maximal_drop`).
    pub max_drop: f64,
    /// The path's model saved for it.
    pub point: PathPoint,
    /// The drop it allows each metric.
    pub allowed: Vec<f64>,
    /// Whether the model meets it: on the deployed engine when there is one.
    pub met: bool,
    /// The model judged on the deployed engine (`None`: no deployed engine, or no model of the path met the
    /// target on the search's engine).
    pub deployed: Option<DeployedReport>,
}

/// The ranking in use, and what it ranks on.
struct Current<'m> {
    ranking: Ranking<'m>,
    base: BTreeSet<String>,
    subset: Vec<usize>,
    /// The controlled metric it restores.
    controlled: usize,
    /// The evaluation entry of the metric it ranks by (see [`Restorer::ranking_metric`]).
    metric: usize,
}

/// What the machine found: everything the report says about the search itself.
pub(crate) struct Verdict {
    pub reverted: BTreeSet<String>,
    pub evaluation: Evaluation,
    /// FP32's evaluation on the samples the drops compare (all of them, or a prefix when baselines are
    /// given): the other half of each drop's pairs.
    pub reference: Option<Evaluation>,
    pub drops: Vec<f64>,
    /// What each limit was compared with: the drops, or their intervals' upper ends.
    pub judged: Vec<f64>,
    pub limits: Limits,
    pub quantized_values: Vec<f64>,
    pub preset: Preset,
    pub tuned: Option<QuantizationParams>,
    pub steps: Vec<StepReport>,
    pub ranking: Vec<RankingEntry>,
    pub ranked_by: Option<RankedBy>,
    pub stop: StopReason,
    pub deployed: Option<DeployedReport>,
    pub timings: Timings,
    /// Every model evaluated on the full set, in order: the start, then each step's candidate.
    pub path: Vec<PathPoint>,
    /// Each looser target's model, tightest first.
    pub targets: Vec<TargetVerdict>,
}

impl Verdict {
    /// Whether every metric is within its limit, on the deployed engine too when there is one.
    pub fn target_met(&self) -> bool {
        self.stop == StopReason::TargetMet
    }
}

/// The accuracy-control state machine over a [`Lab`].
pub(crate) struct Restorer<'m, L: Lab> {
    lab: L,
    metrics: &'m [&'m dyn Metric],
    /// The output NMSE against FP32, when groups may be ranked by it; evaluations carry it after `metrics`.
    nmse: Option<&'m dyn Metric>,
    control: &'m AccuracyControlParams,
    params: QuantizationParams,
    early_stop: bool,
    limits: Limits,
    /// FP32 per-sample values on `comparison`, the samples FP32 and INT8 are compared on.
    reference: Option<Evaluation>,
    comparison: Vec<usize>,
    quantized_values: Vec<f64>,
    current: Option<State>,
    best: Option<State>,
    tuned: Option<QuantizationParams>,
    groups: Vec<QuantizerGroup>,
    steps: Vec<StepReport>,
    /// Each group's place on the ladder: the index of the first rung it has not tried (kept or rolled back);
    /// absent: 0.
    tried: BTreeMap<usize, usize>,
    /// Where every op starts: the base precision, except for the entries here (GNA's 16-bit defaults).
    start: BTreeSet<String>,
    ranking: Option<Current<'m>>,
    last_ranking: Vec<RankingEntry>,
    ranked_by: Option<RankedBy>,
    deployed: Option<DeployedReport>,
    continued: bool,
    timings: Timings,
    path: Vec<PathPoint>,
    targets: Vec<TargetVerdict>,
}

impl<'m, L: Lab> Restorer<'m, L> {
    /// A machine about to measure baselines, for the model `lab` holds, quantized with `params`. `nmse`: the
    /// output NMSE against FP32, which `lab`'s evaluations carry after `metrics`, when groups may be ranked by
    /// it ([`AccuracyControlParams::ranking_score`]).
    pub fn new(
        lab: L,
        metrics: &'m [&'m dyn Metric],
        nmse: Option<&'m dyn Metric>,
        control: &'m AccuracyControlParams,
        params: QuantizationParams,
        early_stop: bool,
    ) -> Self {
        Restorer {
            lab,
            metrics,
            nmse,
            control,
            params,
            early_stop,
            limits: Limits {
                baselines: Vec::new(),
                allowed: Vec::new(),
                confidence: control.confidence.map(|_| IntervalParams::of(control)),
            },
            reference: None,
            comparison: Vec::new(),
            quantized_values: Vec::new(),
            current: None,
            best: None,
            tuned: None,
            groups: Vec::new(),
            steps: Vec::new(),
            tried: BTreeMap::new(),
            start: BTreeSet::new(),
            ranking: None,
            last_ranking: Vec::new(),
            ranked_by: None,
            deployed: None,
            continued: false,
            timings: Timings::default(),
            path: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// Starts the search from `entries` (ops at a precision other than the base one) instead of the base
    /// model.
    pub fn starting_from(mut self, entries: BTreeSet<String>) -> Self {
        self.start = entries;
        self
    }

    /// The rung `group` would try next and its index in the ladder: the first untried one that moves some of
    /// its ops, if any is left.
    pub(crate) fn next_rung(&self, group: &QuantizerGroup) -> Option<(usize, Precision)> {
        let tried = self.tried.get(&group.id).copied().unwrap_or(0);
        (tried..self.control.fallback.len())
            .map(|i| (i, self.control.fallback[i]))
            .find(|(_, rung)| !group.ops_at(*rung).is_empty())
    }

    /// Runs the machine to the end. An interrupt at any state ends it with [`StopReason::Interrupted`].
    pub fn run(mut self) -> Result<(Verdict, L)> {
        let mut phase = Phase::Baselines;
        loop {
            phase = match phase {
                Phase::Done(stop) => return self.finish(stop),
                Phase::DeployedCheck(StopReason::Interrupted)
                | Phase::Targets(StopReason::Interrupted) => Phase::Done(StopReason::Interrupted),
                phase => match self.step(phase) {
                    Err(Error::Interrupted) => Phase::Done(StopReason::Interrupted),
                    other => other?,
                },
            };
        }
    }

    /// Carries out `phase`; returns the next.
    pub fn step(&mut self, phase: Phase) -> Result<Phase> {
        self.lab.check_interrupt()?;
        let (start, ranking) = (Instant::now(), self.timings.ranking);
        let next = match phase {
            Phase::Baselines => self.baselines(),
            Phase::Quantized => self.quantized(),
            Phase::MixedPreset => self.mixed_preset(),
            Phase::Tuning => self.tuning(),
            Phase::Restore => self.restore(),
            Phase::DeployedCheck(stop) => self.deployed_check(stop),
            Phase::Targets(stop) => self.targets(stop),
            Phase::Done(stop) => Ok(Phase::Done(stop)),
        };
        let seconds = start.elapsed().as_secs_f64();
        match phase {
            Phase::Baselines => self.timings.fp32_eval += seconds,
            Phase::Quantized => self.timings.int8_eval += seconds,
            Phase::DeployedCheck(_) | Phase::Targets(_) => {
                self.timings.deployed += seconds - (self.timings.ranking - ranking)
            }
            _ => self.timings.restore += seconds - (self.timings.ranking - ranking),
        }
        next
    }

    fn all(&self) -> Vec<usize> {
        (0..self.lab.samples()).collect()
    }

    fn current(&self) -> &State {
        self.current.as_ref().expect("set by the Quantized state")
    }

    fn met(&self) -> bool {
        self.limits.met(&self.current().judged)
    }

    fn attainable(&self) -> bool {
        let reference = self.reference.as_ref().expect("set by the Baselines state");
        self.limits.attainable(self.metrics, reference)
    }

    fn baselines(&mut self) -> Result<Phase> {
        let all = self.all();
        let given: Option<Vec<f64>> = self
            .metrics
            .iter()
            .map(|m| {
                let target = self.control.metrics.iter().find(|t| t.name == m.name());
                target.and_then(|t| t.baseline_value)
            })
            .collect();
        let baselines = match given {
            Some(values) => {
                let count = ((all.len() as f64) * self.control.metric_subset_ratio).ceil() as usize;
                self.comparison = all[..count.clamp(1, all.len())].to_vec();
                self.reference = Some(self.lab.evaluate_fp32(&self.comparison)?);
                values
            }
            None => {
                let reference = self.lab.evaluate_fp32(&all)?;
                self.comparison = all;
                let values = reference.metrics[..self.metrics.len()]
                    .iter()
                    .map(|m| m.value)
                    .collect();
                self.reference = Some(reference);
                values
            }
        };
        self.limits = Limits {
            allowed: baselines
                .iter()
                .map(|b| self.control.allowed_drop(*b))
                .collect(),
            baselines,
            confidence: self
                .control
                .confidence
                .map(|_| IntervalParams::of(self.control)),
        };
        Ok(Phase::Quantized)
    }

    fn quantized(&mut self) -> Result<Phase> {
        let state = self.evaluate_state(self.start.clone(), "INT8 evaluation")?;
        self.quantized_values = state.evaluation.metrics[..self.metrics.len()]
            .iter()
            .map(|m| m.value)
            .collect();
        self.lab
            .save_intermediate("00_quantized", &state.reverted)?;
        self.record(None, &state, true);
        self.best = Some(state.clone());
        self.current = Some(state);
        Ok(self.after_base(Phase::Quantized))
    }

    /// The state after the base-model state `done`: the next optional base-algorithm change, or the loop.
    fn after_base(&self, done: Phase) -> Phase {
        if self.met() {
            return Phase::DeployedCheck(StopReason::TargetMet);
        }
        if !self.attainable() {
            return Phase::DeployedCheck(StopReason::Unprovable);
        }
        let mixed =
            self.control.convert_to_mixed_preset && self.params.preset == Preset::Performance;
        if done == Phase::Quantized && mixed {
            Phase::MixedPreset
        } else if done != Phase::Tuning && self.control.tune_hyperparams {
            Phase::Tuning
        } else {
            Phase::Restore
        }
    }

    fn mixed_preset(&mut self) -> Result<Phase> {
        let mixed = QuantizationParams {
            preset: Preset::Mixed,
            ..self.params.clone()
        };
        self.try_base(mixed, "INT8 (mixed preset)", "00_quantized_mixed")?;
        Ok(self.after_base(Phase::MixedPreset))
    }

    fn tuning(&mut self) -> Result<Phase> {
        let controlled = self.limits.controlled(&self.current().judged);
        let (index, metric) = self.ranking_metric(controlled)?;
        let (subset, _) = self.subset_for(index, metric);
        if let Some(variant) =
            tuning::best_variant(&mut self.lab, metric, index, &self.params, &subset)?
        {
            if self.try_base(variant.clone(), "INT8 (tuned)", "00_quantized_tuned")? {
                self.tuned = Some(variant);
            }
        }
        Ok(self.after_base(Phase::Tuning))
    }

    /// Re-quantizes with `params`; keeps that model when it lowers the worst excess on the full set, and
    /// goes back to the current parameters otherwise. Returns whether it was kept.
    fn try_base(&mut self, params: QuantizationParams, label: &str, name: &str) -> Result<bool> {
        self.lab.requantize(&params, None)?;
        let candidate = self.evaluate_state(self.start.clone(), label)?;
        let better =
            self.limits.worst(&candidate.judged) < self.limits.worst(&self.current().judged);
        if better {
            self.lab.save_intermediate(name, &candidate.reverted)?;
            // The path starts from the base model the steps will change.
            self.path.clear();
            self.record(None, &candidate, true);
            self.params = params;
            self.best = Some(candidate.clone());
            self.current = Some(candidate);
        } else {
            self.lab.requantize(&self.params.clone(), None)?;
        }
        Ok(better)
    }

    fn restore(&mut self) -> Result<Phase> {
        if self.met() {
            return Ok(Phase::DeployedCheck(StopReason::TargetMet));
        }
        if self
            .control
            .max_iter_num
            .is_some_and(|n| self.steps.len() >= n)
        {
            return Ok(Phase::DeployedCheck(StopReason::MaxIterations));
        }
        let start = Instant::now();
        let picked = self.pick();
        self.timings.ranking += start.elapsed().as_secs_f64();
        let Some(entry) = picked? else {
            return Ok(Phase::DeployedCheck(StopReason::NothingLeft));
        };
        self.revert(entry)?;
        Ok(Phase::Restore)
    }

    /// One step: moves `entry`'s group to its next rung on top of the current model and decides what
    /// follows.
    fn revert(&mut self, entry: RankingEntry) -> Result<()> {
        let no_rung = || Error::Config(format!("group {} has no rung left to try", entry.group));
        let group = self.groups.iter().find(|g| g.id == entry.group);
        let (index, rung) = group.and_then(|g| self.next_rung(g)).ok_or_else(no_rung)?;
        self.tried.insert(entry.group, index + 1);
        let reverted = ladder::with_moved(&self.current().reverted, &entry.nodes);
        let step = self.steps.len() + 1;
        let candidate = self.evaluate_state(reverted, &format!("step {step}"))?;
        let controlled = self.limits.controlled(&self.current().judged);
        let (before, after) = (
            self.current().judged[controlled],
            candidate.judged[controlled],
        );
        let outcome = if self.limits.met(&candidate.judged) {
            StepOutcome::TargetMet
        } else if after < before - EPSILON {
            StepOutcome::DropDecreased
        } else if after <= before + EPSILON {
            StepOutcome::NoImprovement
        } else if self.control.use_prev_if_drop_increase {
            StepOutcome::RolledBack
        } else {
            StepOutcome::KeptDespiteIncrease
        };
        self.steps.push(StepReport {
            step,
            group: entry.group,
            reverted_group: entry
                .nodes
                .iter()
                .map(|e| ladder::parse(e).0.to_string())
                .collect(),
            precision: rung,
            metric: candidate.evaluation.metrics[controlled].value,
            metric_name: self.metrics[controlled].name().into(),
            drop: candidate.drops[controlled],
            judged_drop: self.limits.confidence.map(|_| after),
            kept: outcome.kept(),
            outcome,
            reason: outcome.message().into(),
        });
        self.lab
            .save_intermediate(&format!("step_{step:03}"), &candidate.reverted)?;
        self.record(Some(step), &candidate, outcome.kept());
        if outcome.reranks() {
            self.ranking = None;
        }
        if outcome == StepOutcome::RolledBack {
            return Ok(());
        }
        let best = self.best.as_ref().expect("set by the Quantized state");
        if self.limits.worst(&candidate.judged) < self.limits.worst(&best.judged) - EPSILON
            || self.limits.met(&candidate.judged)
        {
            self.best = Some(candidate.clone());
        }
        self.current = Some(candidate);
        Ok(())
    }

    /// Adds `state`, made by `step` (kept or rolled back), to the path.
    fn record(&mut self, step: Option<usize>, state: &State, kept: bool) {
        let point = self.point_of(step, state, kept);
        self.path.push(point);
    }

    fn point_of(&self, step: Option<usize>, state: &State, kept: bool) -> PathPoint {
        PathPoint {
            step,
            reverted: state.reverted.clone(),
            evaluation: state.evaluation.clone(),
            drops: state.drops.clone(),
            judged: state.judged.clone(),
            kept,
            on_deployed: self.lab.judge_is_deployed(),
        }
    }

    /// The model the run returns: the current one when it meets the target, the best seen otherwise.
    fn final_state(&self) -> &State {
        if self.met() {
            self.current()
        } else {
            self.best.as_ref().expect("set by the Quantized state")
        }
    }

    fn finish(self, stop: StopReason) -> Result<(Verdict, L)> {
        let Some(current) = &self.current else {
            return Err(Error::Interrupted);
        };
        let final_state = if self.limits.met(&current.judged) {
            current.clone()
        } else {
            self.final_state().clone()
        };
        let stop = self.confidence_missed(stop, &final_state);
        let verdict = Verdict {
            reverted: final_state.reverted,
            evaluation: final_state.evaluation,
            reference: self.reference,
            drops: final_state.drops,
            judged: final_state.judged,
            limits: self.limits,
            quantized_values: self.quantized_values,
            preset: self.params.preset,
            tuned: self.tuned,
            steps: self.steps,
            ranking: self.last_ranking,
            ranked_by: self.ranked_by,
            stop,
            deployed: self.deployed,
            timings: self.timings,
            path: self.path,
            targets: self.targets,
        };
        Ok((verdict, self.lab))
    }

    /// A search that ran out of moves with a model meeting the target on its point estimate, though not at
    /// the confidence level asked for, says so instead of just that it ran out.
    fn confidence_missed(&self, stop: StopReason, final_state: &State) -> StopReason {
        let out_of_moves = matches!(stop, StopReason::MaxIterations | StopReason::NothingLeft);
        let point_met = self.limits.met(&final_state.drops);
        if self.limits.confidence.is_some() && out_of_moves && point_met {
            StopReason::NotConfident
        } else {
            stop
        }
    }

    fn evaluate_state(&mut self, reverted: BTreeSet<String>, label: &str) -> Result<State> {
        let all = self.all();
        let evaluation = self.lab.evaluate(&reverted, &all, label)?;
        let drops = self.limits.drops(self.metrics, &evaluation);
        let judged = self
            .limits
            .judged(self.metrics, &evaluation, self.reference.as_ref());
        Ok(State {
            reverted,
            evaluation,
            drops,
            judged,
        })
    }
}

#[path = "picking.rs"]
mod picking;

#[path = "restorer_deployed.rs"]
mod deployed;

#[cfg(test)]
#[path = "restorer_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "ladder_tests.rs"]
mod ladder_tests;

#[cfg(test)]
#[path = "nmse_tests.rs"]
mod nmse_tests;

#[cfg(test)]
#[path = "targets_tests.rs"]
mod targets_tests;
