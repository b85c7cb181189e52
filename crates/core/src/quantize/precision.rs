//! Per-op precision: the rungs of accuracy control's precision ladder, and what each does to an op's
//! quantizers.
//!
//! A quantized op runs at the base algorithm's bits (int8 unless `--weights-bits`/`--activations-bits` say
//! otherwise). The search may move a group of ops up the ladder: to 16-bit weights and/or activations, or to
//! FP32 (today's revert). A 16-bit quantizer keeps the calibrated *range* of the int8 one and only adds levels
//! ([`widen`]): no second calibration, and the 16-bit grid contains every value the 8-bit grid reached, so a
//! step up never moves a range a user's statistics chose.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quant::{Mode, QuantSpec, Quantizer};
use crate::quantize::{Placement, Preset, QuantizationParams, TargetDevice};

/// The first standard opset whose QuantizeLinear/DequantizeLinear take int16/uint16 (ONNX Runtime rejects them
/// at 13 and 19).
pub const SIXTEEN_BIT_OPSET: i64 = 21;

/// Where a quantized op sits: its weight and activation bits, or FP32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Precision {
    /// The base algorithm's quantizers, unchanged (int8 by default). Never a ladder step: it is where every
    /// op starts.
    Base,
    /// 8-bit weights, 16-bit activations.
    W8A16,
    /// 16-bit weights, 8-bit activations.
    W16A8,
    /// 16-bit weights and activations.
    W16A16,
    /// Not quantized: the op runs in FP32 (a revert).
    Fp32,
}

impl Precision {
    /// The ladder steps a user may name, in the order the help lists them.
    pub const STEPS: [Precision; 4] = [
        Precision::W8A16,
        Precision::W16A16,
        Precision::W16A8,
        Precision::Fp32,
    ];

    /// The name a ladder step and the report use (`w8a16`, `fp32`; the base is `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Base => "int8",
            Precision::W8A16 => "w8a16",
            Precision::W16A8 => "w16a8",
            Precision::W16A16 => "w16a16",
            Precision::Fp32 => "fp32",
        }
    }

    /// Bits the op's weights are widened to (`None`: kept as quantized).
    pub fn weight_bits(self) -> Option<u8> {
        matches!(self, Precision::W16A8 | Precision::W16A16).then_some(16)
    }

    /// Bits the op's input activations are widened to (`None`: kept as quantized).
    pub fn activation_bits(self) -> Option<u8> {
        matches!(self, Precision::W8A16 | Precision::W16A16).then_some(16)
    }

    /// Whether the op keeps quantizers with at least one of them at 16 bits.
    pub fn is_sixteen_bit(self) -> bool {
        self.weight_bits().is_some() || self.activation_bits().is_some()
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A ladder step: `w8a16`, `w16a16`, `w16a8` or `fp32` (case-insensitive).
impl FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        Precision::STEPS
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = Precision::STEPS.iter().map(|p| p.name()).collect();
                format!(
                    "'{text}' is not a precision step (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

impl Serialize for Precision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Precision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The precision of every op that is not at [`Precision::Base`], by op name.
pub type Precisions = BTreeMap<String, Precision>;

/// Where `target_device` puts each quantized op before any search: nowhere but [`Precision::Base`], except
/// for GNA, which POT's `gna.json` quantizes with 16-bit activations everywhere, 16-bit Convolution weights and
/// 8-bit (performance preset) or 16-bit (accuracy preset) weights for the other weighted ops (MatMul, Gemm).
/// Accuracy control then moves those 8-bit weights to 16 bits, as POT's AccuracyAwareGNA does.
pub fn device_precisions(placement: &Placement, params: &QuantizationParams) -> Precisions {
    if params.target_device != TargetDevice::Gna {
        return Precisions::new();
    }
    placement
        .nodes
        .iter()
        .map(|node| {
            let wide_weights = node.weight.is_none()
                || node.op_type == "Conv"
                || params.preset == Preset::Accuracy;
            let precision = if wide_weights {
                Precision::W16A16
            } else {
                Precision::W8A16
            };
            (node.name.clone(), precision)
        })
        .collect()
}

/// `quantizer` with `bits` levels over the same real range: `[(qmin − z)·s, (qmax − z)·s]` per channel is
/// fitted again on the wider type with the same signedness, symmetry and narrow range. Already at `bits`: unchanged.
pub fn widen(quantizer: &Quantizer, bits: u8) -> Result<Quantizer> {
    if quantizer.bits == bits {
        return Ok(quantizer.clone());
    }
    let symmetric = quantizer.zero_point.iter().all(|&z| z == 0);
    let mode = if symmetric {
        Mode::Symmetric
    } else {
        Mode::Asymmetric
    };
    let narrow = quantizer.signed && quantizer.qmin == -quantizer.qmax;
    let spec = QuantSpec::new(bits, mode, quantizer.signed, narrow)?;
    let (min, max): (Vec<f32>, Vec<f32>) = quantizer
        .scale
        .iter()
        .zip(&quantizer.zero_point)
        .map(|(&s, &z)| {
            (
                (quantizer.qmin - z) as f32 * s,
                (quantizer.qmax - z) as f32 * s,
            )
        })
        .unzip();
    Quantizer::from_range(&spec, &min, &max, quantizer.axis)
        .map_err(|e| Error::data(format!("widening a quantizer to {bits} bits: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_parse_and_print() {
        for step in Precision::STEPS {
            assert_eq!(step.name().parse::<Precision>(), Ok(step));
        }
        assert_eq!("W8A16".parse::<Precision>(), Ok(Precision::W8A16));
        let error = "int4".parse::<Precision>().unwrap_err();
        assert!(error.contains("w8a16, w16a16, w16a8, fp32"), "{error}");
        assert!("int8".parse::<Precision>().is_err(), "the base is no step");
    }

    #[test]
    fn widening_keeps_the_range_and_adds_levels() {
        let spec = QuantSpec::new(8, Mode::Symmetric, true, true).unwrap();
        let q8 = Quantizer::from_range(&spec, &[-1.0, -2.0], &[1.0, 0.5], Some(0)).unwrap();
        let q16 = widen(&q8, 16).unwrap();
        assert_eq!((q16.bits, q16.qmin, q16.qmax), (16, -32767, 32767));
        for c in 0..2 {
            let (r8, r16) = (q8.scale[c] * 127.0, q16.scale[c] * 32767.0);
            assert!((r8 - r16).abs() <= 1e-6 * r8, "channel {c}: {r8} vs {r16}");
        }
        let spec = QuantSpec::new(8, Mode::Asymmetric, false, false).unwrap();
        let a8 = Quantizer::from_range(&spec, &[-0.5], &[3.0], None).unwrap();
        let a16 = widen(&a8, 16).unwrap();
        assert_eq!((a16.bits, a16.signed, a16.qmax), (16, false, 65535));
        let (lo, hi) = (a16.dequantize(0, 0), a16.dequantize(65535, 0));
        assert!(
            (lo - a8.dequantize(0, 0)).abs() < 1e-3 && (hi - a8.dequantize(255, 0)).abs() < 1e-3
        );
    }
}
