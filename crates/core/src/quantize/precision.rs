//! Per-op precision: the rungs of accuracy control's precision ladder, and what each does to an op's
//! quantizers.
//!
//! A quantized op runs at the base algorithm's bits (int8 unless `--weights-bits`/`--activations-bits` say
//! otherwise). The search may move a group of ops up the ladder: to 16-bit weights and/or activations, or to
//! FP32 (today's revert). A 16-bit quantizer keeps the calibrated *range* of the int8 one and only adds levels
//! ([`widen`]): no second calibration, and the 16-bit grid contains every value the 8-bit grid reached, so a
//! step up never moves a range a user's statistics chose.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::numerics::{Mode, QuantSpec, Quantizer};
use crate::params::{Precision, Preset, QuantizationParams, TargetDevice};
use crate::quantize::Placement;

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
        assert!(
            error.contains("w8a16, w16a16, w16a8, dynamic, fp32"),
            "{error}"
        );
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
