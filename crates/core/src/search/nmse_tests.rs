//! Ranking by output NMSE (dataset-level metrics, `ranking_score: nmse`) on the fake lab.

use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::metric::Direction;
use crate::params::RankingScore;
use crate::search::fake::{Fake, FakeMetric, Script};
use crate::search::report::RankedBy;

const N: usize = 10;

/// Metric 0 (accuracy) is wrong on samples 0–4; metric 1 is the output NMSE against FP32, largest on sample 0.
/// Group effects, as (accuracy fixed on, NMSE change per sample):
/// g0 lowers every NMSE a little, g1 fixes samples 0–2 and removes most of their NMSE, g2 raises the NMSE
/// (the group NNCF's ascending sort would take first), g3 does nothing.
fn script(dataset_level: bool) -> Script {
    let accuracy: Vec<f64> = (0..N).map(|i| f64::from(i >= 5)).collect();
    let nmse: Vec<f64> = (0..N).map(|i| 0.5 - 0.05 * i as f64).collect();
    let effect = |fixes: &[usize], nmse_change: &dyn Fn(usize) -> f64| {
        vec![
            (0..N).map(|i| f64::from(fixes.contains(&i))).collect(),
            (0..N).map(nmse_change).collect(),
        ]
    };
    Script {
        fp32: vec![vec![1.0; N], vec![0.0; N]],
        quantized: HashMap::from([("base".to_string(), vec![accuracy, nmse.clone()])]),
        effects: vec![
            effect(&[], &|_| -0.01),
            effect(&[0, 1, 2], &|i| if i < 3 { -0.4 } else { 0.0 }),
            effect(&[], &|i| 0.3 - 0.01 * i as f64),
            effect(&[], &|_| 0.0),
        ],
        dataset_level: if dataset_level {
            BTreeSet::from([0])
        } else {
            BTreeSet::new()
        },
        ..Default::default()
    }
}

fn run(script: Script, control: &AccuracyControlParams) -> Result<(Verdict, Fake)> {
    let accuracy = FakeMetric::accuracy("accuracy");
    let nmse = FakeMetric {
        name: "nmse",
        direction: Direction::HigherWorse,
        bounds: Some((0.0, f64::INFINITY)),
        median: false,
    };
    Restorer::new(
        Fake::new(script),
        &[&accuracy],
        Some(&nmse),
        control,
        QuantizationParams::default(),
        true,
    )
    .run()
}

fn control(ranking_score: RankingScore) -> AccuracyControlParams {
    AccuracyControlParams {
        maximal_drop: 0.2.into(),
        ranking_subset_size: Some(5),
        ranking_score,
        ..Default::default()
    }
}

fn scorers(fake: &Fake) -> Vec<&String> {
    fake.log
        .iter()
        .filter(|l| l.starts_with("scorer"))
        .collect()
}

#[test]
fn a_dataset_level_metric_ranks_by_output_nmse_lowest_first() {
    let (v, fake) = run(script(true), &control(RankingScore::Auto)).unwrap();
    assert_eq!(v.ranked_by, Some(RankedBy::OutputNmse));
    // g1 brings the outputs closest to FP32's: reverted first, and it meets the target (2 of 10 wrong).
    assert_eq!(v.steps[0].group, 1);
    assert_eq!(v.stop, StopReason::TargetMet);
    assert!(scorers(&fake).iter().all(|l| l.ends_with("metric=1")));
    // Ranked by NMSE on the subset: g1 (lowest), g0, g3, then g2 (raises it) last.
    let order: Vec<usize> = v.ranking.iter().map(|e| e.group).collect();
    assert_eq!(order.first(), Some(&1));
    let position = |g| order.iter().position(|&o| o == g);
    if let (Some(g2), Some(g3)) = (position(2), position(3)) {
        assert!(g3 < g2, "{order:?}");
    }
}

#[test]
fn the_nmse_subset_is_the_samples_int8_departs_from_most() {
    let (_, fake) = run(script(true), &control(RankingScore::Auto)).unwrap();
    // Every ranking evaluation the fake scores runs on samples 0–4, the five largest NMSEs.
    let evaluated: BTreeSet<usize> = fake
        .log
        .iter()
        .filter_map(|l| l.strip_prefix("scored "))
        .map(|i| i.parse().unwrap())
        .collect();
    assert_eq!(evaluated, BTreeSet::from([0, 1, 2, 3, 4]));
}

#[test]
fn nmse_is_used_for_a_per_sample_metric_when_asked_and_only_then() {
    let (v, fake) = run(script(false), &control(RankingScore::Nmse)).unwrap();
    assert_eq!(v.ranked_by, Some(RankedBy::OutputNmse));
    assert!(scorers(&fake).iter().all(|l| l.ends_with("metric=1")));
    let (v, fake) = run(script(false), &control(RankingScore::Auto)).unwrap();
    assert_eq!(v.ranked_by, Some(RankedBy::Metric));
    assert!(scorers(&fake).iter().all(|l| l.ends_with("metric=0")));
    assert_eq!(v.steps[0].group, 1);
}

#[test]
fn ranking_a_dataset_level_metric_by_itself_is_a_clear_error() {
    match run(script(true), &control(RankingScore::Metric)) {
        Err(Error::Config(message)) => {
            assert!(message.contains("no per-sample values"), "{message}")
        }
        other => panic!(
            "expected a config error, got {:?}",
            other.map(|(v, _)| v.stop)
        ),
    }
}

#[test]
fn a_dataset_level_metric_at_a_confidence_level_is_judged_on_its_bootstrap_intervals_upper_end() {
    let confident = AccuracyControlParams {
        confidence: Some(0.9),
        ..control(RankingScore::Auto)
    };
    let (v, _) = run(script(true), &confident).unwrap();
    // g1 meets 0.2 on the point estimate (2 of 10 wrong), but on 10 samples the upper end of its drop's
    // interval is far above: the search goes on, and runs out of moves that could prove it.
    let first = &v.steps[0];
    assert_eq!(first.group, 1);
    let judged = first.judged_drop.expect("judged on an interval");
    assert!(first.drop <= 0.2 && judged > 0.2, "{first:?}");
    assert_eq!(v.stop, StopReason::NotConfident, "{:?}", v.steps);
    assert!(v.steps.iter().all(|s| s.judged_drop.unwrap() >= s.drop));
}
