//! The held-out confirmation (issue #30): part of the validation set the search never sees, on which FP32 and
//! the saved model are judged once the search is over.
//!
//! A search picks the model that looks best on its samples, so its drop flatters the model; a drop measured on
//! samples no decision depended on does not. The search runs on a [`Subset`] view renumbered from 0, so no
//! index of a held-out sample can reach it (nor its deployed check, its journal or its ranking subset).

use std::collections::HashMap;

use crate::backend::Backend;
use crate::data::{Dataset, Subset};
use crate::error::Result;
use crate::job::deployed::Judged;
use crate::metric::confidence::IntervalParams;
use crate::metric::{within_limit, Metric};
use crate::numerics::SplitMix64;
use crate::params::AccuracyControlParams;
use crate::progress::Progress;
use crate::search::{Confirmation, ConfirmedMetric};
use aquant_onnx::ModelProto;

/// The validation set split for a run: the search's view and the held-out view.
pub(crate) struct Split<'a> {
    pub search: Subset<'a>,
    pub held_out: Subset<'a>,
    /// Whether the draw was stratified by class label.
    pub stratified: bool,
}

/// `validation` split by a seeded draw of `fraction` of its samples (at least one, never all), or `None` for a
/// fraction of 0. Each part keeps the samples' order. Where the dataset knows every sample's class label, the
/// draw is stratified: each class gives its share, so that the held-out drop is not that of another mix of
/// classes than the search's.
pub(crate) fn split(
    validation: &dyn Dataset,
    fraction: f64,
    seed: u64,
) -> Result<Option<Split<'_>>> {
    let len = validation.len();
    if fraction <= 0.0 || len < 2 {
        return Ok(None);
    }
    let count = ((len as f64 * fraction).round() as usize).clamp(1, len - 1);
    let order = SplitMix64::new(seed).permutation(len);
    let labels: Option<Vec<i64>> = (0..len).map(|i| validation.label(i)).collect();
    let mut held_out = match &labels {
        Some(labels) => stratified(&order, labels, count),
        None => order[..count].to_vec(),
    };
    held_out.sort_unstable();
    let mut search: Vec<usize> = order
        .into_iter()
        .filter(|i| held_out.binary_search(i).is_err())
        .collect();
    search.sort_unstable();
    Ok(Some(Split {
        search: Subset::new(validation, search)?,
        held_out: Subset::new(validation, held_out)?,
        stratified: labels.is_some(),
    }))
}

/// `count` samples of `order` (a seeded permutation), each class giving its share: `count × its size / len`
/// rounded down, the samples left over going to the classes with the largest remainders (ties: the class met
/// first in `order`, so that the seed decides). Within a class the samples come in `order`'s order.
fn stratified(order: &[usize], labels: &[i64], count: usize) -> Vec<usize> {
    let mut first_seen: HashMap<i64, usize> = HashMap::new();
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for &i in order {
        let class = *first_seen.entry(labels[i]).or_insert_with(|| {
            classes.push(Vec::new());
            classes.len() - 1
        });
        classes[class].push(i);
    }
    let len = order.len();
    let mut takes: Vec<usize> = classes.iter().map(|c| c.len() * count / len).collect();
    let left = count - takes.iter().sum::<usize>();
    let mut by_remainder: Vec<usize> = (0..classes.len()).collect();
    by_remainder.sort_by_key(|&k| std::cmp::Reverse(classes[k].len() * count % len));
    for &k in &by_remainder[..left] {
        takes[k] += 1;
    }
    classes
        .iter()
        .zip(takes)
        .flat_map(|(members, take)| members[..take].iter().copied())
        .collect()
}

/// FP32 and the saved model judged on the held-out samples by `engine`. The confirmation is the drop there
/// (intervals at the run's confidence level, for reading): the held-out part is usually too small for its own
/// interval to meet a target the search met at that level on the larger part.
#[allow(clippy::too_many_arguments)]
pub(crate) fn confirm(
    engine: &dyn Backend,
    fp32: &ModelProto,
    saved: &ModelProto,
    split: &Split,
    metrics: &[&dyn Metric],
    control: &AccuracyControlParams,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<Confirmation> {
    let held_out = &split.held_out;
    let judged = Judged {
        engine,
        data: held_out,
        metrics,
        batch_size,
        progress,
        bootstrap: control.bootstrap_samples,
    };
    let (baseline, quantized) =
        judged.evaluate(fp32, saved, ["FP32 (held out)", "held-out confirmation"])?;
    let metrics: Vec<ConfirmedMetric> = metrics
        .iter()
        .enumerate()
        .zip(baseline.metrics.iter().zip(&quantized.metrics))
        .map(|((i, metric), (base, value))| {
            let direction = metric.direction();
            ConfirmedMetric {
                name: metric.name().into(),
                baseline: base.value,
                r#final: value.value,
                drop: direction.drop(base.value, value.value),
                allowed_drop: control.allowed_drop(base.value),
                drop_ci: quantized.drop_interval(
                    &baseline,
                    i,
                    direction,
                    IntervalParams::of(control),
                ),
            }
        })
        .collect();
    Ok(Confirmation {
        samples: held_out.len(),
        indices: held_out.indices().to_vec(),
        stratified: split.stratified,
        engine: format!("{} {}", engine.name(), engine.version()),
        met: metrics.iter().all(|m| within_limit(m.drop, m.allowed_drop)),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Sample;

    struct Numbers(usize);

    impl Dataset for Numbers {
        fn len(&self) -> usize {
            self.0
        }

        fn get(&self, index: usize) -> Result<Sample> {
            Ok(Sample {
                inputs: Vec::new(),
                annotation: crate::data::Annotation::Label(index as i64),
                metadata: Default::default(),
            })
        }
    }

    /// `len` samples whose class labels the dataset knows: class `i % classes`.
    struct Labelled {
        len: usize,
        classes: usize,
    }

    impl Dataset for Labelled {
        fn len(&self) -> usize {
            self.len
        }

        fn get(&self, index: usize) -> Result<Sample> {
            Numbers(self.len).get(index)
        }

        fn label(&self, index: usize) -> Option<i64> {
            Some((index % self.classes) as i64)
        }
    }

    #[test]
    fn with_known_labels_every_class_gives_its_share() {
        // 3 classes of 100, 100 and 100 samples: 30 % held out is 30 of each.
        let data = Labelled {
            len: 300,
            classes: 3,
        };
        let per_class = |split: &Split| {
            let mut counts = [0; 3];
            split
                .held_out
                .indices()
                .iter()
                .for_each(|i| counts[i % 3] += 1);
            counts
        };
        let a = split(&data, 0.3, 7).unwrap().unwrap();
        assert_eq!(per_class(&a), [30, 30, 30]);
        assert_eq!(a.search.len(), 210);
        // 7 classes of 10: 15 of 70 → 2 each, one more for one class; the seed picks which.
        let uneven = Labelled {
            len: 70,
            classes: 7,
        };
        let extra = |seed| {
            let s = split(&uneven, 15.0 / 70.0, seed).unwrap().unwrap();
            let mut counts = [0; 7];
            s.held_out.indices().iter().for_each(|i| counts[i % 7] += 1);
            assert_eq!(counts.iter().sum::<usize>(), 15);
            assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
            counts.iter().position(|&c| c == 3).unwrap()
        };
        let extras: std::collections::BTreeSet<usize> = (0..20).map(extra).collect();
        assert!(extras.len() > 1, "always class {extras:?}");
    }

    #[test]
    fn the_split_is_seeded_disjoint_and_complete() {
        let data = Numbers(100);
        let a = split(&data, 0.3, 7).unwrap().unwrap();
        let b = split(&data, 0.3, 7).unwrap().unwrap();
        assert_eq!(
            a.held_out.indices(),
            b.held_out.indices(),
            "same seed, same split"
        );
        assert_eq!((a.held_out.len(), a.search.len()), (30, 70));
        let mut all: Vec<usize> = a
            .held_out
            .indices()
            .iter()
            .chain(a.search.indices())
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        let other = split(&data, 0.3, 8).unwrap().unwrap();
        assert_ne!(
            a.held_out.indices(),
            other.held_out.indices(),
            "another seed, another split"
        );
        assert!(split(&data, 0.0, 7).unwrap().is_none());
        let tiny = split(&Numbers(2), 0.01, 7).unwrap().unwrap();
        assert_eq!(
            (tiny.held_out.len(), tiny.search.len()),
            (1, 1),
            "at least one each"
        );
    }
}
