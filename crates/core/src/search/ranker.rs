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
use crate::quantize::ModelForm;
use crate::search::context::SearchContext;
use crate::search::groups::QuantizerGroup;
use crate::search::report::RankingEntry;

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
                .filter(|&(_, s, g)| beats(s, g, best))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)));
            match (challenger, best) {
                (Some((i, _, _)), _) => self.advance(ctx, i, best.map(|b| (b.1, b.2)))?,
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
        let model = ctx
            .quantized
            .build(&reverted, ctx.restore_mode, ModelForm::Evaluation)?;
        let done = self.candidates[i].values.len();
        let rest = self.subset[done..].to_vec();
        let prefix = self.candidates[i].values.clone();
        let group = self.candidates[i].group;
        let label = format!("ranking group {group}");
        let values =
            ctx.evaluator
                .evaluate_while(&model, &rest, &label, self.metric, |values| {
                    let Some((score, rival_group)) = rival else {
                        return true;
                    };
                    let all: Vec<f64> = prefix.iter().chain(values).copied().collect();
                    let optimistic = self.optimistic(&all);
                    optimistic > score || (optimistic == score && group < rival_group)
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
