//! Parameters of the base algorithm (POT DefaultQuantization / NNCF `quantize`), with their defaults.
//!
//! These structs are the one schema of the parameters: a POT config's `params` are read straight into them
//! (serde names are POT's keys, aliases NNCF's and POT's other spellings), unknown keys and "did you mean" come
//! from their serde field lists, and the command line's flags are checked against them by a test. Every field
//! changes what the algorithm does (a parameter aquant would accept but ignore must not exist).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::quant::{Granularity, Mode, RangeEstimator};

/// How activations are quantized (weights are symmetric in every preset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Symmetric weights and activations (unsigned where the activation is non-negative).
    #[default]
    Performance,
    /// Symmetric weights, asymmetric activations.
    Mixed,
}

impl Preset {
    /// The activation mode this preset implies.
    pub fn activation_mode(self) -> Mode {
        match self {
            Preset::Performance => Mode::Symmetric,
            Preset::Mixed => Mode::Asymmetric,
        }
    }
}

/// The device the model will run on: selects which ops are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum), value(rename_all = "UPPER"))]
#[serde(rename_all = "UPPERCASE")]
pub enum TargetDevice {
    /// Any device: the patterns every runtime fuses.
    #[default]
    Any,
    /// CPU (also quantizes residual Add and average pooling, which CPU plugins run in INT8).
    Cpu,
    /// GPU.
    Gpu,
    /// NPU / VPU: weighted ops only.
    Npu,
}

/// Model family: `transformer` enables transformer patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ModelType {
    /// MatMul between activations and residual Add are quantized as transformer runtimes do.
    Transformer,
}

/// Nodes never quantized (NNCF's `IgnoredScope`; POT's `ignored` with `scope` and `operations`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoredScope {
    /// Exact node names (POT `scope`).
    #[serde(default, alias = "scope")]
    pub names: Vec<String>,
    /// Regular expressions matched against whole node names.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// ONNX op types (POT `operations`: `[{"type": OP}]`; NNCF: `["OP"]`).
    #[serde(default, alias = "operations", deserialize_with = "op_types")]
    pub types: Vec<String>,
}

impl IgnoredScope {
    /// The patterns as whole-name regular expressions: the one place they are compiled, so that validating a
    /// config and placing quantizers can never disagree on what a pattern means.
    pub fn compiled_patterns(&self) -> Result<Vec<regex::Regex>> {
        self.patterns
            .iter()
            .map(|p| {
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| Error::Config(format!("ignored_scope pattern '{p}': {e}")))
            })
            .collect()
    }
}

/// Ignored op types, each as NNCF spells it (`"Add"`) or as POT does (`{"type": "Add"}`).
fn op_types<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let types: Vec<OpType> = Deserialize::deserialize(deserializer)?;
    Ok(types.into_iter().map(|t| t.0).collect())
}

struct OpType(String);

/// POT's spelling of an ignored op type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PotOperation {
    #[serde(rename = "type")]
    op_type: String,
}

impl<'de> Deserialize<'de> for OpType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(OpTypeVisitor).map(OpType)
    }
}

struct OpTypeVisitor;

impl<'de> serde::de::Visitor<'de> for OpTypeVisitor {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an op type, or {\"type\": op type}")
    }

    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<String, E> {
        Ok(name.to_string())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<String, A::Error> {
        let operation =
            PotOperation::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(operation.op_type)
    }
}

/// Which weight quantizers use half the int8 range ([-64, 63], scale doubled) so that CPUs without VNNI cannot
/// saturate (NNCF `overflow_fix`, POT `saturation_fix`; see [`crate::saturation`] for why).
///
/// NNCF's and POT's spellings are both accepted: `first_layer_only`/`first_layer`, `enable`/`all`, `disable`/`no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(
    feature = "clap",
    derive(clap::ValueEnum),
    value(rename_all = "snake_case")
)]
#[serde(rename_all = "snake_case")]
pub enum OverflowFix {
    /// The first quantized Conv(s) reached from each graph input (NNCF's and POT's default).
    #[default]
    #[serde(alias = "first_layer_only")]
    #[cfg_attr(feature = "clap", value(alias = "first_layer_only"))]
    FirstLayer,
    /// Every Conv, ConvTranspose, MatMul and Gemm weight quantizer.
    #[serde(alias = "all")]
    #[cfg_attr(feature = "clap", value(alias = "all"))]
    Enable,
    /// Full range everywhere.
    #[serde(alias = "no")]
    #[cfg_attr(feature = "clap", value(alias = "no"))]
    Disable,
    /// Exactly the layers the saturation analysis finds at risk on the calibration samples (over 5% of
    /// their outputs saturate without VNNI).
    Auto,
}

impl OverflowFix {
    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OverflowFix::FirstLayer => "first_layer",
            OverflowFix::Enable => "enable",
            OverflowFix::Disable => "disable",
            OverflowFix::Auto => "auto",
        }
    }
}

/// How weights are quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightsParams {
    /// 8 (or 16).
    pub bits: u8,
    /// Symmetric by default.
    pub mode: Mode,
    /// Per output channel by default.
    pub granularity: Granularity,
    /// Lowest level (default: −127, the narrow range runtimes expect for symmetric int8 weights).
    pub level_low: Option<i32>,
    /// Highest level (default: 127).
    pub level_high: Option<i32>,
}

impl Default for WeightsParams {
    fn default() -> Self {
        WeightsParams {
            bits: 8,
            mode: Mode::Symmetric,
            granularity: Granularity::PerChannel,
            level_low: None,
            level_high: None,
        }
    }
}

/// How activations are quantized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivationsParams {
    /// 8 (or 16).
    pub bits: u8,
    /// Overrides the preset's mode.
    pub mode: Option<Mode>,
    /// Range estimator (default: the preset's, see [`RangeEstimator::default_activations`]).
    pub range_estimator: Option<RangeEstimator>,
}

impl Default for ActivationsParams {
    fn default() -> Self {
        ActivationsParams {
            bits: 8,
            mode: None,
            range_estimator: None,
        }
    }
}

/// Everything the base algorithm takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuantizationParams {
    /// Activation preset.
    pub preset: Preset,
    /// Target device.
    pub target_device: TargetDevice,
    /// Model family.
    pub model_type: Option<ModelType>,
    /// Calibration samples (POT `stat_subset_size`, NNCF `subset_size`).
    #[serde(alias = "subset_size")]
    pub stat_subset_size: usize,
    /// Draw the calibration samples at random (with `seed`) instead of taking the first ones.
    pub shuffle_data: bool,
    /// Seed of the calibration sampling.
    pub seed: u64,
    /// Weight quantization.
    pub weights: WeightsParams,
    /// Activation quantization.
    pub activations: ActivationsParams,
    /// Shift biases so each quantized layer's mean output matches FP32 (POT `use_fast_bias`).
    #[serde(alias = "use_fast_bias")]
    pub fast_bias_correction: bool,
    /// Nodes never quantized (POT `ignored`).
    #[serde(alias = "ignored")]
    pub ignored_scope: IgnoredScope,
    /// Half-range weights against int16 saturation on CPUs without VNNI (NNCF `overflow_fix`, POT
    /// `saturation_fix`). `None`, as in NNCF: `first_layer` for symmetric 8-bit weights, `disable` otherwise
    /// (see [`QuantizationParams::effective_overflow_fix`]).
    #[serde(alias = "saturation_fix")]
    pub overflow_fix: Option<OverflowFix>,
}

impl Default for QuantizationParams {
    fn default() -> Self {
        QuantizationParams {
            preset: Preset::default(),
            target_device: TargetDevice::default(),
            model_type: None,
            stat_subset_size: 300,
            shuffle_data: false,
            seed: 0,
            weights: WeightsParams::default(),
            activations: ActivationsParams::default(),
            fast_bias_correction: true,
            ignored_scope: IgnoredScope::default(),
            overflow_fix: None,
        }
    }
}

impl QuantizationParams {
    /// Checks values no type can rule out.
    pub fn validate(&self) -> Result<()> {
        if self.stat_subset_size == 0 {
            return Err(Error::Config("stat_subset_size must be at least 1".into()));
        }
        // Accepting these and placing quantizers as for ANY would claim a device-specific model that is not.
        if matches!(self.target_device, TargetDevice::Gpu | TargetDevice::Npu) {
            return Err(Error::Config(format!(
                "target_device {:?} is not supported: aquant places quantizers for ANY or CPU only",
                self.target_device
            )));
        }
        for (what, bits) in [
            ("weights", self.weights.bits),
            ("activations", self.activations.bits),
        ] {
            if bits != 8 && bits != 16 {
                return Err(Error::Config(format!(
                    "{what}.bits must be 8 or 16, not {bits}"
                )));
            }
        }
        if let Some(fix) = self.overflow_fix.filter(|f| *f != OverflowFix::Disable) {
            if !self.half_range_applies() {
                return Err(Error::Config(format!(
                    "overflow_fix '{}' needs symmetric 8-bit weights with the default levels (it halves their range); use 'disable'",
                    fix.name()
                )));
            }
        }
        self.ignored_scope.compiled_patterns()?;
        Ok(())
    }

    /// The overflow fix this run applies: the explicit one, else NNCF's default (`first_layer` when the
    /// weights are symmetric 8-bit with default levels, `disable` otherwise, where halving means nothing).
    pub fn effective_overflow_fix(&self) -> OverflowFix {
        match self.overflow_fix {
            Some(fix) => fix,
            None if self.half_range_applies() => OverflowFix::FirstLayer,
            None => OverflowFix::Disable,
        }
    }

    fn half_range_applies(&self) -> bool {
        let w = &self.weights;
        w.bits == 8 && w.mode == Mode::Symmetric && w.level_low.is_none() && w.level_high.is_none()
    }

    /// The activation mode after the preset and any override.
    pub fn activation_mode(&self) -> Mode {
        self.activations
            .mode
            .unwrap_or(self.preset.activation_mode())
    }
}
