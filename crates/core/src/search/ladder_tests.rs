//! The precision ladder on the fake lab: groups climb one rung at a time, a rung that does not help is rolled
//! back and the group tries the next, the loop ends within groups × rungs steps, and a journal replays it.

use std::collections::{BTreeSet, HashMap};

use super::*;
use crate::quantize::Precision::{self, Dynamic, Fp32, W16A16, W8A16};
use crate::search::fake::{Fake, FakeMetric, Script};
use crate::search::journal::Journal;
use crate::search::record::Recorded;

const N: usize = 10;

/// +1 on `fixes`, −1 on `breaks`, 0 elsewhere: one metric's effect.
fn effect(fixes: &[usize], breaks: &[usize]) -> Vec<Vec<f64>> {
    vec![(0..N)
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
}

/// INT8 wrong on `wrong`; group g's FP32 revert has effect `fp32[g]`, its rungs `rungs`.
fn script(
    wrong: &[usize],
    fp32: &[(&[usize], &[usize])],
    rungs: &[(usize, Precision, &[usize], &[usize])],
) -> Script {
    let quantized: Vec<f64> = (0..N).map(|i| f64::from(!wrong.contains(&i))).collect();
    Script {
        fp32: vec![vec![1.0; N]],
        quantized: HashMap::from([("base".to_string(), vec![quantized])]),
        effects: fp32.iter().map(|(f, b)| effect(f, b)).collect(),
        rung_effects: rungs
            .iter()
            .map(|(g, p, f, b)| ((*g, *p), effect(f, b)))
            .collect(),
        ..Default::default()
    }
}

fn control(ladder: &[Precision]) -> AccuracyControlParams {
    AccuracyControlParams {
        maximal_drop: 0.0.into(),
        ranking_subset_size: Some(5),
        fallback: ladder.to_vec(),
        ..Default::default()
    }
}

fn run_lab<L: Lab>(lab: L, control: &AccuracyControlParams) -> (Verdict, L) {
    let top1 = FakeMetric::accuracy("top1");
    let metrics: [&dyn Metric; 1] = [&top1];
    Restorer::new(
        lab,
        &metrics,
        None,
        control,
        QuantizationParams::default(),
        true,
    )
    .run()
    .unwrap()
}

fn steps(v: &Verdict) -> Vec<(usize, Precision, StepOutcome)> {
    v.steps
        .iter()
        .map(|s| (s.group, s.precision, s.outcome))
        .collect()
}

fn set(entries: &[&str]) -> BTreeSet<String> {
    entries.iter().map(|e| e.to_string()).collect()
}

#[test]
fn the_default_ladder_is_a_plain_revert() {
    let s = script(&[0, 1], &[(&[0, 1], &[])], &[(0, W8A16, &[0, 1], &[])]);
    let (v, _) = run_lab(Fake::new(s), &control(&[Fp32]));
    assert_eq!(steps(&v), [(0, Fp32, StepOutcome::TargetMet)]);
    assert_eq!(v.reverted, set(&["g0"]));
}

#[test]
fn a_group_climbs_one_rung_at_a_time() {
    // w8a16 fixes half of what FP32 fixes: kept, then the group climbs on to FP32.
    let s = script(
        &[0, 1, 2, 3],
        &[(&[0, 1, 2, 3], &[])],
        &[(0, W8A16, &[0, 1], &[])],
    );
    let (v, fake) = run_lab(Fake::new(s), &control(&[W8A16, Fp32]));
    assert_eq!(
        steps(&v),
        [
            (0, W8A16, StepOutcome::DropDecreased),
            (0, Fp32, StepOutcome::TargetMet)
        ]
    );
    assert_eq!(v.reverted, set(&["g0"]));
    // The FP32 rung was ranked on the model with the group at w8a16.
    assert!(
        fake.log
            .iter()
            .any(|l| l == "scorer base={\"g0@w8a16\"} metric=0"),
        "{:?}",
        fake.log
    );
}

#[test]
fn a_rung_that_meets_the_target_ends_the_climb_in_16_bits() {
    let s = script(
        &[0, 1],
        &[(&[0, 1], &[]), (&[], &[])],
        &[(0, W8A16, &[0, 1], &[])],
    );
    let (v, _) = run_lab(Fake::new(s), &control(&[W8A16, Fp32]));
    assert_eq!(steps(&v), [(0, W8A16, StepOutcome::TargetMet)]);
    assert_eq!(v.reverted, set(&["g0@w8a16"]));
}

#[test]
fn a_rung_that_does_not_help_is_rolled_back_and_the_group_tries_the_next() {
    // w8a16 fixes 2 ranking samples but breaks 3 others: rolled back; FP32 then meets the target.
    let s = script(
        &[0, 1, 2],
        &[(&[0, 1, 2], &[])],
        &[(0, W8A16, &[0, 1], &[5, 6, 7])],
    );
    let (v, fake) = run_lab(Fake::new(s), &control(&[W8A16, Fp32]));
    assert_eq!(
        steps(&v),
        [
            (0, W8A16, StepOutcome::RolledBack),
            (0, Fp32, StepOutcome::TargetMet)
        ]
    );
    assert!(!v.steps[0].kept);
    assert_eq!(v.reverted, set(&["g0"]));
    // The FP32 rung was ranked on the model without the rolled-back rung.
    assert!(fake
        .log
        .iter()
        .filter(|l| l.starts_with("scorer"))
        .all(|l| l.contains("base={}")));
}

#[test]
fn a_group_rolled_back_at_its_last_rung_is_excluded() {
    let s = script(
        &[0, 1, 2],
        &[(&[0], &[5, 6, 7]), (&[1], &[])],
        &[(0, W8A16, &[0, 1], &[5, 6, 7])],
    );
    let (v, _) = run_lab(Fake::new(s), &control(&[W8A16, Fp32]));
    let g0: Vec<_> = steps(&v).into_iter().filter(|s| s.0 == 0).collect();
    assert_eq!(
        g0,
        [
            (0, W8A16, StepOutcome::RolledBack),
            (0, Fp32, StepOutcome::RolledBack)
        ]
    );
    assert_eq!(v.stop, StopReason::NothingLeft);
    assert!(!v.reverted.iter().any(|e| e.starts_with("g0")));
}

#[test]
fn a_group_without_a_dynamic_op_skips_the_dynamic_step() {
    // Group 0 has a MatMul the dynamic step moves (scripted with an effect there), group 1 has none.
    let s = script(
        &[0, 1, 2, 3],
        &[(&[0, 1], &[]), (&[2, 3], &[])],
        &[(0, Dynamic, &[0, 1], &[])],
    );
    let (v, fake) = run_lab(Fake::new(s), &control(&[Dynamic, Fp32]));
    let climbed = |g: usize| -> Vec<Precision> {
        v.steps
            .iter()
            .filter(|s| s.group == g)
            .map(|s| s.precision)
            .collect()
    };
    assert_eq!(climbed(0), [Dynamic], "{:?}", steps(&v));
    assert_eq!(climbed(1), [Fp32], "{:?}", steps(&v));
    assert_eq!(v.reverted, set(&["g0@dynamic", "g1"]));
    // Never evaluated at a step that moves nothing.
    assert!(
        !fake.log.iter().any(|l| l.contains("g1@dynamic")),
        "{:?}",
        fake.log
    );
}

/// Deterministic pseudo-random scripts: whatever the effects, every group tries its rungs in ladder order, at
/// most once each and only those that move some of its ops, so the loop ends within groups × rungs steps.
#[test]
fn the_loop_ends_within_groups_times_rungs_steps() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let ladder = [W8A16, Dynamic, W16A16, Fp32];
    for case in 0..40 {
        let groups = 1 + (next() % 5) as usize;
        let pick = |r: u64| -> Vec<usize> { (0..N).filter(|i| r >> i & 1 == 1).collect() };
        let wrong = pick(next());
        let fp32: Vec<(Vec<usize>, Vec<usize>)> = (0..groups)
            .map(|_| (pick(next()), pick(next() & next())))
            .collect();
        let rungs: Vec<(usize, Precision, Vec<usize>, Vec<usize>)> = (0..groups)
            .flat_map(|g| {
                [W8A16, Dynamic, W16A16].map(|p| (g, p, pick(next()), pick(next() & next())))
            })
            .filter(|(g, p, _, _)| *p != Dynamic || (g + case) % 2 == 0)
            .collect();
        let fp32_refs: Vec<(&[usize], &[usize])> =
            fp32.iter().map(|(f, b)| (&f[..], &b[..])).collect();
        let rung_refs: Vec<(usize, Precision, &[usize], &[usize])> = rungs
            .iter()
            .map(|(g, p, f, b)| (*g, *p, &f[..], &b[..]))
            .collect();
        let s = script(&wrong, &fp32_refs, &rung_refs);
        let (v, _) = run_lab(Fake::new(s), &control(&ladder));
        assert!(v.steps.len() <= groups * ladder.len(), "case {case}");
        for g in 0..groups {
            let climbed: Vec<Precision> = v
                .steps
                .iter()
                .filter(|s| s.group == g)
                .map(|s| s.precision)
                .collect();
            let at: Vec<usize> = climbed
                .iter()
                .map(|p| ladder.iter().position(|l| l == p).unwrap())
                .collect();
            assert!(
                at.windows(2).all(|w| w[0] < w[1]),
                "case {case}, group {g}: {climbed:?}"
            );
            let dynamic = rungs.iter().any(|r| r.0 == g && r.1 == Dynamic);
            assert!(
                dynamic || !climbed.contains(&Dynamic),
                "case {case}, group {g}: {climbed:?}"
            );
        }
    }
}

#[test]
fn a_journal_replays_the_ladder() {
    let make = || {
        script(
            &[0, 1, 2, 3],
            &[(&[0, 1, 2, 3], &[]), (&[3], &[])],
            &[(0, W8A16, &[0, 1], &[5, 6, 7]), (1, W8A16, &[3], &[])],
        )
    };
    let control = control(&[W8A16, Fp32]);
    let (whole, _) = run_lab(Fake::new(make()), &control);
    assert!(whole.steps.iter().any(|s| s.precision == W8A16));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("journal.jsonl");
    for pass in 0..2 {
        let lab = Recorded::new(
            Fake::new(make()),
            Journal::open(&file, "fake").unwrap(),
            true,
        );
        let (replayed, lab) = run_lab(lab, &control);
        assert_eq!(steps(&replayed), steps(&whole), "pass {pass}");
        assert_eq!(replayed.reverted, whole.reverted, "pass {pass}");
        assert_eq!(
            lab.into_inner().work == 0,
            pass == 1,
            "the second pass only replays"
        );
    }
}
