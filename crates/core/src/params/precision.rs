//! Where a quantized op sits on accuracy control's precision ladder: the schema of `--fallback` and of the
//! report's per-op precisions. What each rung does to an op's quantizers is `crate::quantize::widen`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
    /// 8-bit weights, 8-bit activations quantized at run time from each input's own range (ONNX Runtime's
    /// `DynamicQuantizeMatMul`, the kernel its `quantize_dynamic` makes for transformers): no calibrated
    /// range to clip an outlier, the MatMul still an integer kernel. Only a MatMul with a constant weight
    /// takes it (`crate::quantize::QuantizerGroup` says which ops of a group do).
    Dynamic,
    /// Not quantized: the op runs in FP32 (a revert).
    Fp32,
}

impl Precision {
    /// The ladder steps a user may name, in the order the help lists them.
    pub const STEPS: [Precision; 5] = [
        Precision::W8A16,
        Precision::W16A16,
        Precision::W16A8,
        Precision::Dynamic,
        Precision::Fp32,
    ];

    /// The name a ladder step and the report use (`w8a16`, `fp32`; the base is `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Base => "int8",
            Precision::W8A16 => "w8a16",
            Precision::W16A8 => "w16a8",
            Precision::W16A16 => "w16a16",
            Precision::Dynamic => "dynamic",
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

    /// Whether the op keeps its quantizers but not as the base algorithm made them (a 16-bit or dynamic step):
    /// its ladder entry then names the step (`op@w8a16`).
    pub fn is_kept_quantized(self) -> bool {
        !matches!(self, Precision::Base | Precision::Fp32)
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

/// A ladder step: `w8a16`, `w16a16`, `w16a8`, `dynamic` or `fp32` (case-insensitive).
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
