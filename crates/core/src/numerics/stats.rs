//! Calibration statistics: POT/NNCF range estimators.
//!
//! A range estimator reduces each calibration sample's activation to one number per side (the *statistic*:
//! min, max, abs_max, quantile, abs_quantile) and then combines those numbers over the samples (the
//! *aggregator*: mean, max, min, median, and the no-outliers variants). Only the per-sample numbers are kept —
//! two floats per sample per tensor — never the activations, so memory does not grow with tensor size.
//!
//! The default for activations is NNCF's `MEAN_MINMAX` (mean over samples of each sample's min and max),
//! which is also POT's DefaultQuantization default; weights use their plain per-channel min and max.

use ndarray::{ArrayViewD, Axis};

use crate::error::{Error, Result};
use crate::params::{Aggregator, Estimator, RangeEstimator, Statistic};

/// Collects one tensor's per-sample statistics.
#[derive(Debug, Clone)]
pub struct TensorStats {
    range: RangeEstimator,
    mins: Vec<f64>,
    maxs: Vec<f64>,
}

impl TensorStats {
    /// An empty collector.
    pub fn new(range: RangeEstimator) -> Self {
        TensorStats {
            range,
            mins: Vec::new(),
            maxs: Vec::new(),
        }
    }

    /// Observes a batch (axis 0 = samples), reducing each sample separately.
    pub fn observe(&mut self, batch: ArrayViewD<f32>) -> Result<()> {
        for sample in batch.axis_iter(Axis(0)) {
            // Engines hand over contiguous outputs: reduce them in place, copying only the rare strided view.
            let copy: Vec<f32>;
            let values = match sample.as_slice_memory_order() {
                Some(values) => values,
                None => {
                    copy = sample.iter().copied().collect();
                    &copy
                }
            };
            if !values.is_empty() {
                self.push(values, Extremes::of(values, None))?;
            }
        }
        Ok(())
    }

    /// Observes one sample's contiguous `values` and adds them into `sum` (of the same length), element by
    /// element, in the same pass: calibration reads each input of a bias-corrected layer once instead of
    /// twice (the activations of a sample outgrow the caches).
    pub fn observe_adding(&mut self, values: &[f32], sum: &mut [f32]) -> Result<()> {
        assert_eq!(values.len(), sum.len(), "a sum has one value per element");
        match values.is_empty() {
            true => Ok(()),
            false => self.push(values, Extremes::of(values, Some(sum))),
        }
    }

    /// Keeps the statistics of one sample with these extremes.
    fn push(&mut self, values: &[f32], extremes: Extremes) -> Result<()> {
        if !extremes.finite {
            return Err(Error::data(
                "non-finite activation (NaN or Inf) during calibration",
            ));
        }
        self.mins
            .push(reduce(values, &extremes, self.range.min, Side::Low));
        self.maxs
            .push(reduce(values, &extremes, self.range.max, Side::High));
        Ok(())
    }

    /// The estimated `(min, max)`.
    pub fn finish(&self) -> Result<(f32, f32)> {
        if self.mins.is_empty() {
            return Err(Error::data("no calibration sample was observed"));
        }
        let min = aggregate(&self.mins, self.range.min);
        let max = aggregate(&self.maxs, self.range.max);
        Ok((min as f32, max.max(min) as f32))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Low,
    High,
}

/// Minimum, maximum and finiteness of a sample, in one pass over it.
struct Extremes {
    min: f32,
    max: f32,
    finite: bool,
}

impl Extremes {
    /// Lane-wise accumulators over fixed-size chunks, so the compiler vectorises the pass (calibration
    /// reduces every activation of every sample: this is its hot loop). With `sum`, each value is also added
    /// into it.
    fn of(values: &[f32], sum: Option<&mut [f32]>) -> Extremes {
        let mut lanes = Lanes::new();
        let mut chunks = values.chunks_exact(LANES);
        match sum {
            Some(sum) => {
                let mut sums = sum.chunks_exact_mut(LANES);
                for (chunk, sums) in (&mut chunks).zip(&mut sums) {
                    lanes.take(chunk);
                    for (s, v) in sums.iter_mut().zip(chunk) {
                        *s += v;
                    }
                }
                for (s, v) in sums.into_remainder().iter_mut().zip(chunks.remainder()) {
                    *s += v;
                }
            }
            None => (&mut chunks).for_each(|chunk| lanes.take(chunk)),
        }
        let mut extremes = lanes.extremes();
        for &v in chunks.remainder() {
            extremes.min = extremes.min.min(v);
            extremes.max = extremes.max.max(v);
            extremes.finite &= v.is_finite();
        }
        extremes
    }
}

const LANES: usize = 16;

/// Per-lane minimum, maximum and finiteness.
struct Lanes {
    min: [f32; LANES],
    max: [f32; LANES],
    finite: [bool; LANES],
}

impl Lanes {
    fn new() -> Lanes {
        Lanes {
            min: [f32::INFINITY; LANES],
            max: [f32::NEG_INFINITY; LANES],
            finite: [true; LANES],
        }
    }

    #[inline(always)]
    fn take(&mut self, chunk: &[f32]) {
        let lanes = self.min.iter_mut().zip(&mut self.max).zip(&mut self.finite);
        for (((min, max), finite), &v) in lanes.zip(chunk) {
            *min = if v < *min { v } else { *min };
            *max = if v > *max { v } else { *max };
            *finite &= v.abs() <= f32::MAX;
        }
    }

    fn extremes(&self) -> Extremes {
        Extremes {
            min: self.min.iter().copied().fold(f32::INFINITY, f32::min),
            max: self.max.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            finite: self.finite.iter().all(|&f| f),
        }
    }
}

fn reduce(values: &[f32], extremes: &Extremes, estimator: Estimator, side: Side) -> f64 {
    let p = estimator.outlier_prob;
    let signed = |v: f64| if side == Side::Low { -v } else { v };
    match estimator.statistic {
        Statistic::Min => extremes.min as f64,
        Statistic::Max => extremes.max as f64,
        Statistic::AbsMax => signed(extremes.min.abs().max(extremes.max.abs()) as f64),
        Statistic::Quantile => quantile(
            &mut values.to_vec(),
            if side == Side::Low { p } else { 1.0 - p },
        ),
        Statistic::AbsQuantile => {
            let mut abs: Vec<f32> = values.iter().map(|v| v.abs()).collect();
            signed(quantile(&mut abs, 1.0 - p))
        }
    }
}

/// numpy's default (linear) quantile, by selection rather than a full sort.
fn quantile(values: &mut [f32], q: f64) -> f64 {
    let n = values.len();
    let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = position.floor() as usize;
    let hi = position.ceil() as usize;
    let (_, &mut lo_value, upper) = values.select_nth_unstable_by(lo, f32::total_cmp);
    let hi_value = if hi == lo {
        lo_value
    } else {
        upper.iter().copied().fold(f32::INFINITY, f32::min)
    };
    lo_value as f64 + (hi_value as f64 - lo_value as f64) * (position - lo as f64)
}

fn aggregate(values: &[f64], estimator: Estimator) -> f64 {
    let mut v = values.to_vec();
    match estimator.aggregator {
        Aggregator::Mean => mean(&v),
        Aggregator::Max => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregator::Min => v.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregator::Median => median(&mut v),
        Aggregator::MeanNoOutliers => mean(&without_outliers(&mut v, estimator.outlier_prob)),
        Aggregator::MedianNoOutliers => {
            median(&mut without_outliers(&mut v, estimator.outlier_prob))
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The values inside the `[p, 1 − p]` quantiles (NNCF's no-outliers aggregators); never empty.
fn without_outliers(v: &mut [f64], p: f64) -> Vec<f64> {
    let mut as_f32: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    let lo = quantile(&mut as_f32, p);
    let hi = quantile(&mut as_f32, 1.0 - p);
    let kept: Vec<f64> = v
        .iter()
        .copied()
        .filter(|&x| x >= lo - 1e-12 * lo.abs() && x <= hi + 1e-12 * hi.abs())
        .collect();
    if kept.is_empty() {
        v.to_vec()
    } else {
        kept
    }
}

/// Per-channel (along `axis`) or per-tensor minimum and maximum of a weight tensor.
pub fn weight_range(
    data: &[f32],
    shape: &[usize],
    axis: Option<usize>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if elements != Some(data.len()) {
        return Err(Error::data(format!(
            "{} values do not fill shape {shape:?}",
            data.len()
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::data("weight contains NaN or Inf"));
    }
    let (channels, inner) = match axis {
        None => (1, 1),
        Some(a) if a < shape.len() => (shape[a], shape[a + 1..].iter().product::<usize>()),
        Some(a) => return Err(Error::data(format!("axis {a} is outside shape {shape:?}"))),
    };
    let mut min = vec![f32::INFINITY; channels];
    let mut max = vec![f32::NEG_INFINITY; channels];
    for (i, &v) in data.iter().enumerate() {
        let c = if channels == 1 {
            0
        } else {
            (i / inner) % channels
        };
        min[c] = min[c].min(v);
        max[c] = max[c].max(v);
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Mode;
    use ndarray::{ArrayD, IxDyn};

    fn batch(rows: &[&[f32]]) -> ArrayD<f32> {
        let n = rows[0].len();
        ArrayD::from_shape_vec(IxDyn(&[rows.len(), n]), rows.concat()).unwrap()
    }

    #[test]
    fn mean_minmax_averages_per_sample_extremes() {
        let mut s = TensorStats::new(RangeEstimator::default_activations(Mode::Symmetric));
        s.observe(batch(&[&[-1.0, 2.0, 0.5], &[-3.0, 4.0, 0.0]]).view())
            .unwrap();
        assert_eq!(s.finish().unwrap(), (-2.0, 3.0));
        let mut m = TensorStats::new(RangeEstimator::min_max());
        m.observe(batch(&[&[-1.0, 2.0, 0.5], &[-3.0, 4.0, 0.0]]).view())
            .unwrap();
        assert_eq!(m.finish().unwrap(), (-3.0, 4.0));
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        // np.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0.1, 0.5, 0.9]) = [1.0, 3.5, 6.9]
        let data = [3.0f32, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        for (q, want) in [(0.1, 1.0), (0.5, 3.5), (0.9, 6.9)] {
            let got = quantile(&mut data.to_vec(), q);
            assert!((got - want).abs() < 1e-6, "q={q}: {got} vs {want}");
        }
    }

    #[test]
    fn abs_statistics_and_aggregators() {
        let e = |statistic, aggregator| RangeEstimator {
            min: Estimator::new(statistic, aggregator),
            max: Estimator::new(statistic, aggregator),
        };
        let rows: [&[f32]; 3] = [&[-5.0, 1.0], &[2.0, -1.0], &[0.5, 3.0]];
        let mut s = TensorStats::new(e(Statistic::AbsMax, Aggregator::Median));
        s.observe(batch(&rows).view()).unwrap();
        // per-sample abs max: 5, 2, 3 → median 3 → range [-3, 3]
        assert_eq!(s.finish().unwrap(), (-3.0, 3.0));
        let mut s = TensorStats::new(e(Statistic::Max, Aggregator::Max));
        s.observe(batch(&rows).view()).unwrap();
        assert_eq!(s.finish().unwrap().1, 3.0);
        let mut s = TensorStats::new(e(Statistic::Min, Aggregator::Min));
        s.observe(batch(&rows).view()).unwrap();
        assert_eq!(s.finish().unwrap().0, -5.0);
    }

    #[test]
    fn no_outlier_aggregators_drop_extremes() {
        let v: Vec<f64> = (0..100).map(|i| i as f64).chain([1e6]).collect();
        let e = Estimator {
            statistic: Statistic::Max,
            aggregator: Aggregator::MeanNoOutliers,
            outlier_prob: 0.01,
        };
        let with = aggregate(&v, Estimator::new(Statistic::Max, Aggregator::Mean));
        let without = aggregate(&v, e);
        assert!(with > 9000.0 && without < 100.0, "{with} {without}");
        let e = Estimator {
            aggregator: Aggregator::MedianNoOutliers,
            ..e
        };
        assert_eq!(aggregate(&v, e), 50.0);
    }

    #[test]
    fn non_finite_and_empty_are_errors() {
        let mut s = TensorStats::new(RangeEstimator::min_max());
        assert!(s.finish().is_err());
        assert!(s.observe(batch(&[&[1.0, f32::NAN]]).view()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn extremes_equal_a_plain_fold(
            values in proptest::collection::vec(-1e30f32..1e30, 1..100),
            poison in proptest::option::of((0usize..100, proptest::sample::select(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]))),
        ) {
            let mut values = values;
            let extremes = Extremes::of(&values, None);
            proptest::prop_assert_eq!(extremes.min, values.iter().copied().fold(f32::INFINITY, f32::min));
            proptest::prop_assert_eq!(extremes.max, values.iter().copied().fold(f32::NEG_INFINITY, f32::max));
            proptest::prop_assert!(extremes.finite);
            // Adding into a sum in the same pass: the same extremes, and every element added once.
            let start: Vec<f32> = (0..values.len()).map(|i| i as f32).collect();
            let mut sum = start.clone();
            let adding = Extremes::of(&values, Some(&mut sum));
            proptest::prop_assert_eq!((adding.min, adding.max), (extremes.min, extremes.max));
            let expected: Vec<f32> = start.iter().zip(&values).map(|(s, v)| s + v).collect();
            proptest::prop_assert_eq!(sum, expected);
            if let Some((at, bad)) = poison {
                let at = at % values.len();
                values[at] = bad;
                proptest::prop_assert!(!Extremes::of(&values, None).finite, "{bad} at {at} of {}", values.len());
            }
        }
    }

    #[test]
    fn weight_range_per_channel() {
        let (min, max) = weight_range(&[1.0, -2.0, 3.0, 4.0, -5.0, 6.0], &[2, 3], Some(0)).unwrap();
        assert_eq!((min, max), (vec![-2.0, -5.0], vec![3.0, 6.0]));
        let (min, max) = weight_range(&[1.0, -2.0, 3.0, 4.0, -5.0, 6.0], &[2, 3], Some(1)).unwrap();
        assert_eq!((min, max), (vec![1.0, -5.0, 3.0], vec![4.0, -2.0, 6.0]));
        let (min, max) = weight_range(&[1.0, -2.0], &[2], None).unwrap();
        assert_eq!((min, max), (vec![-2.0], vec![1.0]));
    }

    #[test]
    fn pot_config_block_parses() {
        let r: RangeEstimator = serde_json::from_str(
            r#"{"min": {"type": "min", "aggregator": "mean"}, "max": {"type": "quantile", "outlier_prob": 0.001, "aggregator": "mean"}}"#,
        )
        .unwrap();
        assert_eq!(r.max.statistic, Statistic::Quantile);
        assert_eq!(r.max.outlier_prob, 0.001);
        assert!(serde_json::from_str::<RangeEstimator>(r#"{"min": {"type": "min", "aggregator": "mean", "x": 1}, "max": {"type": "max", "aggregator": "max"}}"#).is_err());
    }

    /// Found while fixing `raw_data_byte_size_overflow` (aquant-onnx): the element count of a shape whose
    /// product overflows panicked in debug builds instead of being a size mismatch.
    #[test]
    fn weight_range_of_an_overflowing_shape_is_an_error() {
        let err = weight_range(&[], &[1 << 62, 8], Some(0)).unwrap_err();
        assert!(err.to_string().contains("do not fill shape"), "{err}");
    }
}
