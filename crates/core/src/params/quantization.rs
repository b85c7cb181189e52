//! Parameters of the base algorithm (POT DefaultQuantization / NNCF `quantize`), with their defaults.
//!
//! These structs are the one schema of the parameters: a POT config's `params` are read straight into them
//! (serde names are POT's keys, aliases NNCF's and POT's other spellings), unknown keys and "did you mean" come
//! from their serde field lists, and behind the `clap` feature they derive the command line's flags (each
//! field's doc comment is its `--help`; nested groups give their flags explicit ids and names, `weights_bits`
//! / `--weights-bits`, since clap has no prefix for flattened structs). Every field changes what the algorithm
//! does (a parameter aquant would accept but ignore must not exist).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::RangeEstimator;

/// Symmetric (zero point fixed) or asymmetric (zero point fitted to the range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Zero point 0 (or the lowest level for unsigned tensors).
    #[default]
    Symmetric,
    /// Zero point fitted so the range `[min, max]` maps onto all levels.
    Asymmetric,
}

/// One scale for the whole tensor, or one per output channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum), value(rename_all = "lower"))]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One scale per tensor.
    PerTensor,
    /// One scale per output channel (weights).
    #[default]
    PerChannel,
}

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
    /// target_device GNA only (POT's GNA presets): every quantizer in 16 bits, so accuracy control has
    /// nothing left to move.
    Accuracy,
}

impl Preset {
    /// The activation mode this preset implies.
    pub fn activation_mode(self) -> Mode {
        match self {
            Preset::Performance | Preset::Accuracy => Mode::Symmetric,
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
    /// Refused: aquant has no GPU placement of its own and does not claim one.
    Gpu,
    /// NPU / VPU: refused, as GPU is.
    Npu,
    /// Intel GNA (POT's `gna.json`): 16-bit activations everywhere, 16-bit Conv weights, 8-bit MatMul/Gemm
    /// weights in the performance preset (16 in the accuracy preset); accuracy control moves weights from 8
    /// to 16 bits, never to FP32.
    Gna,
}

/// The engine the quantized model is deployed on: which integer kernels the placement lets it fuse.
///
/// `target_device` keeps POT's meaning (which ops a device quantizes); the engine adds what its QDQ fusion
/// needs. ONNX Runtime fuses a Conv into `QLinearConv` only when the Conv's output reaches nothing but its
/// quantizer, so a residual `Add` left in float beside it keeps the Conv in float: for ONNX Runtime, residual
/// Adds (`QLinearAdd`) and average pooling (`QLinearAveragePool`, `QLinearGlobalAveragePool`) are quantized
/// under every target device. OpenVINO reads POT's placement as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    /// ONNX Runtime: the natural engine of ONNX output.
    Ort,
    /// OpenVINO: the natural engine of IR output.
    Openvino,
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
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct IgnoredScope {
    /// Node names never quantized, exactly (POT scope; on the command line comma-separated or repeated).
    #[serde(default, alias = "scope")]
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "ignored_scope_names",
            long = "ignored-scope",
            value_delimiter = ',',
            value_name = "NAMES"
        )
    )]
    pub names: Vec<String>,
    /// Regular expressions matched against whole node names: nodes matching one are never quantized.
    #[serde(default)]
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "ignored_scope_patterns",
            long = "ignored-pattern",
            value_delimiter = ',',
            value_name = "REGEX"
        )
    )]
    pub patterns: Vec<String>,
    /// ONNX op types never quantized.
    ///
    /// A config spells them as POT does (`operations`: `[{"type": OP}]`) or as NNCF does (`["OP"]`).
    #[serde(default, alias = "operations", deserialize_with = "op_types")]
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "ignored_scope_types",
            long = "ignored-type",
            value_delimiter = ',',
            value_name = "OPS"
        )
    )]
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
    /// Exactly the layers the saturation analysis finds at risk on the calibration samples (over 0.1 % of
    /// their outputs saturate without VNNI); the default when deploying on ONNX Runtime.
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
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct WeightsParams {
    /// Weight bits: 8 or 16.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "weights_bits",
            long = "weights-bits",
            value_name = "WEIGHTS_BITS",
            default_value_t = 8
        )
    )]
    pub bits: u8,
    /// Weight quantization mode.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "weights_mode",
            long = "weights-mode",
            value_name = "WEIGHTS_MODE",
            value_enum,
            default_value_t = Mode::Symmetric
        )
    )]
    pub mode: Mode,
    /// Weight granularity: one scale per tensor or per output channel.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "weights_granularity",
            long = "weights-granularity",
            value_name = "WEIGHTS_GRANULARITY",
            value_enum,
            default_value_t = Granularity::PerChannel
        )
    )]
    pub granularity: Granularity,
    /// Lowest weight level (default -127, the narrow range runtimes expect for symmetric int8 weights).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "weights_level_low",
            long = "weights-level-low",
            value_name = "WEIGHTS_LEVEL_LOW",
            allow_negative_numbers = true
        )
    )]
    pub level_low: Option<i32>,
    /// Highest weight level (default 127).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "weights_level_high",
            long = "weights-level-high",
            value_name = "WEIGHTS_LEVEL_HIGH",
            allow_negative_numbers = true
        )
    )]
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
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct ActivationsParams {
    /// Activation bits: 8 or 16.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "activations_bits",
            long = "activations-bits",
            value_name = "ACTIVATIONS_BITS",
            default_value_t = 8
        )
    )]
    pub bits: u8,
    /// Activation quantization mode (default: the preset's).
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "activations_mode",
            long = "activations-mode",
            value_name = "ACTIVATIONS_MODE",
            value_enum
        )
    )]
    pub mode: Option<Mode>,
    /// Activation range estimator (default mean_minmax).
    ///
    /// A config can spell any estimator of each end (POT's `{"min": {...}, "max": {...}}`); the command line
    /// names NNCF's three.
    #[cfg_attr(
        feature = "clap",
        arg(
            id = "activations_range_estimator",
            long = "range-estimator",
            value_name = "ESTIMATOR",
            value_enum
        )
    )]
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
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields, default)]
pub struct QuantizationParams {
    /// Activation preset: performance (symmetric activations), mixed (asymmetric activations), or accuracy
    /// (target_device GNA only: every quantizer in 16 bits).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = Preset::Performance))]
    pub preset: Preset,
    /// Target device: which ops are quantized.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, ignore_case = true, default_value_t = TargetDevice::Any)
    )]
    pub target_device: TargetDevice,
    /// Model family: transformer enables transformer patterns.
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub model_type: Option<ModelType>,
    /// The engine the model is deployed on: ort also quantizes residual Add and average pooling, which ONNX
    /// Runtime runs as integer kernels (default: the output format's engine, ort for ONNX, openvino for IR).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    pub deploy: Option<Deploy>,
    /// Calibration samples (POT stat_subset_size, NNCF subset_size).
    #[serde(alias = "subset_size")]
    #[cfg_attr(
        feature = "clap",
        arg(long, visible_alias = "subset-size", default_value_t = 300)
    )]
    pub stat_subset_size: usize,
    /// Draw the calibration samples at random (with the seed) instead of taking the first ones.
    #[cfg_attr(feature = "clap", arg(long))]
    pub shuffle_data: bool,
    /// Seed of the calibration sampling.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0))]
    pub seed: u64,
    /// Weight quantization.
    #[cfg_attr(feature = "clap", command(flatten))]
    pub weights: WeightsParams,
    /// Activation quantization.
    #[cfg_attr(feature = "clap", command(flatten))]
    pub activations: ActivationsParams,
    /// Fast bias correction (POT use_fast_bias), on unless --no-fast-bias-correction: shift biases so each
    /// quantized layer's mean output matches FP32.
    #[serde(alias = "use_fast_bias")]
    #[cfg_attr(
        feature = "clap",
        arg(long = "no-fast-bias-correction", action = clap::ArgAction::SetFalse)
    )]
    pub fast_bias_correction: bool,
    /// Nodes never quantized (POT `ignored`).
    #[serde(alias = "ignored")]
    #[cfg_attr(feature = "clap", command(flatten))]
    pub ignored_scope: IgnoredScope,
    /// Half-range int8 weights ([-64, 63], scale doubled) against int16 saturation on CPUs without VNNI (NNCF
    /// overflow_fix, POT saturation_fix). By default, for symmetric 8-bit weights with the default levels: auto
    /// (the layers measured to saturate) when deploying on ONNX Runtime, first_layer (NNCF's and POT's default)
    /// on OpenVINO; disable otherwise.
    #[serde(alias = "saturation_fix")]
    #[cfg_attr(
        feature = "clap",
        arg(long, value_enum, visible_alias = "saturation-fix")
    )]
    pub overflow_fix: Option<OverflowFix>,
}

impl Default for QuantizationParams {
    fn default() -> Self {
        QuantizationParams {
            preset: Preset::default(),
            target_device: TargetDevice::default(),
            model_type: None,
            deploy: None,
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
        if self.preset == Preset::Accuracy && self.target_device != TargetDevice::Gna {
            return Err(Error::Config(
                "preset accuracy is POT's GNA preset (every quantizer in 16 bits): give target_device GNA, \
                 or for another device --weights-bits 16 --activations-bits 16"
                    .into(),
            ));
        }
        // Accepting these and placing quantizers as for ANY would claim a device-specific model that is not.
        if matches!(self.target_device, TargetDevice::Gpu | TargetDevice::Npu) {
            return Err(Error::Config(format!(
                "target_device {} is not supported: aquant places quantizers for ANY, CPU and GNA only",
                format!("{:?}", self.target_device).to_uppercase()
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

    /// The overflow fix this run applies: the explicit one, else, for symmetric 8-bit weights with default
    /// levels, `auto` when deploying on ONNX Runtime (the saturation analysis models its MLAS kernels, and a
    /// model fused end to end carries every clipped sum down its int8 chain: see
    /// [`crate::saturation::AT_RISK_RATE`]) and NNCF's and POT's `first_layer` for OpenVINO, whose kernels
    /// the analysis does not model; `disable` for other weights, where halving means nothing.
    pub fn effective_overflow_fix(&self) -> OverflowFix {
        match self.overflow_fix {
            Some(fix) => fix,
            None if !self.half_range_applies() => OverflowFix::Disable,
            None if self.deploy_engine() == Deploy::Ort => OverflowFix::Auto,
            None => OverflowFix::FirstLayer,
        }
    }

    fn half_range_applies(&self) -> bool {
        let w = &self.weights;
        w.bits == 8 && w.mode == Mode::Symmetric && w.level_low.is_none() && w.level_high.is_none()
    }

    /// The engine the placement targets: the one given, else ONNX Runtime (the library builds ONNX; front
    /// ends saving IR set [`Deploy::Openvino`] when none is given).
    pub fn deploy_engine(&self) -> Deploy {
        self.deploy.unwrap_or(Deploy::Ort)
    }

    /// The activation mode after the preset and any override.
    pub fn activation_mode(&self) -> Mode {
        self.activations
            .mode
            .unwrap_or(self.preset.activation_mode())
    }
}
