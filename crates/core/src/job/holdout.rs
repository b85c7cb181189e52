//! The held-out confirmation (issue #30): part of the validation set the search never sees, on which FP32 and
//! the saved model are judged once the search is over.
//!
//! A search picks the model that looks best on its samples, so its drop flatters the model; a drop measured on
//! samples no decision depended on does not. The search runs on a [`Subset`] view renumbered from 0, so no
//! index of a held-out sample can reach it (nor its deployed check, its journal or its ranking subset).

use crate::backend::Backend;
use crate::data::{Dataset, Subset};
use crate::error::Result;
use crate::job::deployed::Judged;
use crate::metric::confidence::{self, LEVEL};
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
}

/// `validation` split by a seeded draw of `fraction` of its samples (at least one, never all), or `None` for a
/// fraction of 0. Each part keeps the samples' order.
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
    let mut held_out = order[..count].to_vec();
    let mut search = order[count..].to_vec();
    held_out.sort_unstable();
    search.sort_unstable();
    Ok(Some(Split {
        search: Subset::new(validation, search)?,
        held_out: Subset::new(validation, held_out)?,
    }))
}

/// FP32 and the saved model judged on the held-out samples by `engine`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn confirm(
    engine: &dyn Backend,
    fp32: &ModelProto,
    saved: &ModelProto,
    held_out: &Subset,
    metrics: &[&dyn Metric],
    control: &AccuracyControlParams,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<Confirmation> {
    let judged = Judged {
        engine,
        data: held_out,
        metrics,
        batch_size,
        progress,
    };
    let (baseline, quantized) =
        judged.evaluate(fp32, saved, ["FP32 (held out)", "held-out confirmation"])?;
    let metrics: Vec<ConfirmedMetric> = metrics
        .iter()
        .zip(baseline.metrics.iter().zip(&quantized.metrics))
        .map(|(metric, (base, value))| {
            let direction = metric.direction();
            ConfirmedMetric {
                name: metric.name().into(),
                baseline: base.value,
                r#final: value.value,
                drop: direction.drop(base.value, value.value),
                allowed_drop: control.allowed_drop(base.value),
                drop_ci: confidence::drop_interval(
                    &base.per_sample,
                    &value.per_sample,
                    direction,
                    LEVEL,
                ),
            }
        })
        .collect();
    Ok(Confirmation {
        samples: held_out.len(),
        indices: held_out.indices().to_vec(),
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
