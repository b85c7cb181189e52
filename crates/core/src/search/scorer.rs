//! The engine's two ways to score ranking candidates: together in [cohorts](super::cohort) (with prefix
//! evaluation where the engine allows it), or one at a time, each model built and run on its own (the
//! `cohorts` lever off). Both give the same values; the ranking cannot tell them apart.

use std::collections::{BTreeSet, HashMap};

use crate::error::Result;
use crate::search::cohort::{self, Cohort};
use crate::search::engine_lab::EngineLab;
use crate::search::lab::{Bench, RankingCandidate};
use crate::search::ranker::{KeepGoing, ScoreRequest, Scorer};

/// What a cohort was prepared for: the model, the base ops, the subset and the metric.
pub(crate) type CohortKey = (String, BTreeSet<String>, Vec<usize>, usize);

/// Candidates evaluated together, sample chunk by sample chunk.
pub(crate) struct CohortScorer<'s, 'a> {
    pub ctx: &'s mut EngineLab<'a>,
    pub key: CohortKey,
    pub members: HashMap<usize, BTreeSet<String>>,
    pub cohort: Option<Cohort>,
    /// The candidates a best-first ranking is advancing one at a time ([`Scorer::expect`]).
    pub front: Vec<usize>,
}

impl<'s, 'a> CohortScorer<'s, 'a> {
    /// A scorer of `members` on top of `base`; takes back the cohort the previous scorer of the same
    /// ranking prepared (kept across the steps of a ranking, so that each is built and prepared once).
    pub fn new(
        ctx: &'s mut EngineLab<'a>,
        base: &BTreeSet<String>,
        members: Vec<RankingCandidate>,
        subset: &[usize],
        metric: usize,
    ) -> Self {
        let key = (ctx.tag(), base.clone(), subset.to_vec(), metric);
        let cohort = match ctx.parked.take() {
            Some((parked, cohort)) if parked == key => Some(cohort),
            _ => None,
        };
        CohortScorer {
            ctx,
            key,
            members: members.into_iter().collect(),
            cohort,
            front: Vec::new(),
        }
    }
}

impl Scorer for CohortScorer<'_, '_> {
    fn width(&self) -> usize {
        self.ctx.cohort_size()
    }

    fn expect(&mut self, front: &[usize]) {
        self.front = front.to_vec();
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        let in_cohort = |cohort: &Option<Cohort>, group: usize| {
            cohort
                .as_ref()
                .is_some_and(|c| c.ids().any(|id| id == group))
        };
        // One candidate outside the prepared cohort runs whole, on every core: a cohort of one would run its
        // suffix after the base model's prefix, more work for nothing shared. One inside it (a best-first
        // ranking advances one member at a time) runs there, on every core too: its model is prepared.
        if let [job] = jobs {
            if !in_cohort(&self.cohort, job.group) {
                let reverted = &self.members[&job.group];
                let values = whole(
                    self.ctx,
                    reverted,
                    &self.key.2,
                    self.key.3,
                    *job,
                    until,
                    keep_going,
                )?;
                return Ok(vec![(job.group, values)]);
            }
        }
        let prepared = jobs.iter().all(|j| in_cohort(&self.cohort, j.group));
        if !prepared {
            self.cohort = None;
            let members: Vec<cohort::Member> = jobs
                .iter()
                .map(|j| cohort::Member {
                    id: j.group,
                    reverted: self.members[&j.group].clone(),
                })
                .collect();
            self.cohort = Some(Cohort::new(self.ctx, &self.key.1, &members)?);
        }
        let starts: HashMap<usize, usize> = jobs.iter().map(|j| (j.group, j.start)).collect();
        let cohort = self.cohort.as_mut().expect("prepared above");
        let subset = &self.key.2[..until];
        let values = cohort.advance(
            self.ctx,
            subset,
            self.key.3,
            |id| starts.get(&id).copied(),
            &self.front,
            keep_going,
        )?;
        self.ctx.counts.subset += jobs.len();
        Ok(values)
    }
}

impl Drop for CohortScorer<'_, '_> {
    fn drop(&mut self) {
        self.ctx.parked = self
            .cohort
            .take()
            .map(|cohort| (std::mem::take(&mut self.key), cohort));
    }
}

/// Candidates evaluated one at a time, each model whole.
pub(crate) struct PlainScorer<'s, 'a> {
    pub ctx: &'s mut EngineLab<'a>,
    pub members: HashMap<usize, BTreeSet<String>>,
    pub subset: Vec<usize>,
    pub metric: usize,
}

impl Scorer for PlainScorer<'_, '_> {
    fn width(&self) -> usize {
        1
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        let mut results = Vec::with_capacity(jobs.len());
        for &job in jobs {
            let reverted = &self.members[&job.group];
            let values = whole(
                self.ctx,
                reverted,
                &self.subset,
                self.metric,
                job,
                until,
                keep_going,
            )?;
            results.push((job.group, values));
        }
        Ok(results)
    }
}

/// Evaluates one candidate's whole model on `subset[job.start..until]`, while `keep_going` says so.
fn whole(
    ctx: &mut EngineLab,
    reverted: &BTreeSet<String>,
    subset: &[usize],
    metric: usize,
    job: ScoreRequest,
    until: usize,
    keep_going: KeepGoing,
) -> Result<Vec<f64>> {
    let model = ctx.build(reverted)?;
    let label = format!("ranking group {}", job.group);
    let values = ctx.evaluator.evaluate_while(
        &model,
        &subset[job.start..until],
        &label,
        metric,
        |values| keep_going(job.group, values),
    )?;
    ctx.counts.subset += 1;
    Ok(values)
}
