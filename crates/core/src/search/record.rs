//! Recording and replaying results beside the loop: [`Recorded`] wraps any [`Lab`], answers from the
//! journal what a previous run recorded and from its cache what this run already computed (the `reuse`
//! lever), and records every new result.
//!
//! The two are kept apart on purpose: replay is for resuming and is always on; reuse is a speed lever, and
//! with it off every repeated evaluation of this run really runs again.

use std::collections::{BTreeSet, HashMap};

use crate::error::{Error, Result};
use crate::eval::{Evaluation, Latency};
use crate::quantize::{FittedQuantizers, QuantizationParams};
use crate::search::groups::QuantizerGroup;
use crate::search::journal::{Journal, ValuesKey};
use crate::search::lab::{Bench, Deployment, EngineId, Lab, Models, RankingCandidate};
use crate::search::ranker::{KeepGoing, ScoreRequest, Scorer};

/// Evaluations keyed by (tag, reverted ops, samples).
type EvaluationKey = (String, BTreeSet<String>, Vec<usize>);

/// A lab whose results are journaled, replayed and (with `reuse`) cached.
pub(crate) struct Recorded<L: Lab> {
    inner: L,
    journal: Journal,
    reuse: bool,
    evaluations: HashMap<EvaluationKey, Evaluation>,
    values: HashMap<ValuesKey, HashMap<usize, f64>>,
    /// Calibrations made in this run, by parameters: switching back to a preset never calibrates again.
    calibrations: HashMap<String, FittedQuantizers>,
}

impl<L: Lab> Recorded<L> {
    /// `inner` with `journal`; `reuse`: answer repeated requests of this run from memory.
    pub fn new(inner: L, journal: Journal, reuse: bool) -> Self {
        Recorded {
            inner,
            journal,
            reuse,
            evaluations: HashMap::new(),
            values: HashMap::new(),
            calibrations: HashMap::new(),
        }
    }

    /// The wrapped lab, taken back.
    pub fn into_inner(self) -> L {
        self.inner
    }

    /// An evaluation under `tag`: replayed, reused, or computed by `compute` and recorded.
    fn evaluation(
        &mut self,
        tag: String,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        compute: impl FnOnce(&mut L) -> Result<Evaluation>,
    ) -> Result<Evaluation> {
        let key = (tag, reverted.clone(), indices.to_vec());
        if let Some(hit) = self.evaluations.get(&key) {
            return Ok(hit.clone());
        }
        let evaluation = match self.journal.evaluation(&key.0, reverted, indices) {
            Some(recorded) => recorded,
            None => {
                let evaluation = compute(&mut self.inner)?;
                self.journal
                    .record_evaluation(&key.0, reverted, &evaluation)?;
                evaluation
            }
        };
        if self.reuse {
            self.evaluations.insert(key, evaluation.clone());
        }
        Ok(evaluation)
    }
}

impl<L: Lab> Bench for Recorded<L> {
    fn samples(&self) -> usize {
        self.inner.samples()
    }

    fn tag(&self) -> String {
        self.inner.tag()
    }

    fn evaluate_fp32(&mut self, indices: &[usize]) -> Result<Evaluation> {
        self.evaluation("fp32".into(), &BTreeSet::new(), indices, |lab| {
            lab.evaluate_fp32(indices)
        })
    }

    fn evaluate(
        &mut self,
        reverted: &BTreeSet<String>,
        indices: &[usize],
        label: &str,
    ) -> Result<Evaluation> {
        let tag = self.inner.tag();
        // A ranking that scored this candidate on every sample asked for has made this evaluation already.
        let ranked = match self.reuse {
            true => {
                let values = &self.values;
                let known = |metric: usize, index: usize| {
                    let key = (tag.clone(), metric, reverted.clone());
                    values.get(&key)?.get(&index).copied()
                };
                self.inner.evaluation_from_values(indices, &known)?
            }
            false => None,
        };
        self.evaluation(tag, reverted, indices, |lab| match ranked {
            Some(evaluation) => Ok(evaluation),
            None => lab.evaluate(reverted, indices, label),
        })
    }

    fn scorer<'s>(
        &'s mut self,
        base: &BTreeSet<String>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Result<Box<dyn Scorer + 's>> {
        let tag = self.inner.tag();
        let reverted = members.iter().cloned().collect();
        let inner = self.inner.scorer(base, members, subset, metric)?;
        Ok(Box::new(RecordedScorer {
            inner,
            journal: &mut self.journal,
            cache: self.reuse.then_some(&mut self.values),
            tag,
            metric,
            reverted,
            subset: subset.to_vec(),
        }))
    }

    fn end_ranking(&mut self) {
        self.inner.end_ranking();
    }

    fn check_interrupt(&self) -> Result<()> {
        self.inner.check_interrupt()
    }
}

impl<L: Lab> Models for Recorded<L> {
    fn groups(&self) -> Vec<QuantizerGroup> {
        self.inner.groups()
    }

    fn integer_kernels(&self, reverted: &BTreeSet<String>) -> usize {
        self.inner.integer_kernels(reverted)
    }

    fn requantize(
        &mut self,
        params: &QuantizationParams,
        _recorded: Option<FittedQuantizers>,
    ) -> Result<Option<FittedQuantizers>> {
        let key = serde_json::to_string(params)
            .map_err(|e| Error::Config(format!("encoding parameters: {e}")))?;
        let known = self
            .calibrations
            .get(&key)
            .cloned()
            .or_else(|| self.journal.calibration(&key));
        let made = self.inner.requantize(params, known)?;
        if let Some(calibration) = &made {
            self.journal.record_calibration(&key, calibration)?;
            self.calibrations.insert(key, calibration.clone());
        }
        Ok(made)
    }

    fn save_intermediate(&self, name: &str, reverted: &BTreeSet<String>) -> Result<()> {
        self.inner.save_intermediate(name, reverted)
    }
}

impl<L: Lab> Deployment for Recorded<L> {
    fn deployed(&self) -> Option<EngineId> {
        self.inner.deployed()
    }

    fn judge_is_deployed(&self) -> bool {
        self.inner.judge_is_deployed()
    }

    fn evaluate_deployed(&mut self, reverted: &BTreeSet<String>) -> Result<Evaluation> {
        let engine = self.inner.deployed().map(|e| {
            format!(
                "{} {} batch {} ({})",
                e.name, e.version, e.batch, e.settings
            )
        });
        let tag = format!("deployed {} / {}", engine.unwrap_or_default(), self.tag());
        let all: Vec<usize> = (0..self.samples()).collect();
        self.evaluation(tag, reverted, &all, |lab| lab.evaluate_deployed(reverted))
    }

    fn judge_on_deployed(&mut self) -> Result<()> {
        self.inner.judge_on_deployed()
    }

    /// Not journaled: a time is measured again, never replayed.
    fn deployed_latency(&mut self, reverted: &BTreeSet<String>) -> Result<Option<Latency>> {
        self.inner.deployed_latency(reverted)
    }
}

/// A scorer answering from the journal's replay and this run's cache first.
struct RecordedScorer<'s> {
    inner: Box<dyn Scorer + 's>,
    journal: &'s mut Journal,
    /// This run's values (`None`: reuse is off).
    cache: Option<&'s mut HashMap<ValuesKey, HashMap<usize, f64>>>,
    tag: String,
    metric: usize,
    /// Each candidate's reverted ops, by group.
    reverted: HashMap<usize, BTreeSet<String>>,
    subset: Vec<usize>,
}

impl RecordedScorer<'_> {
    fn key(&self, group: usize) -> ValuesKey {
        (self.tag.clone(), self.metric, self.reverted[&group].clone())
    }

    fn known(&self, key: &ValuesKey, index: usize) -> Option<f64> {
        let cached = self.cache.as_ref().and_then(|c| c.get(key)?.get(&index));
        cached
            .or_else(|| self.journal.values(key)?.get(&index))
            .copied()
    }
}

impl Scorer for RecordedScorer<'_> {
    fn width(&self) -> usize {
        self.inner.width()
    }

    fn expect(&mut self, front: &[usize]) {
        self.inner.expect(front);
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        // Serve what is known, sample by sample, as the inner scorer would have.
        let mut served: HashMap<usize, Vec<f64>> = HashMap::new();
        let mut rest = Vec::new();
        for job in jobs {
            let key = self.key(job.group);
            let values = served.entry(job.group).or_default();
            let mut position = job.start;
            while position < until {
                let Some(value) = self.known(&key, self.subset[position]) else {
                    break;
                };
                values.push(value);
                position += 1;
                if !keep_going(job.group, values) {
                    position = until;
                }
            }
            if position < until {
                rest.push(ScoreRequest {
                    group: job.group,
                    start: position,
                });
            }
        }
        let computed = if rest.is_empty() {
            Vec::new()
        } else {
            let served = &served;
            let keep_going = |group: usize, new: &[f64]| {
                let all: Vec<f64> = served[&group].iter().chain(new).copied().collect();
                keep_going(group, &all)
            };
            self.inner.extend(&rest, until, &keep_going)?
        };
        for (group, values) in computed {
            let start = rest
                .iter()
                .find(|j| j.group == group)
                .expect("the inner scorer answers its jobs")
                .start;
            let indices = &self.subset[start..start + values.len()];
            let key = self.key(group);
            self.journal.record_values(&key, indices, &values)?;
            if let Some(cache) = &mut self.cache {
                cache
                    .entry(key)
                    .or_default()
                    .extend(indices.iter().copied().zip(values.iter().copied()));
            }
            served.entry(group).or_default().extend(values);
        }
        Ok(served.into_iter().filter(|(_, v)| !v.is_empty()).collect())
    }
}
