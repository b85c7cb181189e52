//! Scales, zero points, and the exact ONNX rounding.
//!
//! Conventions (NNCF/POT and ONNX Runtime agree on them):
//! - ranges are widened to contain 0, so that 0.0 is represented exactly (padding, ReLU outputs);
//! - symmetric signed: `scale = max(|min|, |max|) / qmax`, zero point 0 (int8 weights use the narrow range
//!   −127..127 so that the range is symmetric, as runtimes' int8 kernels assume);
//! - symmetric unsigned (non-negative tensors): `scale = max / qmax`, zero point 0;
//! - asymmetric: `scale = (max − min) / (qmax − qmin)`, `zero_point = qmin − round(min / scale)`, clamped;
//! - `quantize(x) = saturate(round_half_even(x / scale) + zero_point)`, the division in f32, as ONNX specifies;
//! - `dequantize(q) = (q − zero_point) · scale`, the subtraction in integers, as ONNX Runtime computes it.

use crate::error::{Error, Result};
use crate::params::Mode;

/// The integer grid a quantizer maps onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantSpec {
    /// 8 or 16.
    pub bits: u8,
    /// Symmetric or asymmetric.
    pub mode: Mode,
    /// Signed storage type (int8/int16) or unsigned (uint8/uint16).
    pub signed: bool,
    /// Lowest level.
    pub qmin: i32,
    /// Highest level.
    pub qmax: i32,
}

impl QuantSpec {
    /// The full range of the storage type, or the narrow signed range (−127..127 for 8 bits) if `narrow_range`.
    pub fn new(bits: u8, mode: Mode, signed: bool, narrow_range: bool) -> Result<Self> {
        if bits != 8 && bits != 16 {
            return Err(Error::Config(format!(
                "{bits}-bit quantization is not supported (8 or 16)"
            )));
        }
        let (type_min, type_max) = type_range(bits, signed);
        let qmin = if narrow_range && signed {
            type_min + 1
        } else {
            type_min
        };
        Ok(QuantSpec {
            bits,
            mode,
            signed,
            qmin,
            qmax: type_max,
        })
    }

    /// Overrides the levels (POT `level_low` / `level_high`); they must fit the storage type.
    pub fn with_levels(mut self, level_low: Option<i32>, level_high: Option<i32>) -> Result<Self> {
        let (type_min, type_max) = type_range(self.bits, self.signed);
        let (qmin, qmax) = (
            level_low.unwrap_or(self.qmin),
            level_high.unwrap_or(self.qmax),
        );
        if qmin >= qmax || qmin < type_min || qmax > type_max {
            return Err(Error::Config(format!(
                "levels [{qmin}, {qmax}] do not fit {}{} (allowed {type_min}..{type_max}, low < high)",
                if self.signed { "int" } else { "uint" },
                self.bits
            )));
        }
        self.qmin = qmin;
        self.qmax = qmax;
        Ok(self)
    }
}

fn type_range(bits: u8, signed: bool) -> (i32, i32) {
    match (bits, signed) {
        (16, true) => (i16::MIN as i32, i16::MAX as i32),
        (16, false) => (0, u16::MAX as i32),
        (_, true) => (i8::MIN as i32, i8::MAX as i32),
        (_, false) => (0, u8::MAX as i32),
    }
}

/// A quantizer: one scale and zero point per tensor or per channel, its levels and storage type. (Not to be
/// confused with [`crate::quantize::QuantizationParams`], the algorithm's parameters.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quantizer {
    /// Scales (one, or one per channel).
    pub scale: Vec<f32>,
    /// Zero points, aligned with `scale`.
    pub zero_point: Vec<i32>,
    /// Channel axis for per-channel parameters.
    pub axis: Option<usize>,
    /// Lowest level.
    pub qmin: i32,
    /// Highest level.
    pub qmax: i32,
    /// Storage bits.
    pub bits: u8,
    /// Signed storage type.
    pub signed: bool,
}

/// The scale used for an all-zero range: any positive scale represents 0 exactly; this one is a normal f32
/// that every runtime accepts.
const ZERO_RANGE_SCALE: f32 = 1.0;

impl Quantizer {
    /// Parameters mapping `[min[c], max[c]]` onto `spec`'s levels, per channel along `axis` (or per tensor when
    /// `min`/`max` hold one value and `axis` is `None`).
    pub fn from_range(
        spec: &QuantSpec,
        min: &[f32],
        max: &[f32],
        axis: Option<usize>,
    ) -> Result<Self> {
        if min.len() != max.len() || min.is_empty() {
            return Err(Error::data(format!(
                "{} minimums for {} maximums",
                min.len(),
                max.len()
            )));
        }
        if axis.is_none() && min.len() != 1 {
            return Err(Error::data(
                "per-tensor parameters need exactly one range".to_string(),
            ));
        }
        let mut scale = Vec::with_capacity(min.len());
        let mut zero_point = Vec::with_capacity(min.len());
        for (&lo, &hi) in min.iter().zip(max) {
            if !lo.is_finite() || !hi.is_finite() {
                return Err(Error::data(format!("non-finite range [{lo}, {hi}]")));
            }
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let (s, z) = channel_params(spec, lo, hi);
            scale.push(s);
            zero_point.push(z);
        }
        Ok(Quantizer {
            scale,
            zero_point,
            axis,
            qmin: spec.qmin,
            qmax: spec.qmax,
            bits: spec.bits,
            signed: spec.signed,
        })
    }

    /// Quantizes one value of channel `channel` exactly as ONNX `QuantizeLinear`.
    pub fn quantize(&self, x: f32, channel: usize) -> i32 {
        let q = (x / self.scale[channel]).round_ties_even() + self.zero_point[channel] as f32;
        // NaN saturates to 0 under `as`; map it onto the zero point instead, the value that dequantizes to 0.
        if q.is_nan() {
            return self.zero_point[channel].clamp(self.qmin, self.qmax);
        }
        (q.clamp(self.qmin as f32, self.qmax as f32)) as i32
    }

    /// Dequantizes one value exactly as ONNX `DequantizeLinear`.
    pub fn dequantize(&self, q: i32, channel: usize) -> f32 {
        (q - self.zero_point[channel]) as f32 * self.scale[channel]
    }

    /// Quantizes a row-major tensor of `shape`.
    pub fn quantize_tensor(&self, data: &[f32], shape: &[usize]) -> Result<Vec<i32>> {
        let channel_of = self.channel_map(data.len(), shape)?;
        Ok(data
            .iter()
            .enumerate()
            .map(|(i, &x)| self.quantize(x, channel_of(i)))
            .collect())
    }

    /// Quantizes then dequantizes a row-major tensor of `shape` in place.
    pub fn fake_quantize_tensor(&self, data: &mut [f32], shape: &[usize]) -> Result<()> {
        let channel_of = self.channel_map(data.len(), shape)?;
        for (i, x) in data.iter_mut().enumerate() {
            let c = channel_of(i);
            *x = self.dequantize(self.quantize(*x, c), c);
        }
        Ok(())
    }

    /// Maps a flat index to its channel.
    fn channel_map(&self, len: usize, shape: &[usize]) -> Result<impl Fn(usize) -> usize> {
        if shape.iter().product::<usize>() != len {
            return Err(Error::data(format!(
                "{len} values do not fill shape {shape:?}"
            )));
        }
        let (channels, inner) = match self.axis {
            None => (1, 1),
            Some(axis) => {
                let channels = *shape.get(axis).ok_or_else(|| {
                    Error::data(format!("axis {axis} is outside shape {shape:?}"))
                })?;
                if channels != self.scale.len() {
                    return Err(Error::data(format!(
                        "shape {shape:?} has {channels} channels on axis {axis}, the parameters {}",
                        self.scale.len()
                    )));
                }
                (channels, shape[axis + 1..].iter().product::<usize>())
            }
        };
        Ok(move |i: usize| {
            if channels == 1 {
                0
            } else {
                (i / inner) % channels
            }
        })
    }
}

fn channel_params(spec: &QuantSpec, lo: f32, hi: f32) -> (f32, i32) {
    let (qmin, qmax) = (spec.qmin, spec.qmax);
    match spec.mode {
        Mode::Symmetric if spec.signed => {
            let scale = lo.abs().max(hi) / qmax as f32;
            (positive(scale), 0)
        }
        Mode::Symmetric => (positive(hi / (qmax - qmin) as f32), qmin),
        Mode::Asymmetric => {
            let scale = positive((hi - lo) / (qmax - qmin) as f32);
            let zero_point = (qmin as f32 - lo / scale)
                .round_ties_even()
                .clamp(qmin as f32, qmax as f32) as i32;
            (scale, zero_point)
        }
    }
}

fn positive(scale: f32) -> f32 {
    if scale > f32::MIN_POSITIVE {
        scale
    } else {
        ZERO_RANGE_SCALE
    }
}

/// The lowest level of a half-range int8 weight quantizer.
pub const HALF_RANGE_LOW: i32 = -64;
/// The highest level of a half-range int8 weight quantizer.
pub const HALF_RANGE_HIGH: i32 = 63;

/// `params` (a symmetric signed int8 weight quantizer) turned half range: scales doubled, levels [-64, 63].
pub fn half_range(params: &Quantizer) -> Quantizer {
    Quantizer {
        scale: params.scale.iter().map(|s| s * 2.0).collect(),
        qmin: HALF_RANGE_LOW,
        qmax: HALF_RANGE_HIGH,
        ..params.clone()
    }
}

/// Whether a weight quantizer is half range (the overflow fix).
pub fn is_half_range(params: &Quantizer) -> bool {
    params.bits == 8
        && params.signed
        && params.qmin == HALF_RANGE_LOW
        && params.qmax == HALF_RANGE_HIGH
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn int8(mode: Mode, signed: bool) -> QuantSpec {
        QuantSpec::new(8, mode, signed, false).unwrap()
    }

    #[test]
    fn levels() {
        let s = QuantSpec::new(8, Mode::Symmetric, true, true).unwrap();
        assert_eq!((s.qmin, s.qmax), (-127, 127));
        let u = QuantSpec::new(8, Mode::Asymmetric, false, false).unwrap();
        assert_eq!((u.qmin, u.qmax), (0, 255));
        let s16 = QuantSpec::new(16, Mode::Symmetric, true, false).unwrap();
        assert_eq!((s16.qmin, s16.qmax), (-32768, 32767));
        assert!(QuantSpec::new(4, Mode::Symmetric, true, false).is_err());
        assert!(int8(Mode::Symmetric, true)
            .with_levels(Some(-200), None)
            .is_err());
        assert!(int8(Mode::Symmetric, true)
            .with_levels(Some(5), Some(5))
            .is_err());
        assert_eq!(
            int8(Mode::Symmetric, true)
                .with_levels(Some(-64), Some(63))
                .unwrap()
                .qmin,
            -64
        );
    }

    #[test]
    fn ties_round_to_even_and_saturate() {
        let p =
            Quantizer::from_range(&int8(Mode::Symmetric, true), &[-127.0], &[127.0], None).unwrap();
        assert_eq!(p.scale, vec![1.0]);
        assert_eq!(p.quantize(2.5, 0), 2);
        assert_eq!(p.quantize(3.5, 0), 4);
        assert_eq!(p.quantize(-2.5, 0), -2);
        assert_eq!(p.quantize(1000.0, 0), 127);
        assert_eq!(p.quantize(-1000.0, 0), -128);
        assert_eq!(p.quantize(f32::NAN, 0), 0);
    }

    #[test]
    fn degenerate_and_invalid_ranges() {
        let p =
            Quantizer::from_range(&int8(Mode::Asymmetric, false), &[0.0], &[0.0], None).unwrap();
        assert!(p.scale[0] > 0.0 && p.scale[0].is_normal());
        assert_eq!(p.dequantize(p.quantize(0.0, 0), 0), 0.0);
        assert!(
            Quantizer::from_range(&int8(Mode::Symmetric, true), &[f32::NAN], &[1.0], None).is_err()
        );
        assert!(Quantizer::from_range(
            &int8(Mode::Symmetric, true),
            &[0.0, 1.0],
            &[1.0, 2.0],
            None
        )
        .is_err());
    }

    #[test]
    fn unsigned_symmetric_uses_all_levels_for_non_negative_ranges() {
        let p = Quantizer::from_range(&int8(Mode::Symmetric, false), &[0.0], &[6.0], None).unwrap();
        assert_eq!(p.zero_point, vec![0]);
        assert!((p.scale[0] - 6.0 / 255.0).abs() < 1e-9);
        assert_eq!(p.quantize(6.0, 0), 255);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let p = Quantizer::from_range(
            &int8(Mode::Symmetric, true),
            &[-1.0, -1.0],
            &[1.0, 1.0],
            Some(0),
        )
        .unwrap();
        assert!(p.quantize_tensor(&[0.0; 6], &[3, 2]).is_err());
        assert!(p.quantize_tensor(&[0.0; 5], &[2, 3]).is_err());
    }

    fn spec_strategy() -> impl Strategy<Value = QuantSpec> {
        (
            prop_oneof![Just(8u8), Just(16u8)],
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(bits, asym, signed, narrow)| {
                let mode = if asym {
                    Mode::Asymmetric
                } else {
                    Mode::Symmetric
                };
                QuantSpec::new(bits, mode, signed, narrow).unwrap()
            })
    }

    proptest! {
        #[test]
        fn round_trip_error_is_at_most_half_a_step(
            spec in spec_strategy(),
            lo in -100.0f32..0.0,
            hi in 0.0f32..100.0,
            t in 0.0f32..=1.0,
        ) {
            let p = Quantizer::from_range(&spec, &[lo], &[hi], None).unwrap();
            // Values inside the representable range of this quantizer.
            let rep_lo = p.dequantize(p.qmin, 0);
            let rep_hi = p.dequantize(p.qmax, 0);
            let x = rep_lo + (rep_hi - rep_lo) * t;
            let err = (p.dequantize(p.quantize(x, 0), 0) - x).abs();
            prop_assert!(err <= p.scale[0] / 2.0 * (1.0 + 1e-4) + f32::EPSILON * x.abs(), "err {err} scale {}", p.scale[0]);
        }

        #[test]
        fn saturates_outside_the_range(spec in spec_strategy(), hi in 0.1f32..100.0, k in 2.0f32..1000.0) {
            let p = Quantizer::from_range(&spec, &[-hi], &[hi], None).unwrap();
            prop_assert_eq!(p.quantize(hi * k + 1.0, 0), p.qmax);
            prop_assert_eq!(p.quantize(-hi * k - 1.0, 0), p.qmin);
        }

        #[test]
        fn zero_is_exact(spec in spec_strategy(), lo in -100.0f32..100.0, hi in -100.0f32..100.0) {
            let p = Quantizer::from_range(&spec, &[lo.min(hi)], &[lo.max(hi)], None).unwrap();
            let q = p.quantize(0.0, 0);
            prop_assert_eq!(q, p.zero_point[0]);
            prop_assert_eq!(p.dequantize(q, 0), 0.0);
            prop_assert!(p.zero_point[0] >= p.qmin && p.zero_point[0] <= p.qmax);
        }

        #[test]
        fn per_channel_uses_each_channel_own_scale(
            ranges in proptest::collection::vec(0.01f32..50.0, 1..5),
            inner in 1usize..4,
            seed in any::<u32>(),
        ) {
            let spec = int8(Mode::Symmetric, true);
            let channels = ranges.len();
            let neg: Vec<f32> = ranges.iter().map(|r| -r).collect();
            let p = Quantizer::from_range(&spec, &neg, &ranges, Some(1)).unwrap();
            let shape = [2, channels, inner];
            let data: Vec<f32> = (0..2 * channels * inner)
                .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 * 60.0 - 30.0)
                .collect();
            let q = p.quantize_tensor(&data, &shape).unwrap();
            for b in 0..2 {
                for c in 0..channels {
                    let single = Quantizer::from_range(&spec, &[neg[c]], &[ranges[c]], None).unwrap();
                    for k in 0..inner {
                        let i = (b * channels + c) * inner + k;
                        prop_assert_eq!(q[i], single.quantize(data[i], 0));
                    }
                }
            }
        }
    }
}
