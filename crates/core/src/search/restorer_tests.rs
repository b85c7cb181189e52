//! Every branch of SPEC §4 on the fake lab: scripted per-sample values, milliseconds per run.

use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::params::MetricTarget;
use crate::search::fake::{Fake, FakeMetric, Script};
use crate::search::journal::Journal;
use crate::search::record::Recorded;

const N: usize = 10;

/// One metric, FP32 right on every sample; INT8 wrong on `wrong`; group g fixes `fixes[g]` and breaks
/// `breaks[g]`.
fn script(wrong: &[usize], groups: &[(&[usize], &[usize])]) -> Script {
    script_of(N, wrong, groups)
}

/// [`script`] on `n` samples.
fn script_of(n: usize, wrong: &[usize], groups: &[(&[usize], &[usize])]) -> Script {
    let quantized: Vec<f64> = (0..n).map(|i| f64::from(!wrong.contains(&i))).collect();
    let effects = groups
        .iter()
        .map(|(fixes, breaks)| {
            vec![(0..n)
                .map(|i| {
                    if fixes.contains(&i) {
                        1.0
                    } else if breaks.contains(&i) {
                        -1.0
                    } else {
                        0.0
                    }
                })
                .collect()]
        })
        .collect();
    Script {
        fp32: vec![vec![1.0; n]],
        quantized: HashMap::from([("base".to_string(), vec![quantized])]),
        effects,
        ..Default::default()
    }
}

fn exact(max_drop: f64) -> AccuracyControlParams {
    AccuracyControlParams {
        maximal_drop: max_drop.into(),
        ranking_subset_size: Some(5),
        ..Default::default()
    }
}

fn run_lab<L: Lab>(
    lab: L,
    control: &AccuracyControlParams,
    metrics: &[&dyn Metric],
) -> (Verdict, L) {
    Restorer::new(
        lab,
        metrics,
        None,
        control,
        QuantizationParams::default(),
        true,
    )
    .run()
    .unwrap()
}

fn run(script: Script, control: &AccuracyControlParams) -> (Verdict, Fake) {
    let top1 = FakeMetric::accuracy("top1");
    run_lab(Fake::new(script), control, &[&top1])
}

fn outcomes(v: &Verdict) -> Vec<(usize, StepOutcome)> {
    v.steps.iter().map(|s| (s.group, s.outcome)).collect()
}

fn names(groups: &[usize]) -> BTreeSet<String> {
    groups.iter().map(|g| format!("g{g}")).collect()
}

/// g0 ranks first (3 of the 5 wrong samples) but breaks 4 right ones: the drop grows.
fn rollback_script() -> Script {
    script(
        &[0, 1, 2, 3, 4],
        &[(&[0, 1, 2], &[5, 6, 7, 8]), (&[3, 4], &[]), (&[], &[])],
    )
}

#[test]
fn target_met_by_the_quantized_model_reverts_nothing() {
    let (v, _) = run(script(&[], &[(&[], &[])]), &exact(0.0));
    assert_eq!(v.stop, StopReason::TargetMet);
    assert!(v.steps.is_empty() && v.reverted.is_empty());
}

#[test]
fn drop_decreased_takes_the_next_group_of_the_same_ranking() {
    let (v, fake) = run(
        script(&[0, 1, 2, 3, 4], &[(&[0, 1, 2], &[]), (&[3, 4], &[])]),
        &exact(0.0),
    );
    assert_eq!(
        outcomes(&v),
        [(0, StepOutcome::DropDecreased), (1, StepOutcome::TargetMet)]
    );
    assert_eq!(v.stop, StopReason::TargetMet);
    assert_eq!(v.reverted, names(&[0, 1]));
    // No re-ranking: the second group came from the ranking made on the quantized model.
    let scorers: Vec<&String> = fake
        .log
        .iter()
        .filter(|l| l.starts_with("scorer"))
        .collect();
    assert!(scorers.iter().all(|l| l.contains("base={}")), "{scorers:?}");
}

#[test]
fn no_improvement_keeps_the_revert_and_reranks() {
    let control = AccuracyControlParams {
        ranking_subset_size: Some(5),
        ..exact(0.0)
    };
    // g0 fixes 3 ranking samples and breaks 3 others: no change on the full set.
    let (v, fake) = run(
        script(
            &[0, 1, 2, 3, 4],
            &[(&[0, 1, 2], &[5, 6, 7]), (&[3, 4], &[])],
        ),
        &control,
    );
    assert_eq!(
        outcomes(&v),
        [
            (0, StepOutcome::NoImprovement),
            (1, StepOutcome::DropDecreased)
        ]
    );
    assert!(v.steps[0].kept);
    assert!(
        fake.log
            .iter()
            .any(|l| l == "scorer base={\"g0\"} metric=0"),
        "{:?}",
        fake.log
    );
    assert_eq!(v.stop, StopReason::NothingLeft);
}

/// The rollback loop of issue 12: after a rollback the new ranking has the same base, metric and subset as
/// the one before; the group rolled back must not come out of it again.
#[test]
fn a_rolled_back_group_is_never_tried_again_on_the_same_base() {
    let (v, _) = run(rollback_script(), &exact(0.0));
    assert_eq!(
        outcomes(&v),
        [
            (0, StepOutcome::RolledBack),
            (1, StepOutcome::DropDecreased),
            (2, StepOutcome::NoImprovement)
        ]
    );
    assert!(!v.steps[0].kept);
    assert_eq!(v.stop, StopReason::NothingLeft);

    // The same from a replayed journal (every result answered by the previous run's records).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.jsonl");
    let top1 = FakeMetric::accuracy("top1");
    let control = exact(0.0);
    for pass in 0..2 {
        let lab = Recorded::new(
            Fake::new(rollback_script()),
            Journal::open(&file, "fake").unwrap(),
            true,
        );
        let (replayed, lab) = run_lab(lab, &control, &[&top1]);
        assert_eq!(outcomes(&replayed), outcomes(&v), "pass {pass}");
        assert_eq!(
            lab.into_inner().work == 0,
            pass == 1,
            "the second pass only replays"
        );
    }
}

#[test]
fn drop_increase_is_kept_when_use_prev_if_drop_increase_is_off() {
    let control = AccuracyControlParams {
        use_prev_if_drop_increase: false,
        ..exact(0.0)
    };
    let (v, fake) = run(rollback_script(), &control);
    assert_eq!(v.steps[0].outcome, StepOutcome::KeptDespiteIncrease);
    assert!(v.steps[0].kept);
    assert!(fake
        .log
        .iter()
        .any(|l| l.starts_with("scorer base={\"g0\"}")));
    assert!(v.reverted.contains("g0"), "{:?}", v.reverted);
}

/// POT semantics: `max_iter_num` counts revert steps, rolled-back ones included.
#[test]
fn max_iter_num_counts_every_step() {
    let control = AccuracyControlParams {
        max_iter_num: Some(1),
        ..exact(0.0)
    };
    let (v, _) = run(rollback_script(), &control);
    assert_eq!(outcomes(&v), [(0, StepOutcome::RolledBack)]);
    assert_eq!(v.stop, StopReason::MaxIterations);
    assert!(v.reverted.is_empty());
}

#[test]
fn nothing_left_returns_the_best_model_seen() {
    let (v, _) = run(rollback_script(), &exact(0.0));
    assert_eq!(v.stop, StopReason::NothingLeft);
    assert!(!v.target_met());
    // g2 changed nothing: the best state is the first one that reached 0.7.
    assert_eq!(v.reverted, names(&[1]));
    assert!((v.drops[0] - 0.3).abs() < 1e-12);
}

#[test]
fn convert_to_mixed_preset_is_kept_only_when_better() {
    let mixed = QuantizationParams {
        preset: Preset::Mixed,
        ..Default::default()
    };
    let control = AccuracyControlParams {
        convert_to_mixed_preset: true,
        ..exact(0.0)
    };
    let mut better = script(&[0, 1], &[(&[0, 1], &[])]);
    better
        .quantized
        .insert(Script::key(&mixed), vec![vec![1.0; N]]);
    let (v, _) = run(better, &control);
    assert_eq!(v.preset, Preset::Mixed);
    assert!(v.steps.is_empty() && v.stop == StopReason::TargetMet);

    let mut worse = script(&[0, 1], &[(&[0, 1], &[])]);
    worse
        .quantized
        .insert(Script::key(&mixed), vec![vec![0.0; N]]);
    let (v, fake) = run(worse, &control);
    assert_eq!(v.preset, Preset::Performance);
    assert_eq!(
        fake.log.iter().filter(|l| *l == "requantize base").count(),
        1
    );
    assert_eq!(outcomes(&v), [(0, StepOutcome::TargetMet)]);
}

#[test]
fn tune_hyperparams_picks_the_best_variant() {
    let variants = tuning::grid(&QuantizationParams::default());
    let mut s = script(&[0, 1, 2], &[(&[0, 1, 2], &[])]);
    let one_wrong: Vec<f64> = (0..N).map(|i| f64::from(i != 0)).collect();
    let two_wrong: Vec<f64> = (0..N).map(|i| f64::from(i > 1)).collect();
    s.quantized
        .insert(Script::key(&variants[1]), vec![two_wrong]);
    s.quantized
        .insert(Script::key(&variants[3]), vec![one_wrong]);
    let control = AccuracyControlParams {
        tune_hyperparams: true,
        ..exact(0.0)
    };
    let (v, _) = run(s, &control);
    assert_eq!(v.tuned.as_ref(), Some(&variants[3]));
    assert_eq!(v.preset, variants[3].preset);
    // Then the loop reverts what the tuned model still needs.
    assert_eq!(outcomes(&v), [(0, StepOutcome::TargetMet)]);
}

#[test]
fn given_baselines_compare_on_the_metric_subset_ratio() {
    let control = AccuracyControlParams {
        metrics: vec![MetricTarget {
            name: "top1".into(),
            baseline_value: Some(0.9),
        }],
        metric_subset_ratio: 0.3,
        ..exact(0.0)
    };
    let (v, fake) = run(script(&[0, 1, 7], &[(&[0, 1, 7], &[])]), &control);
    assert_eq!(fake.log[0], "fp32 [0, 1, 2]");
    assert_eq!(v.limits.baselines, [0.9]);
    assert_eq!(v.stop, StopReason::TargetMet);
}

#[test]
fn with_two_metrics_the_one_furthest_beyond_its_limit_comes_first() {
    let mut s = script(&[0], &[(&[0], &[]), (&[], &[])]);
    // Metric 1 is far off on samples 5..9; group 1 fixes it.
    let far: Vec<f64> = (0..N).map(|i| f64::from(i < 5)).collect();
    s.fp32.push(vec![1.0; N]);
    s.quantized.get_mut("base").unwrap().push(far);
    s.effects[0].push(vec![0.0; N]);
    s.effects[1].push((0..N).map(|i| f64::from(i >= 5)).collect());
    let (top1, other) = (FakeMetric::accuracy("top1"), FakeMetric::accuracy("other"));
    let (v, fake) = run_lab(Fake::new(s), &exact(0.0), &[&top1, &other]);
    let first = fake.log.iter().find(|l| l.starts_with("scorer")).unwrap();
    assert!(first.ends_with("metric=1"), "{first}");
    assert_eq!(v.steps[0].group, 1);
    assert_eq!(v.reverted, names(&[0, 1]));
    assert!(v.target_met());
}

/// An interrupt at every unit of work — in each state — then a resume from the journal ends exactly as an
/// uninterrupted run.
#[test]
fn interrupt_and_resume_at_each_state_end_as_an_uninterrupted_run() {
    let control = AccuracyControlParams {
        convert_to_mixed_preset: true,
        tune_hyperparams: true,
        ..exact(0.0)
    };
    let top1 = FakeMetric::accuracy("top1");
    let lab = Recorded::new(Fake::new(rollback_script()), Journal::in_memory(), true);
    let (whole, lab) = run_lab(lab, &control, &[&top1]);
    let total = lab.into_inner().work;
    assert!(total > 20, "{total}");
    for n in 0..total {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("journal.jsonl");
        let mut fake = Fake::new(rollback_script());
        fake.interrupt_at = Some(n);
        let lab = Recorded::new(fake, Journal::open(&file, "fake").unwrap(), true);
        match Restorer::new(
            lab,
            &[&top1],
            None,
            &control,
            QuantizationParams::default(),
            true,
        )
        .run()
        {
            Ok((v, _)) => assert_eq!(v.stop, StopReason::Interrupted, "at {n}"),
            Err(e) => assert!(matches!(e, Error::Interrupted), "at {n}: {e}"),
        }
        let lab = Recorded::new(
            Fake::new(rollback_script()),
            Journal::open(&file, "fake").unwrap(),
            true,
        );
        let (resumed, lab) = run_lab(lab, &control, &[&top1]);
        assert_eq!(outcomes(&resumed), outcomes(&whole), "at {n}");
        assert_eq!(resumed.reverted, whole.reverted, "at {n}");
        assert_eq!(resumed.stop, whole.stop, "at {n}");
        assert_eq!(resumed.ranking, whole.ranking, "at {n}");
        assert!(lab.into_inner().work <= total, "at {n}");
    }
}

/// The deployed engine misses the target on sample 5 unless g1 is reverted: the search goes on with it as
/// the judge, and its final evaluation is the judge's own (reused).
#[test]
fn a_deployed_miss_continues_the_search_with_the_deployed_engine_as_judge() {
    let mut s = script(&[0, 1, 2], &[(&[0, 1, 2], &[]), (&[5], &[]), (&[], &[])]);
    // g1's effect only matters on the deployed engine (sample 5 is right on the judge): cap the judge at 1.
    s.effects[1][0][5] = 0.0;
    s.deployed = Some((1, (0..N).map(|i| f64::from(i == 5)).collect()));
    let (v, fake) = run(s, &exact(0.0));
    let d = v.deployed.as_ref().unwrap();
    assert!(d.continued && d.reused && d.target_met, "{d:?}");
    assert_eq!(v.stop, StopReason::TargetMet);
    assert_eq!(v.reverted, names(&[0, 1]));
    assert!(fake.log.iter().any(|l| l == "judge on deployed"));

    // When nothing can fix it on the deployed engine, the run does not claim the target.
    let mut s = script(&[0, 1, 2], &[(&[0, 1, 2], &[]), (&[], &[])]);
    s.deployed = Some((9, (0..N).map(|i| f64::from(i == 5)).collect()));
    let (v, _) = run(s, &exact(0.0));
    let d = v.deployed.as_ref().unwrap();
    assert!(d.continued && !d.target_met);
    assert!(!v.target_met());
    assert_eq!(v.stop, StopReason::NothingLeft);
}

#[test]
fn the_judges_evaluation_is_reused_when_it_is_the_deployed_engine() {
    let mut s = script(&[0], &[(&[0], &[])]);
    s.deployed = Some((0, vec![0.0; N]));
    s.deployed_is_judge = true;
    let (v, fake) = run(s, &exact(0.0));
    let d = v.deployed.as_ref().unwrap();
    assert!(d.reused && !d.continued && d.target_met);
    assert_eq!(d.metrics[0].value, v.evaluation.metrics[0].value);
    assert!(
        !fake.log.iter().any(|l| l.starts_with("deployed")),
        "{:?}",
        fake.log
    );

    let mut s = script(&[0], &[(&[0], &[])]);
    s.deployed = Some((0, vec![0.0; N]));
    let (v, fake) = run(s, &exact(0.0));
    assert!(!v.deployed.unwrap().reused);
    assert!(fake.log.iter().any(|l| l.starts_with("deployed")));
}

#[test]
fn without_reuse_repeated_requests_run_again() {
    let top1 = FakeMetric::accuracy("top1");
    let control = exact(0.0);
    let work = |reuse: bool| {
        let lab = Recorded::new(Fake::new(rollback_script()), Journal::in_memory(), reuse);
        let (v, lab) = run_lab(lab, &control, &[&top1]);
        (outcomes(&v), lab.into_inner().work)
    };
    let (with, with_work) = work(true);
    let (without, without_work) = work(false);
    assert_eq!(with, without);
    // The ranking after the rollback re-scores the same candidates on the same base and subset.
    assert!(without_work > with_work, "{without_work} vs {with_work}");
}

#[test]
fn equal_revert_costs_change_nothing_the_search_does() {
    let free = run(rollback_script(), &exact(0.0));
    let mut costly = rollback_script();
    costly.costs = HashMap::from([(0, 3), (1, 3), (2, 3)]);
    let costly = run(costly, &exact(0.0));
    assert_eq!(outcomes(&free.0), outcomes(&costly.0));
    assert_eq!(free.0.reverted, costly.0.reverted);
    assert_eq!(free.1.log, costly.1.log);
}

#[test]
fn of_two_groups_that_restore_as_much_the_cheaper_is_reverted() {
    // g0 and g1 each fix two of the four wrong samples; reverting g0 costs the engine more kernels.
    let mut tied = script(&[0, 1, 2, 3], &[(&[0, 1], &[]), (&[2, 3], &[])]);
    let control = AccuracyControlParams {
        maximal_drop: 0.25.into(),
        ranking_subset_size: Some(N),
        ..Default::default()
    };
    let (v, _) = run(tied.clone(), &control);
    assert_eq!(v.reverted, names(&[0]), "equal costs: the lower group id");
    tied.costs = HashMap::from([(0, 2), (1, 1)]);
    let (v, _) = run(tied, &control);
    assert_eq!(v.reverted, names(&[1]));
    assert_eq!(v.stop, StopReason::TargetMet);
}

/// 200 samples; INT8 wrong on four, which g0 and g1 fix two each (g2 fixes nothing): a drop of 0.02, and its
/// interval's upper end at 95 % (Newcombe) 0.0188 with no sample differing, about 0.03 with two.
fn confidence_script() -> Script {
    script_of(
        200,
        &[0, 1, 2, 3],
        &[(&[0, 1], &[]), (&[2, 3], &[]), (&[], &[])],
    )
}

#[test]
fn a_target_met_on_the_point_estimate_is_judged_on_the_intervals_upper_end_at_a_confidence_level() {
    let point = exact(0.02);
    let (v, _) = run(confidence_script(), &point);
    assert_eq!((v.stop, v.steps.len()), (StopReason::TargetMet, 0));

    let (v, _) = run(confidence_script(), &exact_at(0.02, 0.95));
    assert_eq!(v.stop, StopReason::TargetMet);
    assert_eq!(v.reverted, names(&[0, 1]));
    let last = v.steps.last().unwrap();
    assert_eq!(last.drop, 0.0);
    let bound = last.judged_drop.expect("judged on the interval");
    assert!(bound > 0.0 && bound <= 0.02, "{bound}");
    // The step before met the drop (0.01 ≤ 0.02) but not its upper end.
    let first = &v.steps[0];
    assert!(
        first.drop <= 0.02 && first.judged_drop.unwrap() > 0.02,
        "{first:?}"
    );
}

#[test]
fn a_search_out_of_moves_that_met_only_the_point_estimate_stops_as_not_confident() {
    // One step allowed: it brings the drop to 0.01 ≤ 0.02, its upper end stays above.
    let confident = AccuracyControlParams {
        confidence: Some(0.95),
        max_iter_num: Some(1),
        ..exact(0.02)
    };
    let (v, _) = run(confidence_script(), &confident);
    assert_eq!((v.stop, v.steps.len()), (StopReason::NotConfident, 1));
    assert!(!v.target_met());
    assert!(v.drops[0] <= 0.02, "{:?}", v.drops);
    let message = v.stop.message(&confident);
    assert!(message.contains("not at 95% confidence"), "{message}");
}

#[test]
fn a_target_no_model_can_meet_at_the_confidence_level_stops_before_searching() {
    // 0.01 allowed: on 200 samples even FP32 itself has an upper end of 0.0188 at 95 %.
    let confident = exact_at(0.01, 0.95);
    let (v, fake) = run(confidence_script(), &confident);
    assert_eq!((v.stop, v.steps.len()), (StopReason::Unprovable, 0));
    assert!(
        !fake.log.iter().any(|l| l.starts_with("scorer")),
        "no ranking"
    );
    assert!(v.stop.message(&confident).contains("more samples"));
    // 0.02 is within reach: the search runs.
    let (v, _) = run(confidence_script(), &exact_at(0.02, 0.95));
    assert_eq!(v.stop, StopReason::TargetMet);
}

fn exact_at(max_drop: f64, confidence: f64) -> AccuracyControlParams {
    AccuracyControlParams {
        confidence: Some(confidence),
        ..exact(max_drop)
    }
}

/// The candidates a ranking keeps prepared (a cohort: engine sessions, a copy of the weights each) are let go
/// once the search is over: the deployed check prepares FP32 and the saved model, and they would only add to
/// its peak memory (issue #27).
#[test]
fn the_ranking_ends_before_the_deployed_check() {
    let mut s = script(&[0, 1], &[(&[0], &[]), (&[1], &[]), (&[], &[])]);
    s.deployed = Some((0, vec![0.0; N]));
    let (v, fake) = run(s, &exact(0.0));
    assert_eq!(v.stop, StopReason::TargetMet);
    let position = |prefix: &str, last: bool| {
        let mut hits = fake
            .log
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with(prefix));
        let hit = if last { hits.next_back() } else { hits.next() };
        hit.map(|(i, _)| i)
            .unwrap_or_else(|| panic!("no '{prefix}' in {:?}", fake.log))
    };
    let end = position("end ranking", false);
    assert!(position("scorer", true) < end, "{:?}", fake.log);
    assert!(end < position("deployed", false), "{:?}", fake.log);
}
