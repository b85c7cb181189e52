//! Ranking: how much reverting each group alone restores the metric on the ranking subset — a pure branch
//! and bound over a [`Scorer`].
//!
//! A group's score is the metric's own aggregate ([`SampleMetric::aggregate`](crate::metric::SampleMetric::aggregate)) of its per-sample values on the
//! subset, oriented so that higher always means "restores more" (a higher-worse metric is negated); the order
//! is by score, ties going to the cheaper revert (the fewer integer kernels the deployed engine loses:
//! [`crate::search::lab::Models::integer_kernels`]), then to the lower group id (topological order). The score is the
//! quantity the run is judged on; with equal costs the order is the score's alone.
//!
//! The ranking is exact but lazy. When the aggregate is the mean and one sample's value is bounded
//! ([`SampleMetric::sample_bounds`](crate::metric::SampleMetric::sample_bounds), e.g. accuracy), a candidate's evaluation stops as soon as even a perfect rest
//! of the subset could not beat the best score already known exactly: that candidate cannot come first.
//! Candidates are taken out best first ([`Ranking::next`]); a pruned candidate is resumed only when the ones
//! ahead of it are gone and its bound still competes. Until a first score is exact, the candidates are
//! evaluated best first too (the one whose bound is highest, until it falls behind the next: A* on the
//! bounds), so that the first score completed is the best one and prunes the most. Where the current model
//! scores the worst a sample can on the subset's first samples (the subset comes worst first), every
//! candidate is first *probed* on them: a candidate differs from the current model in one group and mostly
//! scores the same there, so none is pruned before about that many samples anyway, and the one that does
//! better there shows it before any is completed. Without the probe the best-first search runs within the
//! first cohort, whose best (by ties, the cheapest reverts) would be completed even when an unevaluated
//! candidate beats it (MobileNetV2: a 300-sample completion and several half ones, 7.6 → 5.3 s of ranking).
//! The result is the order a full evaluation of every candidate gives (a property test checks it), at a
//! fraction of the inferences.
//!
//! This module decides *what* to evaluate; a [`Scorer`] does it (cohorts with prefix evaluation, plain
//! evaluation, the journal's replay, or a test's script). It holds no model, engine or journal: a ranking is a
//! function of the candidates and the values the scorer returns.

use std::collections::BTreeSet;

use crate::error::Result;
use crate::eval::aggregate;
use crate::metric::{Direction, Metric, Scoring};
use crate::search::report::RankingEntry;

/// Samples the first cohort is probed on together when not every candidate is, and the fewest a probe of
/// every candidate takes (fewer leading worst samples tell too little to pay for a pass over all of them).
const MIN_PROBE: usize = 16;

/// One request to a [`Scorer`]: extend `group`'s values from position `start` of the subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScoreRequest {
    /// The candidate's group id.
    pub group: usize,
    /// Position in the subset of the first sample to evaluate.
    pub start: usize,
}

/// Whether a candidate should be evaluated on one more sample, given the values this call produced so far.
pub(crate) type KeepGoing<'k> = &'k (dyn Fn(usize, &[f64]) -> bool + Sync);

/// Scores ranking candidates, sample by sample along the ranking subset.
pub(crate) trait Scorer {
    /// How many candidates are best evaluated together (1: one at a time, each to its end).
    fn width(&self) -> usize;

    /// Says which candidates the next calls advance one at a time, best first, until one of them completes
    /// (none: the calls advance what they name). A hint for a scorer that shares work between candidates —
    /// the boundary values of a chunk of samples serve every candidate that reaches it — and never a change
    /// in the values.
    fn expect(&mut self, _front: &[usize]) {}

    /// Evaluates each job's candidate on the subset from its `start`, in subset order, at least one sample
    /// each, until position `until` or until `keep_going(group, values of this call)` answers false (a few
    /// more values may come back). Returns the new values per group.
    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>>;
}

struct Candidate {
    group: usize,
    nodes: Vec<String>,
    /// What reverting it costs in speed.
    cost: usize,
    /// Per-sample values of the ranking metric on the first `values.len()` samples of the subset.
    values: Vec<f64>,
    /// The oriented aggregate, once `values` cover the subset.
    score: Option<f64>,
}

/// How a tie in score is broken: the lower (cost, group id) comes first.
type Tie = (usize, usize);

/// A known score and its tie-breaker: what a challenger must beat.
type Rival = Option<(f64, Tie)>;

/// A lazily evaluated ranking of groups by one metric.
pub(crate) struct Ranking<'m> {
    candidates: Vec<Candidate>,
    subset_len: usize,
    /// Samples every candidate is evaluated on before any is evaluated further, when that pays.
    probe: Option<usize>,
    metric: &'m dyn Metric,
    /// Bounds of a sample's value, when they bound the aggregate (it is the mean) and early stop is on.
    bounds: Option<(f64, f64)>,
    taken: Vec<RankingEntry>,
    /// The groups currently evaluated together.
    cohort: BTreeSet<usize>,
}

impl<'m> Ranking<'m> {
    /// A ranking of `candidates` (group id, ops, revert cost) by `metric` on a subset on which the current
    /// model scores `current` (per sample, in subset order); `early_stop`: prune with the metric's sample
    /// bounds when they bound its aggregate.
    pub fn new(
        candidates: Vec<(usize, Vec<String>, usize)>,
        current: &[f64],
        metric: &'m dyn Metric,
        early_stop: bool,
    ) -> Self {
        // Only a per-sample metric whose aggregate is the mean has bounds on a partly evaluated aggregate.
        let bounds = match metric.scoring() {
            Scoring::PerSample(per_sample) => per_sample
                .sample_bounds()
                .filter(|_| early_stop && per_sample.aggregate_is_mean()),
            Scoring::WholeSet(_) => None,
        };
        let subset_len = current.len();
        let worst = bounds.map(|(lo, hi)| match metric.direction() {
            Direction::HigherBetter => lo,
            Direction::HigherWorse => hi,
        });
        let at_worst = current.iter().take_while(|&&v| Some(v) == worst).count();
        Ranking {
            candidates: candidates
                .into_iter()
                .map(|(group, nodes, cost)| Candidate {
                    group,
                    nodes,
                    cost,
                    values: Vec::new(),
                    score: None,
                })
                .collect(),
            subset_len,
            probe: probe_depth(at_worst, subset_len),
            metric,
            bounds,
            taken: Vec::new(),
            cohort: BTreeSet::new(),
        }
    }

    fn oriented(&self, value: f64) -> f64 {
        match self.metric.direction() {
            Direction::HigherBetter => value,
            Direction::HigherWorse => -value,
        }
    }

    /// The best oriented score `values` (of an incomplete candidate) can still reach over the whole subset.
    fn optimistic(&self, values: &[f64]) -> f64 {
        let remaining = (self.subset_len - values.len()) as f64;
        let sum: f64 = values.iter().sum();
        let n = self.subset_len as f64;
        match (self.bounds, self.metric.direction()) {
            (None, _) => f64::INFINITY,
            (Some((_, hi)), Direction::HigherBetter) => (sum + remaining * hi) / n,
            (Some((lo, _)), Direction::HigherWorse) => -(sum + remaining * lo) / n,
        }
    }

    fn complete(&self, c: &Candidate) -> bool {
        c.score.is_some()
    }

    /// A candidate's exact score, or the best it can still reach.
    fn bound(&self, c: &Candidate) -> f64 {
        c.score.unwrap_or_else(|| self.optimistic(&c.values))
    }

    /// Whether a candidate whose values so far are `values` may still beat `rival`.
    fn competes(&self, values: &[f64], tie: Tie, rival: Rival) -> bool {
        let Some((score, rival_tie)) = rival else {
            return true;
        };
        let optimistic = self.optimistic(values);
        optimistic > score || (optimistic == score && tie < rival_tie)
    }

    /// Orders candidates `a` and `b` by promise: optimistic score, ties going to the lower [`Tie`].
    fn by_promise(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (a, b) = (&self.candidates[a], &self.candidates[b]);
        self.bound(a)
            .total_cmp(&self.bound(b))
            .then(tie(b).cmp(&tie(a)))
    }

    /// Takes the best remaining group out of the ranking, evaluating only what decides it.
    pub fn next(&mut self, scorer: &mut dyn Scorer) -> Result<Option<RankingEntry>> {
        loop {
            // The best exactly known candidate: (index, oriented score, group).
            let best = (0..self.candidates.len())
                .filter(|&i| self.complete(&self.candidates[i]))
                .max_by(|&a, &b| self.by_promise(a, b))
                .map(|i| {
                    let c = &self.candidates[i];
                    (i, self.bound(c), tie(c))
                });
            let rival = best.map(|(_, s, t)| (s, t));
            // The most promising candidate that could still beat it.
            let challenger = (0..self.candidates.len())
                .filter(|&i| {
                    let c = &self.candidates[i];
                    !self.complete(c) && self.competes(&c.values, tie(c), rival)
                })
                .max_by(|&a, &b| self.by_promise(a, b));
            match (challenger, best) {
                (Some(i), _) if scorer.width() <= 1 => {
                    self.extend(scorer, &[i], self.subset_len, rival)?
                }
                // Nothing is known exactly yet: find the best score, and only it, to the end.
                (Some(_), None) => match self.probe {
                    Some(depth) => self.probe_then_front(scorer, depth)?,
                    None => self.cohort_front(scorer)?,
                },
                (Some(_), Some(_)) => {
                    scorer.expect(&[]);
                    self.ensure_cohort(scorer.width(), rival);
                    let members = self.cohort_challengers(rival, self.subset_len);
                    self.extend(scorer, &members, self.subset_len, rival)?;
                }
                (None, Some((i, score, _))) => {
                    let c = self.candidates.remove(i);
                    let entry = RankingEntry {
                        group: c.group,
                        nodes: c.nodes,
                        score: self.oriented(score),
                        exact: true,
                    };
                    self.taken.push(entry.clone());
                    return Ok(Some(entry));
                }
                (None, None) => return Ok(None),
            }
        }
    }

    /// One step towards the first exact score, every candidate probed: each is evaluated on the first `depth`
    /// samples, a cohort at a time; then the most promising of all is advanced (best first), in a cohort of
    /// the most promising.
    fn probe_then_front(&mut self, scorer: &mut dyn Scorer, depth: usize) -> Result<()> {
        if self.ensure_probe_cohort(scorer.width(), depth) {
            let probes = self.cohort_challengers(None, depth);
            scorer.expect(&[]);
            return self.extend(scorer, &probes, depth, None);
        }
        self.ensure_front_cohort(scorer.width());
        let front: Vec<usize> = (self.candidates.iter())
            .map(|c| c.group)
            .filter(|g| self.cohort.contains(g))
            .collect();
        scorer.expect(&front);
        self.advance_front(scorer, (0..self.candidates.len()).collect())
    }

    /// One step towards the first exact score when no probe pays: the first cohort is probed on the first
    /// [`MIN_PROBE`] samples together, then evaluated best first; its best, once exact, prunes the rest.
    fn cohort_front(&mut self, scorer: &mut dyn Scorer) -> Result<()> {
        self.ensure_cohort(scorer.width(), None);
        let members = self.cohort_challengers(None, self.subset_len);
        let probes = self.cohort_challengers(None, MIN_PROBE);
        if members.len() > 1 && !probes.is_empty() {
            return self.extend(scorer, &probes, MIN_PROBE, None);
        }
        let front: Vec<usize> = members.iter().map(|&i| self.candidates[i].group).collect();
        scorer.expect(&front);
        self.advance_front(scorer, members)
    }

    /// One best-first step over `members` (incomplete, no exact score known): the most promising one is
    /// evaluated for as long as it stays ahead of the next one. A member thus completes only while no other
    /// could beat it, so the first score known exactly is the best of all, and every other member has been
    /// evaluated only until its bound fell below that score — what pruning by that score costs, without
    /// first completing a weaker leader whose score prunes less.
    fn advance_front(&mut self, scorer: &mut dyn Scorer, mut members: Vec<usize>) -> Result<()> {
        members.sort_by(|&a, &b| self.by_promise(b, a));
        let next: Rival = members.get(1).map(|&i| {
            let c = &self.candidates[i];
            (self.bound(c), tie(c))
        });
        // The front member is ahead of `next` (sorted by promise), so it gets at least one more value.
        self.extend(scorer, &members[..1], self.subset_len, next)
    }

    /// Indices of the cohort's members that are incomplete, have fewer than `until` values and could still
    /// beat `rival`.
    fn cohort_challengers(&self, rival: Rival, until: usize) -> Vec<usize> {
        (0..self.candidates.len())
            .filter(|&i| {
                let c = &self.candidates[i];
                self.cohort.contains(&c.group)
                    && c.values.len() < until.min(self.subset_len)
                    && self.competes(&c.values, tie(c), rival)
            })
            .collect()
    }

    /// Keeps the current cohort while one of its members has fewer than `depth` values; otherwise takes the
    /// `width` most promising such candidates as the next one. Returns whether a cohort has members to probe.
    fn ensure_probe_cohort(&mut self, width: usize, depth: usize) -> bool {
        if !self.cohort_challengers(None, depth).is_empty() {
            return true;
        }
        let unprobed = (0..self.candidates.len())
            .filter(|&i| self.candidates[i].values.len() < depth)
            .collect();
        self.cohort_of_most_promising(unprobed, width);
        !self.cohort.is_empty()
    }

    /// Keeps the current cohort while it holds the most promising candidate; otherwise takes the `width` most
    /// promising as the next one: the best-first steps then advance members already prepared.
    fn ensure_front_cohort(&mut self, width: usize) {
        let leader = (0..self.candidates.len()).max_by(|&a, &b| self.by_promise(a, b));
        if leader.is_some_and(|i| !self.cohort.contains(&self.candidates[i].group)) {
            self.cohort_of_most_promising((0..self.candidates.len()).collect(), width);
        }
    }

    /// Keeps the current cohort while one of its members could still beat `rival`; otherwise takes the
    /// `width` most promising challengers as the next one.
    fn ensure_cohort(&mut self, width: usize, rival: Rival) {
        if !self.cohort_challengers(rival, self.subset_len).is_empty() {
            return;
        }
        let challengers = (0..self.candidates.len())
            .filter(|&i| {
                let c = &self.candidates[i];
                !self.complete(c) && self.competes(&c.values, tie(c), rival)
            })
            .collect();
        self.cohort_of_most_promising(challengers, width);
    }

    /// Makes the `width` most promising of candidates `pool` the cohort.
    fn cohort_of_most_promising(&mut self, mut pool: Vec<usize>, width: usize) {
        pool.sort_by(|&a, &b| self.by_promise(b, a));
        pool.truncate(width.max(1));
        self.cohort = pool.iter().map(|&i| self.candidates[i].group).collect();
    }

    /// Evaluates candidates `indices` further, each until it has `until` values, completes, or can no
    /// longer beat `rival`.
    fn extend(
        &mut self,
        scorer: &mut dyn Scorer,
        indices: &[usize],
        until: usize,
        rival: Rival,
    ) -> Result<()> {
        let until = until.min(self.subset_len);
        let jobs: Vec<ScoreRequest> = indices
            .iter()
            .map(|&i| ScoreRequest {
                group: self.candidates[i].group,
                start: self.candidates[i].values.len(),
            })
            .collect();
        let this = &*self;
        let keep_going = |group: usize, new: &[f64]| {
            let c = this
                .candidates
                .iter()
                .find(|c| c.group == group)
                .expect("jobs are candidates");
            let all: Vec<f64> = c.values.iter().chain(new).copied().collect();
            all.len() < until && this.competes(&all, tie(c), rival)
        };
        let results = scorer.extend(&jobs, until, &keep_going)?;
        for (group, values) in results {
            let Some(i) = self.candidates.iter().position(|c| c.group == group) else {
                continue;
            };
            let room = self.subset_len - self.candidates[i].values.len();
            self.candidates[i]
                .values
                .extend(values.into_iter().take(room));
            if self.candidates[i].values.len() == self.subset_len {
                let aggregate = aggregate(self.metric, &self.candidates[i].values)?;
                self.candidates[i].score = Some(self.oriented(aggregate));
            }
        }
        Ok(())
    }

    /// The candidates not taken yet: (group, ops).
    pub fn remaining(&self) -> Vec<(usize, Vec<String>)> {
        self.candidates
            .iter()
            .map(|c| (c.group, c.nodes.clone()))
            .collect()
    }

    /// Every entry: those taken (exact scores), then the rest with their exact score or, when pruned, the
    /// bound that ruled them out.
    pub fn entries(&self) -> Vec<RankingEntry> {
        let mut rest: Vec<(f64, Tie, RankingEntry)> = self
            .candidates
            .iter()
            .map(|c| {
                let oriented = self.bound(c);
                let entry = RankingEntry {
                    group: c.group,
                    nodes: c.nodes.clone(),
                    score: self.oriented(oriented),
                    exact: self.complete(c),
                };
                (oriented, tie(c), entry)
            })
            .collect();
        rest.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.taken
            .iter()
            .cloned()
            .chain(rest.into_iter().map(|(_, _, e)| e))
            .collect()
    }
}

/// How deep every candidate is probed, given the subset's `at_worst` leading samples on which the current
/// model scores the worst a sample can. Between [`MIN_PROBE`] and half the subset: that deep. Fewer: a probe of
/// the first cohort tells enough (the candidates soon differ). More: candidates that do better than the current
/// model on some of those samples are pruned well before that by the first exact score, which a probe of
/// them all would postpone.
fn probe_depth(at_worst: usize, subset_len: usize) -> Option<usize> {
    (MIN_PROBE..=subset_len / 2)
        .contains(&at_worst)
        .then_some(at_worst)
}

/// A candidate's tie-breaker: its cost, then its group id.
fn tie(c: &Candidate) -> Tie {
    (c.cost, c.group)
}

#[cfg(test)]
#[path = "ranker_tests.rs"]
mod tests;
