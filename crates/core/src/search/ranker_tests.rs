//! The branch and bound against a full ranking, on scripted values.

use std::cell::Cell;

use proptest::prelude::*;

use super::*;
use crate::metric::Scoring;
use crate::search::fake::FakeMetric;

/// Values from a table `[group][sample]`, counting the samples scored and recording the fronts it is told.
struct Table<'t> {
    values: &'t [Vec<f64>],
    width: usize,
    scored: &'t Cell<usize>,
    fronts: Vec<Vec<usize>>,
}

impl Scorer for Table<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn expect(&mut self, front: &[usize]) {
        self.fronts.push(front.to_vec());
    }

    fn extend(
        &mut self,
        jobs: &[ScoreRequest],
        until: usize,
        keep_going: KeepGoing,
    ) -> Result<Vec<(usize, Vec<f64>)>> {
        Ok(jobs
            .iter()
            .map(|job| {
                let mut values = Vec::new();
                for &v in &self.values[job.group][job.start..until] {
                    self.scored.set(self.scored.get() + 1);
                    values.push(v);
                    if !keep_going(job.group, &values) {
                        break;
                    }
                }
                (job.group, values)
            })
            .collect())
    }
}

/// Groups in the order the ranking takes them out, and the samples it scored to take out the first.
fn order(
    table: &[Vec<f64>],
    metric: &dyn Metric,
    early_stop: bool,
    width: usize,
) -> (Vec<usize>, usize) {
    order_with_costs(table, &vec![0; table.len()], metric, early_stop, width, 0)
}

/// [`order`] with a revert cost per group, the current model at its worst on the first `at_worst` samples
/// and at its best on the rest.
fn order_with_costs(
    table: &[Vec<f64>],
    costs: &[usize],
    metric: &dyn Metric,
    early_stop: bool,
    width: usize,
    at_worst: usize,
) -> (Vec<usize>, usize) {
    let scored = Cell::new(0);
    let mut scorer = Table {
        values: table,
        width,
        scored: &scored,
        fronts: Vec::new(),
    };
    let candidates = (0..table.len())
        .map(|g| (g, vec![format!("g{g}")], costs[g]))
        .collect();
    let (worst, best) = match metric.direction() {
        Direction::HigherBetter => (0.0, 1.0),
        Direction::HigherWorse => (1.0, 0.0),
    };
    let current: Vec<f64> = (0..table[0].len())
        .map(|i| if i < at_worst { worst } else { best })
        .collect();
    let mut ranking = Ranking::new(candidates, &current, metric, early_stop);
    let mut taken = Vec::new();
    let mut first = 0;
    while let Some(entry) = ranking.next(&mut scorer).unwrap() {
        assert!(entry.exact);
        taken.push(entry.group);
        if taken.len() == 1 {
            first = scored.get();
        }
    }
    (taken, first)
}

/// The full ranking: every group's aggregate, best first, ties to the lower id.
fn full_order(table: &[Vec<f64>], metric: &dyn Metric) -> Vec<usize> {
    full_order_with_costs(table, &vec![0; table.len()], metric)
}

/// The full ranking with revert costs: best aggregate first, ties to the lower cost, then the lower id.
fn full_order_with_costs(table: &[Vec<f64>], costs: &[usize], metric: &dyn Metric) -> Vec<usize> {
    let sign = if metric.direction() == Direction::HigherBetter {
        1.0
    } else {
        -1.0
    };
    let Scoring::PerSample(per_sample) = metric.scoring() else {
        panic!("the ranking tests' metrics are per-sample");
    };
    let mut groups: Vec<usize> = (0..table.len()).collect();
    groups.sort_by(|&a, &b| {
        let (sa, sb) = (
            sign * per_sample.aggregate(&table[a]),
            sign * per_sample.aggregate(&table[b]),
        );
        sb.total_cmp(&sa).then((costs[a], a).cmp(&(costs[b], b)))
    });
    groups
}

proptest! {
    #[test]
    fn branch_and_bound_takes_groups_in_the_order_of_a_full_ranking(
        table in (1usize..12, 1usize..40).prop_flat_map(|(groups, samples)| {
            prop::collection::vec(prop::collection::vec(prop::sample::select(vec![0.0, 0.5, 1.0]), samples), groups)
        }),
        width in 1usize..5,
        higher_worse in any::<bool>(),
        at_worst in 0usize..40,
    ) {
        let metric = FakeMetric {
            name: "m",
            direction: if higher_worse { Direction::HigherWorse } else { Direction::HigherBetter },
            bounds: Some((0.0, 1.0)),
            median: false,
        };
        let costs = vec![0; table.len()];
        let (taken, _) = order_with_costs(&table, &costs, &metric, true, width, at_worst);
        prop_assert_eq!(taken, full_order(&table, &metric));
    }

    #[test]
    fn among_equal_scores_the_cheaper_revert_comes_first(
        table in (1usize..12, 1usize..30).prop_flat_map(|(groups, samples)| {
            prop::collection::vec(prop::collection::vec(prop::sample::select(vec![0.0, 1.0]), samples), groups)
        }),
        costs in prop::collection::vec(0usize..4, 12),
        width in 1usize..5,
    ) {
        let metric = FakeMetric::accuracy("top1");
        let (taken, _) = order_with_costs(&table, &costs, &metric, true, width, 0);
        prop_assert_eq!(taken, full_order_with_costs(&table, &costs, &metric));
        // Equal costs, whatever they are, give the order of the scores alone.
        let equal = vec![costs[0]; 12];
        let (taken, _) = order_with_costs(&table, &equal, &metric, true, width, 0);
        prop_assert_eq!(taken, full_order(&table, &metric));
    }
}

#[test]
fn early_stop_scores_fewer_samples_for_the_same_order() {
    // Group 0 fixes every sample; the others one each.
    let table: Vec<Vec<f64>> = (0..8)
        .map(|g| (0..50).map(|i| f64::from(g == 0 || i == g)).collect())
        .collect();
    let metric = FakeMetric::accuracy("top1");
    let (with, with_scored) = order(&table, &metric, true, 3);
    let (without, without_scored) = order(&table, &metric, false, 3);
    assert_eq!(with, without);
    assert_eq!(with[0], 0);
    assert_eq!(without_scored, 8 * 50);
    assert!(with_scored < without_scored / 4, "{with_scored}");
}

/// Only the cohort's best is evaluated to the end before it is taken out: a weaker member that looks as good
/// on the probe is evaluated only until it falls behind.
#[test]
fn best_first_completes_only_the_best_before_taking_it() {
    // Every group is perfect on the probe; group g < 7 then misses sample MIN_PROBE + g, group 7 misses nothing.
    let table: Vec<Vec<f64>> = (0..8)
        .map(|g| {
            (0..60)
                .map(|i| f64::from(g == 7 || i != MIN_PROBE + g))
                .collect()
        })
        .collect();
    let metric = FakeMetric::accuracy("top1");
    let scored = Cell::new(0);
    let mut scorer = Table {
        values: &table,
        width: 8,
        scored: &scored,
        fronts: Vec::new(),
    };
    let candidates = (0..8).map(|g| (g, vec![format!("g{g}")], 0)).collect();
    let mut ranking = Ranking::new(candidates, &[1.0; 60], &metric, true);
    assert_eq!(ranking.next(&mut scorer).unwrap().unwrap().group, 7);
    // Group 0, the leader after the probe by its id, would have been completed first.
    let exact: Vec<usize> = ranking
        .entries()
        .iter()
        .filter(|e| e.exact)
        .map(|e| e.group)
        .collect();
    assert_eq!(exact, [7]);
    // The probe, each other group up to its miss, group 7 to the end.
    assert_eq!(
        scored.get(),
        8 * MIN_PROBE + (1..=7).sum::<usize>() + (60 - MIN_PROBE)
    );
    // Each best-first step told the scorer the whole front (no group can be ruled out before a score is
    // exact): the chunks one member taps serve the others.
    let everyone: Vec<usize> = (0..8).collect();
    assert!(!scorer.fronts.is_empty());
    assert!(
        scorer.fronts.iter().all(|f| *f == everyone),
        "{:?}",
        scorer.fronts
    );
    // The next step's front: those left.
    ranking.next(&mut scorer).unwrap();
    assert_eq!(scorer.fronts.last(), Some(&(0..7).collect()));
}

/// Where the current model is at its worst on the subset's first samples, every candidate is probed on them
/// before any is completed: the best does better there, though a cheaper revert that ties it on every
/// sample evaluated before would otherwise be completed first.
#[test]
fn every_candidate_is_probed_where_the_current_model_is_at_its_worst() {
    // The current model misses the first 20 samples. Groups 0-8 (cost 0) miss them too, and group g misses
    // sample 30 + g besides; group 9 (cost 1) gets samples 5, 10 and 15 right, and all after sample 20.
    let table: Vec<Vec<f64>> = (0..10)
        .map(|g| {
            (0..60)
                .map(|i| match g {
                    9 => f64::from(i >= 20 || i % 5 == 0 && i > 0),
                    _ => f64::from(i >= 20 && i != 30 + g),
                })
                .collect()
        })
        .collect();
    let metric = FakeMetric::accuracy("top1");
    let mut costs = vec![0; 10];
    costs[9] = 1;
    let (taken, scored) = order_with_costs(&table, &costs, &metric, true, 3, 20);
    assert_eq!(taken, full_order_with_costs(&table, &costs, &metric));
    assert_eq!(taken[0], 9);
    // Every group probed on the 20 samples, then group 9 to the end; the others fall below its score there.
    assert_eq!(scored, 10 * 20 + 40);
    // Without the probe (the current model at its worst nowhere), the cheapest group 0 leads its cohort on
    // the first samples and is completed before group 9 is evaluated.
    let (taken, scored) = order_with_costs(&table, &costs, &metric, true, 3, 0);
    assert_eq!(taken[0], 9);
    assert!(scored > 10 * 20 + 40, "{scored}");
}

/// A metric judged by its median is ranked by its median, and never pruned with mean bounds.
#[test]
fn groups_are_ranked_on_the_metric_s_own_aggregate() {
    // Group 0: mean 0.45, median 0; group 1: mean 0.4, median 0.4.
    let table = vec![
        (0..40).map(|i| f64::from(i < 18)).collect::<Vec<f64>>(),
        vec![0.4; 40],
    ];
    let median = FakeMetric {
        median: true,
        ..FakeMetric::accuracy("median")
    };
    let mean = FakeMetric::accuracy("mean");
    let (taken, scored) = order(&table, &mean, true, 2);
    assert_eq!(taken, [0, 1]);
    assert!(scored < 80, "the mean's bound prunes group 1: {scored}");
    let (taken, scored) = order(&table, &median, true, 2);
    assert_eq!(taken, [1, 0]);
    assert_eq!(taken, full_order(&table, &median));
    assert_eq!(
        scored, 80,
        "no pruning on bounds that do not bound a median"
    );
}

proptest! {
    /// Ranking by output NMSE: values unbounded above, bounded below by 0, lowest first. Pruning on the partial
    /// sum alone (the rest of a candidate's samples add at least 0) still gives the full ranking's order.
    #[test]
    fn branch_and_bound_on_nmse_takes_groups_in_the_order_of_a_full_ranking(
        table in (1usize..12, 1usize..40).prop_flat_map(|(groups, samples)| {
            prop::collection::vec(prop::collection::vec(0.0f64..4.0, samples), groups)
        }),
        width in 1usize..5,
    ) {
        let nmse = FakeMetric {
            name: "nmse",
            direction: Direction::HigherWorse,
            bounds: Some((0.0, f64::INFINITY)),
            median: false,
        };
        let (taken, _) = order(&table, &nmse, true, width);
        prop_assert_eq!(taken, full_order(&table, &nmse));
    }
}

#[test]
fn nmse_ranking_prunes_a_candidate_once_its_partial_sum_exceeds_the_best() {
    // Group 0 is close to FP32 everywhere; the others are far on every sample.
    let table: Vec<Vec<f64>> = (0..6)
        .map(|g| vec![if g == 0 { 0.01 } else { 1.0 }; 60])
        .collect();
    let nmse = FakeMetric {
        name: "nmse",
        direction: Direction::HigherWorse,
        bounds: Some((0.0, f64::INFINITY)),
        median: false,
    };
    let (with, with_scored) = order(&table, &nmse, true, 1);
    let (without, without_scored) = order(&table, &nmse, false, 1);
    assert_eq!(with, without);
    assert_eq!(with[0], 0);
    assert!(
        with_scored < without_scored / 2,
        "{with_scored} vs {without_scored}"
    );
}
