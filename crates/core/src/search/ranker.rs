//! Ranking: how much reverting each group alone restores the metric on the ranking subset.
//!
//! Scores are oriented so that higher always means "restores more" (a higher-worse metric is negated); the
//! best group comes first, ties broken by group id (topological order).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::metric::Direction;
use crate::search::context::SearchContext;
use crate::search::groups::QuantizerGroup;
use crate::search::report::RankingEntry;

/// Ranks `candidates` (ids into `groups`) on top of the ops already `reverted`, using metric `metric`.
pub(super) fn rank(
    ctx: &mut SearchContext,
    groups: &[QuantizerGroup],
    candidates: &[usize],
    reverted: &BTreeSet<String>,
    subset: &[usize],
    metric: usize,
) -> Result<Vec<RankingEntry>> {
    let direction = ctx.evaluator.metrics()[metric].direction();
    let mut ranking = Vec::with_capacity(candidates.len());
    for (k, &id) in candidates.iter().enumerate() {
        let group = &groups[id];
        let mut candidate = reverted.clone();
        candidate.extend(group.nodes.iter().cloned());
        let label = format!("ranking {}/{}", k + 1, candidates.len());
        let value = ctx.evaluate(&candidate, subset, &label)?.metrics[metric].value;
        let score = match direction {
            Direction::HigherBetter => value,
            Direction::HigherWorse => -value,
        };
        ranking.push(RankingEntry {
            group: id,
            nodes: group.nodes.clone(),
            score,
        });
    }
    ranking.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.group.cmp(&b.group)));
    Ok(ranking)
}
