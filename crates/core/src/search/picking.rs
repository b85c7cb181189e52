//! What the restore loop reverts next: the ranking it keeps, the metric it ranks by, and the ranking subset.

use crate::error::{Error, Result};
use crate::metric::{Direction, Metric};
use crate::params::RankingScore;
use crate::search::lab::Lab;
use crate::search::ladder;
use crate::search::ranker::Ranking;
use crate::search::report::{RankedBy, RankingEntry};
use crate::search::subset::ranking_subset;

use super::{Current, Restorer};

impl<'m, L: Lab> Restorer<'m, L> {
    /// The next group to move, at its next rung: from the current ranking, or a new one over the groups with
    /// a rung left to try (`None`: there are none).
    pub(crate) fn pick(&mut self) -> Result<Option<RankingEntry>> {
        let controlled = self.limits.controlled(&self.current().judged);
        if self.groups.is_empty() {
            self.groups = self.lab.groups();
        }
        loop {
            if self
                .ranking
                .as_ref()
                .is_some_and(|r| r.controlled != controlled)
            {
                self.ranking = None;
            }
            if self.ranking.is_none() {
                let candidates = self.candidates();
                if candidates.is_empty() {
                    return Ok(None);
                }
                let (index, metric) = self.ranking_metric(controlled)?;
                let (subset, current) = self.subset_for(index, metric);
                let ranking = Ranking::new(candidates, &current, metric, self.early_stop);
                self.ranking = Some(Current {
                    ranking,
                    base: self.current().reverted.clone(),
                    subset,
                    controlled,
                    metric: index,
                });
            }
            let r = self.ranking.as_mut().expect("set above");
            let members = r
                .ranking
                .remaining()
                .into_iter()
                .map(|(group, entries)| (group, ladder::with_moved(&r.base, &entries)))
                .collect();
            let mut scorer = self.lab.scorer(&r.base, members, &r.subset, r.metric)?;
            let next = r.ranking.next(scorer.as_mut())?;
            drop(scorer);
            self.last_ranking = r.ranking.entries();
            match next {
                Some(entry) => return Ok(Some(entry)),
                None => self.ranking = None,
            }
        }
    }

    /// The groups with a rung left to try that moves something, each as (group id, its ladder entries at that
    /// rung, the integer kernels the move costs the deployed engine).
    fn candidates(&self) -> Vec<(usize, Vec<String>, usize)> {
        let current = &self.current().reverted;
        let kernels = self.lab.integer_kernels(current);
        self.groups
            .iter()
            .filter_map(|g| {
                let (_, rung) = self.next_rung(g)?;
                let entries: Vec<String> = g
                    .ops_at(rung)
                    .iter()
                    .map(|n| ladder::entry(n, rung))
                    .collect();
                // A move that changes nothing (the group already there) is no candidate.
                if entries.iter().all(|e| current.contains(e)) {
                    return None;
                }
                let moved = ladder::with_moved(current, &entries);
                let cost = kernels.saturating_sub(self.lab.integer_kernels(&moved));
                Some((g.id, entries, cost))
            })
            .collect()
    }

    /// What ranks the groups for controlled metric `controlled`: its evaluation entry and the metric. That is
    /// the metric itself, unless groups are ranked by output NMSE — when asked (`ranking_score: nmse`), or
    /// (`auto`) when the metric is dataset-level and gave no per-sample values. NMSE is ranked lowest first:
    /// the group whose revert brings the outputs closest to FP32's comes first (NNCF sorts it the other way,
    /// reverting the least harmful group: SPEC §6).
    pub(crate) fn ranking_metric(&mut self, controlled: usize) -> Result<(usize, &'m dyn Metric)> {
        let metric = self.metrics[controlled];
        let has_values = !self.current().evaluation.metrics[controlled]
            .per_sample
            .is_empty();
        let by_nmse = match self.control.ranking_score {
            RankingScore::Nmse => true,
            RankingScore::Auto => !has_values,
            RankingScore::Metric if has_values => false,
            RankingScore::Metric => {
                return Err(Error::Config(format!(
                    "ranking_score 'metric': metric '{}' is dataset-level and gives no per-sample values \
                     to rank groups by; use ranking_score 'nmse' or 'auto'",
                    metric.name()
                )))
            }
        };
        match (by_nmse, self.nmse) {
            (false, _) => {
                self.ranked_by = Some(RankedBy::Metric);
                Ok((controlled, metric))
            }
            (true, Some(nmse)) => {
                self.ranked_by = Some(RankedBy::OutputNmse);
                Ok((self.metrics.len(), nmse))
            }
            (true, None) => Err(Error::Config(format!(
                "metric '{}' gives no per-sample values and the search has no output NMSE to rank by",
                metric.name()
            ))),
        }
    }

    /// The ranking subset for evaluation entry `metric` (FP32 vs the current model, sample by sample),
    /// ordered worst-first for the current model so that early-stopping evaluations meet the decisive samples
    /// first. For the output NMSE, FP32's values are all 0: the samples the current model departs from FP32
    /// most come first. The second value: the current model's per-sample values on it, in its order.
    pub(crate) fn subset_for(
        &self,
        metric: usize,
        ranked_by: &dyn Metric,
    ) -> (Vec<usize>, Vec<f64>) {
        let current = &self.current().evaluation;
        let reference = self.reference.as_ref().expect("set by the Baselines state");
        let value = |i: usize| current.metrics[metric].per_sample[i];
        let current_values: Vec<f64> = self.comparison.iter().map(|&i| value(i)).collect();
        let size = self
            .control
            .ranking_subset_size
            .unwrap_or(300)
            .min(self.comparison.len());
        let mut subset = ranking_subset(
            &self.comparison,
            &reference.metrics[metric].per_sample,
            &current_values,
            size,
        );
        let higher_better = ranked_by.direction() == Direction::HigherBetter;
        subset.sort_by(|&a, &b| {
            let (va, vb) = (value(a), value(b));
            if higher_better {
                va.total_cmp(&vb)
            } else {
                vb.total_cmp(&va)
            }
        });
        let values = subset.iter().map(|&i| value(i)).collect();
        (subset, values)
    }
}
