//! Ranking: how much reverting each group alone restores the metric on the ranking subset.
//!
//! Scores are oriented so that higher always means "restores more" (a higher-worse metric is negated); the
//! order is by score, ties broken by group id (topological order).
//!
//! The ranking is exact but lazy — a branch and bound. For metrics with bounded per-sample values (accuracy)
//! a candidate's evaluation stops as soon as even a perfect rest of the subset could not beat the best score
//! already known exactly: that candidate cannot come first. Candidates are taken out best first
//! ([`Ranking::next`]); a pruned candidate is resumed only when the ones ahead of it are gone and its bound
//! still competes. The subset is ordered worst-first for the current model, so a candidate that does not fix
//! those samples accumulates its deficit within the first few dozen samples. The result is the same order a
//! full evaluation of every candidate would give, at a fraction of the inferences.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::metric::Direction;
use crate::search::cohort::{Cohort, Member};
use crate::search::context::SearchContext;
use crate::search::groups::QuantizerGroup;
use crate::search::journal::RankingState;
use crate::search::report::RankingEntry;

/// Samples every candidate is evaluated on before the first one is evaluated to the end.
const PROBE: usize = 16;

struct Candidate {
    group: usize,
    nodes: Vec<String>,
    /// Per-sample values of the ranking metric on the first `values.len()` samples of the subset.
    values: Vec<f64>,
}

/// A lazily evaluated ranking of groups.
pub(super) struct Ranking {
    candidates: Vec<Candidate>,
    reverted: BTreeSet<String>,
    subset: Vec<usize>,
    metric: usize,
    direction: Direction,
    bounds: Option<(f64, f64)>,
    taken: Vec<RankingEntry>,
    /// The candidates currently prepared to be evaluated together.
    cohort: Option<Cohort>,
    /// After a replay from the journal: the groups the cohort had, to prepare again.
    replayed_cohort: Option<Vec<usize>>,
}

impl Ranking {
    /// A ranking of `candidates` (ids into `groups`) on top of the ops already `reverted`, by metric
    /// number `metric` on `subset` (evaluated in the given order).
    pub fn new(
        ctx: &SearchContext,
        groups: &[QuantizerGroup],
        candidates: &[usize],
        reverted: &BTreeSet<String>,
        subset: Vec<usize>,
        metric: usize,
    ) -> Self {
        let m = ctx.evaluator.metrics()[metric];
        Ranking {
            candidates: candidates
                .iter()
                .map(|&id| Candidate {
                    group: id,
                    nodes: groups[id].nodes.clone(),
                    values: Vec::new(),
                })
                .collect(),
            reverted: reverted.clone(),
            subset,
            metric,
            direction: m.direction(),
            bounds: m.sample_bounds(),
            taken: Vec::new(),
            cohort: None,
            replayed_cohort: None,
        }
    }

    /// The metric this ranking is for.
    pub fn metric(&self) -> usize {
        self.metric
    }

    /// Oriented sum of per-sample values: higher restores more.
    fn oriented(&self, sum: f64) -> f64 {
        match self.direction {
            Direction::HigherBetter => sum,
            Direction::HigherWorse => -sum,
        }
    }

    /// The best oriented total `values` can still reach over the whole subset.
    fn optimistic(&self, values: &[f64]) -> f64 {
        let remaining = (self.subset.len() - values.len()) as f64;
        let sum: f64 = values.iter().sum();
        match (self.bounds, self.direction) {
            _ if remaining == 0.0 => self.oriented(sum),
            (None, _) => f64::INFINITY,
            (Some((_, hi)), Direction::HigherBetter) => sum + remaining * hi,
            (Some((lo, _)), Direction::HigherWorse) => -(sum + remaining * lo),
        }
    }

    fn complete(&self, c: &Candidate) -> bool {
        c.values.len() == self.subset.len()
    }

    /// Takes the best remaining group out of the ranking, evaluating only what decides it.
    pub fn next(&mut self, ctx: &mut SearchContext) -> Result<Option<RankingEntry>> {
        let (tag, n) = (ctx.model_tag, self.taken.len());
        if let Some((entry, state)) =
            ctx.journal
                .pick(tag, &self.reverted, self.metric, &self.subset, n)
        {
            self.replay(&entry, state);
            return Ok(Some(entry));
        }
        let entry = self.search(ctx)?;
        if let Some(entry) = &entry {
            let state = RankingState {
                values: self
                    .candidates
                    .iter()
                    .map(|c| (c.group, c.values.clone()))
                    .collect(),
                cohort: self
                    .cohort
                    .as_ref()
                    .map(|c| c.ids().collect())
                    .or_else(|| self.replayed_cohort.clone())
                    .unwrap_or_default(),
            };
            ctx.journal.record_pick(
                tag,
                &self.reverted,
                self.metric,
                &self.subset,
                (entry.clone(), state),
            )?;
        }
        Ok(entry)
    }

    /// Takes out `entry` as a journal recorded it, and restores the ranking's state of that moment (the
    /// cohort is prepared again when next needed).
    fn replay(&mut self, entry: &RankingEntry, state: RankingState) {
        self.candidates.retain(|c| c.group != entry.group);
        for (group, values) in state.values {
            if let Some(c) = self.candidates.iter_mut().find(|c| c.group == group) {
                c.values = values;
            }
        }
        self.taken.push(entry.clone());
        self.cohort = None;
        self.replayed_cohort = Some(state.cohort);
    }

    /// Finds the best remaining group, evaluating only what decides it.
    fn search(&mut self, ctx: &mut SearchContext) -> Result<Option<RankingEntry>> {
        loop {
            // The best exactly known candidate: (oriented total, group).
            let best = self
                .candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| self.complete(c))
                .map(|(i, c)| (i, self.optimistic(&c.values), c.group))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)));
            let beats = |score: f64, group: usize, best: Option<(usize, f64, usize)>| match best {
                None => true,
                Some((_, s, g)) => score > s || (score == s && group < g),
            };
            // The most promising candidate that could still beat it.
            let challenger = self
                .candidates
                .iter()
                .enumerate()
                .filter(|(_, c)| !self.complete(c))
                .map(|(i, c)| (i, self.optimistic(&c.values), c.group))
                .filter(|&(_, s, g)| !ctx.levers.early_stop || beats(s, g, best))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)));
            let rival = best.map(|b| (b.1, b.2));
            match (challenger, best) {
                (Some((i, _, _)), _) if !ctx.levers.cohorts => self.advance(ctx, i, rival)?,
                // Nothing is known exactly yet: find a strong first score cheaply. The cohort is probed
                // on the first (most telling) samples together; its leader is then evaluated to the end,
                // so that the bound it sets prunes the others early.
                (Some(_), None) => {
                    self.ensure_cohort(ctx, None)?;
                    let members = self.cohort_challengers(ctx, None, self.subset.len());
                    let probing = members.len() > 1
                        && members
                            .iter()
                            .any(|&m| self.candidates[m].values.len() < PROBE);
                    if probing {
                        self.advance_cohort(ctx, None, PROBE)?;
                    } else {
                        let leader = members
                            .into_iter()
                            .max_by(|&a, &b| self.by_promise(a, b))
                            .expect("the cohort holds a challenger");
                        self.advance(ctx, leader, None)?;
                    }
                }
                (Some(_), Some(_)) => {
                    self.ensure_cohort(ctx, rival)?;
                    self.advance_cohort(ctx, rival, self.subset.len())?;
                }
                (None, Some((i, score, _))) => {
                    let c = self.candidates.remove(i);
                    let entry = RankingEntry {
                        group: c.group,
                        nodes: c.nodes,
                        score: score / self.subset.len() as f64 * self.sign(),
                        exact: true,
                    };
                    self.taken.push(entry.clone());
                    return Ok(Some(entry));
                }
                (None, None) => return Ok(None),
            }
        }
    }

    /// Whether a candidate whose values so far are `values` may still beat `rival` (score, group).
    fn competes(
        &self,
        values: &[f64],
        group: usize,
        rival: Option<(f64, usize)>,
        early_stop: bool,
    ) -> bool {
        let Some((score, rival_group)) = rival.filter(|_| early_stop) else {
            return true;
        };
        let optimistic = self.optimistic(values);
        optimistic > score || (optimistic == score && group < rival_group)
    }

    /// Orders candidates `a` and `b` by promise: optimistic score, ties going to the lower group id.
    fn by_promise(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (a, b) = (&self.candidates[a], &self.candidates[b]);
        self.optimistic(&a.values)
            .total_cmp(&self.optimistic(&b.values))
            .then(b.group.cmp(&a.group))
    }

    /// Indices of the cohort's members that are incomplete, have fewer than `until` values and could still
    /// beat `rival`.
    fn cohort_challengers(
        &self,
        ctx: &SearchContext,
        rival: Option<(f64, usize)>,
        until: usize,
    ) -> Vec<usize> {
        let Some(cohort) = &self.cohort else {
            return Vec::new();
        };
        let ids: BTreeSet<usize> = cohort.ids().collect();
        (0..self.candidates.len())
            .filter(|&i| {
                let c = &self.candidates[i];
                ids.contains(&c.group)
                    && c.values.len() < until.min(self.subset.len())
                    && self.competes(&c.values, c.group, rival, ctx.levers.early_stop)
            })
            .collect()
    }

    /// Keeps the current cohort while one of its members could still beat `rival`; otherwise prepares the
    /// most promising challengers as the next one (as many as fit in memory).
    fn ensure_cohort(&mut self, ctx: &SearchContext, rival: Option<(f64, usize)>) -> Result<()> {
        if let Some(groups) = self.replayed_cohort.take().filter(|g| !g.is_empty()) {
            let members: Vec<usize> = (0..self.candidates.len())
                .filter(|&i| groups.contains(&self.candidates[i].group))
                .collect();
            self.cohort = Some(self.prepare_cohort(ctx, &members)?);
        }
        if !self
            .cohort_challengers(ctx, rival, self.subset.len())
            .is_empty()
        {
            return Ok(());
        }
        self.cohort = None;
        let mut challengers: Vec<usize> = (0..self.candidates.len())
            .filter(|&i| {
                let c = &self.candidates[i];
                !self.complete(c) && self.competes(&c.values, c.group, rival, ctx.levers.early_stop)
            })
            .collect();
        challengers.sort_by(|&a, &b| self.by_promise(b, a));
        challengers.truncate(ctx.cohort_size());
        self.cohort = Some(self.prepare_cohort(ctx, &challengers)?);
        Ok(())
    }

    /// A cohort of candidates `indices`.
    fn prepare_cohort(&self, ctx: &SearchContext, indices: &[usize]) -> Result<Cohort> {
        let members: Vec<Member> = indices
            .iter()
            .map(|&i| {
                let mut reverted = self.reverted.clone();
                reverted.extend(self.candidates[i].nodes.iter().cloned());
                Member {
                    id: self.candidates[i].group,
                    reverted,
                }
            })
            .collect();
        Cohort::new(ctx, &self.reverted, &members)
    }

    /// Evaluates the cohort's members that could still beat `rival` (score, group) further, together (see
    /// [`cohort`]): each until it has `until` values, completes, or can no longer beat it.
    fn advance_cohort(
        &mut self,
        ctx: &mut SearchContext,
        rival: Option<(f64, usize)>,
        until: usize,
    ) -> Result<()> {
        let early_stop = ctx.levers.early_stop;
        let members = self.cohort_challengers(ctx, rival, until);
        let by_group: std::collections::HashMap<usize, usize> = members
            .iter()
            .map(|&i| (self.candidates[i].group, i))
            .collect();
        let mut cohort = self.cohort.take().expect("a cohort is prepared");
        let this = &*self;
        let result = cohort.advance(
            ctx,
            &this.subset,
            this.metric,
            |group| {
                by_group
                    .get(&group)
                    .map(|&i| this.candidates[i].values.len())
            },
            |group, values| {
                let c = &this.candidates[by_group[&group]];
                let all: Vec<f64> = c.values.iter().chain(values).copied().collect();
                all.len() < until && this.competes(&all, c.group, rival, early_stop)
            },
        );
        self.cohort = Some(cohort);
        for (group, values) in result? {
            self.candidates[by_group[&group]].values.extend(values);
        }
        Ok(())
    }

    fn sign(&self) -> f64 {
        match self.direction {
            Direction::HigherBetter => 1.0,
            Direction::HigherWorse => -1.0,
        }
    }

    /// Evaluates candidate `i` further, until it completes or can no longer beat `rival`.
    fn advance(
        &mut self,
        ctx: &mut SearchContext,
        i: usize,
        rival: Option<(f64, usize)>,
    ) -> Result<()> {
        let mut reverted = self.reverted.clone();
        reverted.extend(self.candidates[i].nodes.iter().cloned());
        let done = self.candidates[i].values.len();
        let rest = self.subset[done..].to_vec();
        let prefix = self.candidates[i].values.clone();
        let group = self.candidates[i].group;
        let label = format!("ranking group {group}");
        let early_stop = ctx.levers.early_stop;
        let model = ctx.build(&reverted)?;
        let values =
            ctx.evaluator
                .evaluate_while(&model, &rest, &label, self.metric, |values| {
                    let all: Vec<f64> = prefix.iter().chain(values).copied().collect();
                    self.competes(&all, group, rival, early_stop)
                })?;
        ctx.counts.subset += 1;
        self.candidates[i].values.extend(values);
        Ok(())
    }

    /// Every entry: those taken (exact scores), then the rest with their exact score or, when pruned, the
    /// bound that ruled them out.
    pub fn entries(&self) -> Vec<RankingEntry> {
        let n = self.subset.len() as f64;
        let mut rest: Vec<RankingEntry> = self
            .candidates
            .iter()
            .map(|c| RankingEntry {
                group: c.group,
                nodes: c.nodes.clone(),
                score: self.optimistic(&c.values) / n * self.sign(),
                exact: self.complete(c),
            })
            .collect();
        rest.sort_by(|a, b| {
            (b.score * self.sign())
                .total_cmp(&(a.score * self.sign()))
                .then(a.group.cmp(&b.group))
        });
        self.taken.iter().cloned().chain(rest).collect()
    }
}
