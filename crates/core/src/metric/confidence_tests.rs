//! The intervals cover what they claim: simulated paired sets with a known true drop are covered at the
//! nominal rate (93–97 % of 1,000 sets at 95 %), and an interval narrows like 1/√n — for per-sample metrics
//! and for a dataset-level one (macro-F1) scored on bootstrap resamples.

use super::*;

/// A uniform number in [0, 1).
fn uniform(random: &mut SplitMix64) -> f64 {
    (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A standard normal number (Box–Muller).
fn normal(random: &mut SplitMix64) -> f64 {
    let (u, v) = (uniform(random).max(1e-300), uniform(random));
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `n` paired 0/1 values: both right with probability `both`, only FP32 right with `lost`, only the quantized
/// model right with `gained`. The true drop is `lost − gained`.
fn paired_accuracy(
    random: &mut SplitMix64,
    n: usize,
    both: f64,
    lost: f64,
    gained: f64,
) -> (Vec<f64>, Vec<f64>) {
    (0..n)
        .map(|_| {
            let u = uniform(random);
            if u < both {
                (1.0, 1.0)
            } else if u < both + lost {
                (1.0, 0.0)
            } else if u < both + lost + gained {
                (0.0, 1.0)
            } else {
                (0.0, 0.0)
            }
        })
        .unzip()
}

fn coverage(mut interval: impl FnMut(&mut SplitMix64) -> ((f64, f64), f64)) -> f64 {
    let mut random = SplitMix64::new(7);
    let runs = 1000;
    let covered = (0..runs)
        .filter(|_| {
            let ((low, high), truth) = interval(&mut random);
            low <= truth && truth <= high
        })
        .count();
    covered as f64 / runs as f64
}

#[test]
fn the_normal_quantile_is_right() {
    assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
    assert!(normal_quantile(0.5).abs() < 1e-12);
    assert!((normal_quantile(0.001) + normal_quantile(0.999)).abs() < 1e-8);
    assert!((normal_quantile(0.95) - 1.644_853_627).abs() < 1e-8);
}

#[test]
fn the_paired_score_interval_covers_the_true_drop_95_percent_of_the_time() {
    // A drop of 0.02 and of 0.01 on 300 samples, with 18 and 15 discordant pairs on average.
    for (both, lost, gained) in [(0.75, 0.04, 0.02), (0.8, 0.03, 0.02)] {
        let rate = score_coverage(both, lost, gained);
        assert!(
            (0.93..=0.97).contains(&rate),
            "({both}, {lost}, {gained}): {rate}"
        );
    }
    // With 4.5 discordant pairs on average the counts are too coarse for the nominal rate: the interval errs on
    // the safe side (97.2 % measured), never below.
    let rate = score_coverage(0.8, 0.01, 0.005);
    assert!(
        (0.93..=0.98).contains(&rate),
        "few discordant pairs: {rate}"
    );
}

/// How often the paired score interval of 300 simulated pairs covers the true drop.
fn score_coverage(both: f64, lost: f64, gained: f64) -> f64 {
    coverage(|random| {
        let (fp32, quantized) = paired_accuracy(random, 300, both, lost, gained);
        let i = drop_interval(&fp32, &quantized, Direction::HigherBetter, at_95()).unwrap();
        assert_eq!(i.method, IntervalMethod::PairedScore);
        ((i.low, i.high), lost - gained)
    })
}

#[test]
fn the_paired_bootstrap_covers_the_true_drop_95_percent_of_the_time() {
    // A loss-like metric: the quantized model's per-sample loss is FP32's plus 0.05 plus noise.
    let rate = coverage(|random| {
        let fp32: Vec<f64> = (0..200).map(|_| 1.0 + normal(random)).collect();
        let quantized: Vec<f64> = fp32
            .iter()
            .map(|f| f + 0.05 + 0.3 * normal(random))
            .collect();
        let seed = random.next_u64();
        let bounds = paired_bootstrap(&quantized, &fp32, 0.95, 1000, seed);
        (bounds, 0.05)
    });
    assert!((0.93..=0.97).contains(&rate), "{rate}");
}

#[test]
fn an_interval_narrows_like_one_over_root_n() {
    let width = |n: usize, direction: Direction| {
        let mut random = SplitMix64::new(11);
        let (fp32, quantized) = paired_accuracy(&mut random, n, 0.75, 0.04, 0.02);
        let (fp32, quantized) = match direction {
            Direction::HigherBetter => (fp32, quantized),
            // As losses: 1 − accuracy, so the bootstrap path runs on the same pairs.
            Direction::HigherWorse => (
                fp32.iter().map(|v| 1.5 - v).collect(),
                quantized.iter().map(|v| 1.5 - v).collect(),
            ),
        };
        let i = drop_interval(&fp32, &quantized, direction, at_95()).unwrap();
        i.high - i.low
    };
    for direction in [Direction::HigherBetter, Direction::HigherWorse] {
        let ratio = width(4800, direction) / width(300, direction);
        assert!(
            (0.2..=0.3).contains(&ratio),
            "{direction:?}: 16× the samples, {ratio}× the width"
        );
    }
}

#[test]
fn identical_models_get_an_interval_around_zero_and_no_pairs_none() {
    let same = vec![1.0, 0.0, 1.0, 1.0];
    let i = drop_interval(&same, &same, Direction::HigherBetter, at_95()).unwrap();
    assert!(i.low < 0.0 && i.high > 0.0, "{i:?}");
    assert_eq!(i.samples, 4);
    assert_eq!(
        drop_interval(&[], &[], Direction::HigherBetter, at_95()),
        None
    );
    // For an error-like metric the drop is quantized − FP32: a quantized model 0.5 worse everywhere.
    let (fp32, worse) = (vec![1.0, 2.0, 3.0], vec![1.5, 2.5, 3.5]);
    let i = drop_interval(&fp32, &worse, Direction::HigherWorse, at_95()).unwrap();
    assert_eq!(
        (i.low, i.high, i.method),
        (0.5, 0.5, IntervalMethod::PairedBootstrap)
    );
}

#[test]
fn the_bootstrap_resamples_are_the_ones_asked_for_and_seeded() {
    let mut random = SplitMix64::new(5);
    let losses = |v: Vec<f64>| v.into_iter().map(|x| 1.5 - x).collect::<Vec<f64>>();
    let (fp32, quantized) = paired_accuracy(&mut random, 300, 0.75, 0.04, 0.02);
    let (fp32, quantized) = (losses(fp32), losses(quantized));
    let with = |resamples| {
        let asked = IntervalParams {
            resamples,
            ..at_95()
        };
        drop_interval(&fp32, &quantized, Direction::HigherWorse, asked).unwrap()
    };
    assert_eq!(with(2000), with(2000), "seeded: the same interval again");
    assert_ne!(
        with(2000),
        with(20),
        "another count of resamples, other bounds"
    );
    assert_eq!(with(1).low, with(1).high, "one resample: one mean");
}

/// Macro-F1 of `(truth, predicted)` class pairs over `classes` classes: a dataset-level metric, not a mean of
/// per-sample values.
fn macro_f1(pairs: &[(usize, usize)], classes: usize) -> f64 {
    let mut counts = vec![(0usize, 0usize, 0usize); classes]; // (truth, predicted, correct)
    for &(truth, predicted) in pairs {
        counts[truth].0 += 1;
        counts[predicted].1 += 1;
        counts[truth].2 += usize::from(truth == predicted);
    }
    let seen: Vec<_> = counts.iter().filter(|c| c.0 + c.1 > 0).collect();
    seen.iter()
        .map(|c| 2.0 * c.2 as f64 / (c.0 + c.1) as f64)
        .sum::<f64>()
        / seen.len() as f64
}

/// `n` samples of 3 classes: the label, FP32's prediction (right 80 % of the time) and the quantized model's
/// (FP32's, changed to another class 8 % of the time).
fn three_class_predictions(random: &mut SplitMix64, n: usize) -> Vec<(usize, usize, usize)> {
    (0..n)
        .map(|_| {
            let truth = random.below(3);
            let fp32 = match uniform(random) < 0.8 {
                true => truth,
                false => (truth + 1 + random.below(2)) % 3,
            };
            let quantized = match uniform(random) < 0.08 {
                true => (fp32 + 1 + random.below(2)) % 3,
                false => fp32,
            };
            (truth, fp32, quantized)
        })
        .collect()
}

/// The set bootstrap's interval of the macro-F1 drop over `samples`, each model scored on the same resamples.
fn f1_drop_interval(samples: &[(usize, usize, usize)], resamples_asked: usize) -> DropInterval {
    let score = |model: fn(&(usize, usize, usize)) -> (usize, usize)| {
        resamples(samples.len(), resamples_asked)
            .map(|positions| {
                let pairs: Vec<_> = positions.iter().map(|&p| model(&samples[p])).collect();
                macro_f1(&pairs, 3)
            })
            .collect::<Vec<f64>>()
    };
    let (fp32, quantized) = (score(|s| (s.0, s.1)), score(|s| (s.0, s.2)));
    set_drop_interval(
        &fp32,
        &quantized,
        samples.len(),
        Direction::HigherBetter,
        0.95,
    )
    .unwrap()
}

#[test]
fn the_set_bootstrap_covers_a_dataset_level_metrics_true_drop_95_percent_of_the_time() {
    // The true drop: macro-F1's drop on a population of a million samples.
    let population = three_class_predictions(&mut SplitMix64::new(3), 1_000_000);
    let f1 = |model: fn(&(usize, usize, usize)) -> (usize, usize)| {
        macro_f1(&population.iter().map(model).collect::<Vec<_>>(), 3)
    };
    let truth = f1(|s| (s.0, s.1)) - f1(|s| (s.0, s.2));
    let rate = coverage(|random| {
        let samples = three_class_predictions(random, 300);
        let i = f1_drop_interval(&samples, 500);
        assert_eq!(i.method, IntervalMethod::SetBootstrap);
        ((i.low, i.high), truth)
    });
    assert!((0.93..=0.97).contains(&rate), "{rate} (true drop {truth})");
    // And it narrows like 1/√n.
    let width = |n| {
        let i = f1_drop_interval(&three_class_predictions(&mut SplitMix64::new(9), n), 2000);
        i.high - i.low
    };
    let ratio = width(4800) / width(300);
    assert!(
        (0.2..=0.3).contains(&ratio),
        "16× the samples, {ratio}× the width"
    );
}

#[test]
fn set_resamples_are_seeded_and_unpaired_values_give_no_interval() {
    let drawn: Vec<Vec<usize>> = resamples(5, 3).collect();
    assert_eq!(drawn, resamples(5, 3).collect::<Vec<_>>(), "seeded");
    assert!(drawn
        .iter()
        .all(|r| r.len() == 5 && r.iter().all(|&p| p < 5)));
    assert_ne!(drawn[0], drawn[1], "each resample its own draw");
    assert_eq!(resamples(0, 3).count(), 0, "nothing to draw from");
    let up = Direction::HigherBetter;
    assert_eq!(set_drop_interval(&[0.5], &[0.4, 0.3], 5, up, 0.95), None);
    assert_eq!(set_drop_interval(&[], &[], 5, up, 0.95), None);
    let i = set_drop_interval(&[0.9, 0.8], &[0.85, 0.8], 5, up, 0.95).unwrap();
    assert_eq!((i.low, i.high, i.samples), (0.0, 0.9 - 0.85, 5));
}

/// 95 %, 2,000 resamples: the defaults.
fn at_95() -> IntervalParams {
    IntervalParams::of(&Default::default())
}
