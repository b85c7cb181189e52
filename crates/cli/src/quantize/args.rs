//! The flags of `aquant quantize`, and the one step that turns them into a validated [`Job`].
//!
//! As in ripgrep (low-level args → high-level args): clap fills plain, typed flag structs, then
//! `Job::try_from(&QuantizeArgs)` applies them, or reads the config file, in one place. The parameter flags
//! mirror the library's parameter structs, which are the schema: each flag's id is the field's path joined by
//! `_` (`weights_granularity` sets `weights.granularity`), enums are the library's own `ValueEnum`s, and a flag
//! not given leaves the library's default (no default is repeated here). A test walks the schema to check that
//! every parameter has its flag.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aquant::config::{self, DataSource};
use aquant::pipeline::Algorithm;
use aquant::quant::{Granularity, Mode, RangeEstimator};
use aquant::quantize::{
    ModelType, OverflowFix, Preset, QuantizationParams, RestoreMode, TargetDevice,
};
use aquant::search::{AccuracyControlParams, DropType, Levers, MetricTarget, RankingScore};
use clap::{ArgAction, Args, ValueEnum};

use crate::backend::BackendName;

/// Arguments of `aquant quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// A POT-style JSON config naming the model, data, metrics and algorithm. It replaces the model, data
    /// and algorithm flags (giving both is an error); run flags (-o, --batch, --backend, ...) still apply.
    #[arg(short, long, conflicts_with_all = ["JobFlags", "QuantizationFlags", "ControlFlags"])]
    config: Option<PathBuf>,
    #[command(flatten)]
    job: JobFlags,
    #[command(flatten)]
    quantization: QuantizationFlags,
    #[command(flatten)]
    control: ControlFlags,
    /// Output directory: model.onnx and report.json are written there (with --config, default
    /// results/MODEL_NAME).
    #[arg(short, long, required_unless_present = "config")]
    pub output: Option<PathBuf>,
    /// Keep FP32 weights behind QuantizeLinear/DequantizeLinear instead of storing int8 weights.
    #[arg(long)]
    pub no_compress_weights: bool,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Turn evaluation shortcuts off, to measure them (results do not change): early-stop, reuse, cohorts,
    /// prefix-cache.
    #[arg(long, value_enum, value_delimiter = ',')]
    without: Vec<Lever>,
    /// Print where the time went (stages, and the engine's prepare/run time summed over threads).
    #[arg(long)]
    pub profile: bool,
    /// Do not judge the saved model on ONNX Runtime as it is deployed (default graph optimizations, this
    /// CPU's int8 kernels). By default it is, whenever ONNX Runtime is found and a validation set is given.
    #[arg(long)]
    pub no_deployed_check: bool,
    /// Skip the per-layer sensitivity analysis after the run (each quantized op's share of the output error
    /// against FP32, on 8 calibration samples: one small evaluation per op; report.html draws it).
    #[arg(long)]
    pub no_sensitivity: bool,
    /// Inference engine for calibration and evaluation.
    #[arg(long, value_enum, default_value_t)]
    pub backend: BackendName,
    /// Hide progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What to quantize, on which data, judged how (a config replaces all of these).
#[derive(Args)]
struct JobFlags {
    /// The FP32 ONNX model (never modified).
    #[arg(long, required_unless_present = "config")]
    model: Option<PathBuf>,
    /// Data spec (JSON) of the calibration set.
    #[arg(long, required_unless_present = "config")]
    calib: Option<PathBuf>,
    /// Algorithm (default: accuracy-aware when --val is given, default otherwise).
    #[arg(long, value_enum)]
    algorithm: Option<AlgorithmName>,
    /// Data spec (JSON) of the validation set: enables accuracy control.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Metrics to control (comma-separated or repeated): top1 (default), top5, topK, agreement, mse, nmse;
    /// dataset-level: f1_macro, auroc, map50, map50_95.
    #[arg(long, value_delimiter = ',', requires = "val")]
    metric: Vec<String>,
}

/// The base algorithm's parameters ([`QuantizationParams`]).
#[derive(Args)]
struct QuantizationFlags {
    /// Activation preset: performance (symmetric, default) or mixed (asymmetric activations).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Target device (default ANY).
    #[arg(long, value_enum, ignore_case = true)]
    target_device: Option<TargetDevice>,
    /// `transformer` enables transformer patterns.
    #[arg(long, value_enum)]
    model_type: Option<ModelType>,
    /// Calibration samples (default 300).
    #[arg(long, visible_alias = "subset-size")]
    stat_subset_size: Option<usize>,
    /// Draw calibration samples at random (with --seed).
    #[arg(long)]
    shuffle_data: bool,
    /// Seed for --shuffle-data (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Weight bits: 8 (default) or 16.
    #[arg(long)]
    weights_bits: Option<u8>,
    /// Weight mode (default symmetric).
    #[arg(long, value_enum)]
    weights_mode: Option<Mode>,
    /// Weight granularity (default perchannel).
    #[arg(long, value_enum)]
    weights_granularity: Option<Granularity>,
    /// Lowest weight level (default -127 for symmetric int8).
    #[arg(long, allow_negative_numbers = true)]
    weights_level_low: Option<i32>,
    /// Highest weight level (default 127).
    #[arg(long, allow_negative_numbers = true)]
    weights_level_high: Option<i32>,
    /// Activation bits: 8 (default) or 16.
    #[arg(long)]
    activations_bits: Option<u8>,
    /// Activation mode (default: the preset's).
    #[arg(long, value_enum)]
    activations_mode: Option<Mode>,
    /// Activation range estimator (default mean_minmax).
    #[arg(long = "range-estimator", value_enum, value_name = "ESTIMATOR")]
    activations_range_estimator: Option<RangeEstimatorName>,
    /// Disable fast bias correction.
    #[arg(long = "no-fast-bias-correction", action = ArgAction::SetFalse)]
    fast_bias_correction: bool,
    /// Node names never quantized (comma-separated or repeated).
    #[arg(long = "ignored-scope", value_delimiter = ',', value_name = "NAMES")]
    ignored_scope_names: Vec<String>,
    /// Regular expressions of node names never quantized.
    #[arg(long = "ignored-pattern", value_delimiter = ',', value_name = "REGEX")]
    ignored_scope_patterns: Vec<String>,
    /// Op types never quantized.
    #[arg(long = "ignored-type", value_delimiter = ',', value_name = "OPS")]
    ignored_scope_types: Vec<String>,
    /// Half-range int8 weights ([-64, 63], scale doubled) against int16 saturation on CPUs without VNNI:
    /// first_layer (default: the first Convs from each input), enable (every Conv/MatMul/Gemm), disable, or
    /// auto (exactly the layers the saturation analysis finds at risk on the calibration samples).
    #[arg(long, value_enum, visible_alias = "saturation-fix")]
    overflow_fix: Option<OverflowFix>,
}

/// Accuracy control's parameters ([`AccuracyControlParams`]); they need a validation set.
#[derive(Args)]
struct ControlFlags {
    /// Allowed drop (POT maximal_drop; default 0.01).
    #[arg(
        long = "max-drop",
        visible_alias = "maximal-drop",
        value_name = "DROP",
        requires = "val"
    )]
    maximal_drop: Option<f64>,
    /// absolute (default) or relative.
    #[arg(long, value_enum, requires = "val")]
    drop_type: Option<DropType>,
    /// Samples used to rank groups (default min(N, 300)).
    #[arg(long, requires = "val")]
    ranking_subset_size: Option<usize>,
    /// Most groups reverted (POT max_iter_num; default unlimited).
    #[arg(long = "max-iter", value_name = "N", requires = "val")]
    max_iter_num: Option<usize>,
    /// Keep a revert even when it increases the drop.
    #[arg(long = "no-use-prev-if-drop-increase", action = ArgAction::SetFalse, requires = "val")]
    use_prev_if_drop_increase: bool,
    /// If the performance preset fails, retry with mixed before reverting.
    #[arg(long, requires = "val")]
    convert_to_mixed_preset: bool,
    /// Known FP32 value of a metric, NAME=VALUE (skips the FP32 full evaluation when every metric has one).
    #[arg(
        long = "baseline",
        value_delimiter = ',',
        value_parser = baseline,
        value_name = "NAME=VALUE",
        requires = "val"
    )]
    metrics: Vec<MetricTarget>,
    /// With baselines: fraction of the validation set compared sample by sample (default 0.5).
    #[arg(long, requires = "val")]
    metric_subset_ratio: Option<f64>,
    /// Grid-search range estimator, bias correction and preset on the ranking subset before reverting.
    #[arg(long, requires = "val")]
    tune_hyperparams: bool,
    /// What a revert returns to FP32 (default activations_and_weights).
    #[arg(long, value_enum, requires = "val")]
    restore_mode: Option<RestoreMode>,
    /// What ranks groups: auto (default: the metric, or the output NMSE for a dataset-level metric), metric,
    /// or nmse (output NMSE against FP32, lowest first).
    #[arg(long, value_enum, requires = "val")]
    ranking_score: Option<RankingScore>,
    /// Precision ladder of a reverted group, e.g. "fp32" (default) or "int16,fp32".
    #[arg(long, value_delimiter = ',', requires = "val")]
    fallback: Vec<String>,
}

/// `--algorithm`: which of the library's algorithms runs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AlgorithmName {
    /// DefaultQuantization: quantize everything that can be.
    Default,
    /// AccuracyAwareQuantization: then revert groups until the metric drop is within --max-drop.
    AccuracyAware,
}

/// `--range-estimator`: NNCF's named range estimators.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum RangeEstimatorName {
    MeanMinmax,
    Minmax,
    MeanQuantile,
}

/// An evaluation shortcut of the search (see `aquant::search::Levers`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lever {
    EarlyStop,
    Reuse,
    Cohorts,
    PrefixCache,
}

/// `--baseline NAME=VALUE`.
fn baseline(flag: &str) -> Result<MetricTarget> {
    let (name, value) = flag
        .split_once('=')
        .with_context(|| format!("'{flag}' is not NAME=VALUE"))?;
    let value: f64 = value
        .parse()
        .with_context(|| format!("'{flag}': '{value}' is not a number"))?;
    Ok(MetricTarget {
        name: name.to_string(),
        baseline_value: Some(value),
    })
}

/// What one run quantizes and how: from the flags or from a config file, validated.
pub struct Job {
    /// The FP32 model.
    pub model: PathBuf,
    pub calibration: DataSource,
    pub validation: Option<DataSource>,
    pub metrics: Vec<String>,
    pub algorithm: Algorithm,
    /// The allowed drop DefaultQuantization's deployed check applies (accuracy control applies its own).
    pub deployed_check: AccuracyControlParams,
    pub output: PathBuf,
}

impl TryFrom<&QuantizeArgs> for Job {
    type Error = anyhow::Error;

    fn try_from(args: &QuantizeArgs) -> Result<Job> {
        match &args.config {
            Some(path) => job_from_config(path, args.output.clone()),
            None => args.job_from_flags(),
        }
    }
}

impl QuantizeArgs {
    /// The evaluation shortcuts left on.
    pub fn levers(&self) -> Levers {
        let on = |lever| !self.without.contains(&lever);
        Levers {
            early_stop: on(Lever::EarlyStop),
            reuse: on(Lever::Reuse),
            cohorts: on(Lever::Cohorts),
            prefix_cache: on(Lever::PrefixCache),
        }
    }

    fn job_from_flags(&self) -> Result<Job> {
        let flags = &self.job;
        let (Some(model), Some(calib), Some(output)) = (&flags.model, &flags.calib, &self.output)
        else {
            bail!("--model, --calib and --output are required without --config");
        };
        let quantization = self.quantization.params()?;
        let control = self.control.params()?;
        let name = flags.algorithm.unwrap_or(match flags.val {
            Some(_) => AlgorithmName::AccuracyAware,
            None => AlgorithmName::Default,
        });
        let algorithm = match name {
            AlgorithmName::Default => Algorithm::Default(quantization),
            AlgorithmName::AccuracyAware if flags.val.is_none() => {
                bail!("--algorithm accuracy-aware needs a validation set (--val SPEC.json)")
            }
            AlgorithmName::AccuracyAware => Algorithm::AccuracyAware {
                quantization,
                control: control.clone(),
            },
        };
        Ok(Job {
            model: model.clone(),
            calibration: DataSource::File(calib.clone()),
            validation: flags.val.clone().map(DataSource::File),
            metrics: match flags.metric.as_slice() {
                [] => vec!["top1".to_string()],
                names => names.to_vec(),
            },
            algorithm,
            deployed_check: control,
            output: output.clone(),
        })
    }
}

impl QuantizationFlags {
    fn params(&self) -> Result<QuantizationParams> {
        let mut p = QuantizationParams::default();
        set(&mut p.preset, self.preset);
        set(&mut p.target_device, self.target_device);
        p.model_type = self.model_type;
        set(&mut p.stat_subset_size, self.stat_subset_size);
        p.shuffle_data = self.shuffle_data;
        set(&mut p.seed, self.seed);
        set(&mut p.weights.bits, self.weights_bits);
        set(&mut p.weights.mode, self.weights_mode);
        set(&mut p.weights.granularity, self.weights_granularity);
        p.weights.level_low = self.weights_level_low;
        p.weights.level_high = self.weights_level_high;
        set(&mut p.activations.bits, self.activations_bits);
        p.activations.mode = self.activations_mode;
        p.activations.range_estimator = self.activations_range_estimator.map(|name| match name {
            RangeEstimatorName::MeanMinmax => {
                RangeEstimator::default_activations(p.activation_mode())
            }
            RangeEstimatorName::Minmax => RangeEstimator::min_max(),
            RangeEstimatorName::MeanQuantile => RangeEstimator::mean_quantile(),
        });
        p.fast_bias_correction = self.fast_bias_correction;
        p.ignored_scope.names = self.ignored_scope_names.clone();
        p.ignored_scope.patterns = self.ignored_scope_patterns.clone();
        p.ignored_scope.types = self.ignored_scope_types.clone();
        p.overflow_fix = self.overflow_fix;
        p.validate()?;
        Ok(p)
    }
}

impl ControlFlags {
    fn params(&self) -> Result<AccuracyControlParams> {
        match self.fallback.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            [] | ["fp32"] => {}
            ladder if ladder.contains(&"int16") => bail!(
                "--fallback int16 is not available: the tract engine (0.23.9) cannot execute 16-bit \
                 QuantizeLinear (ONNX Runtime can, at opset 21); use --fallback fp32"
            ),
            other => bail!("--fallback {}: the only supported ladder is 'fp32'", other.join(",")),
        }
        let mut c = AccuracyControlParams::default();
        set(&mut c.maximal_drop, self.maximal_drop);
        set(&mut c.drop_type, self.drop_type);
        c.ranking_subset_size = self.ranking_subset_size;
        c.max_iter_num = self.max_iter_num;
        c.use_prev_if_drop_increase = self.use_prev_if_drop_increase;
        c.convert_to_mixed_preset = self.convert_to_mixed_preset;
        c.metrics = self.metrics.clone();
        set(&mut c.metric_subset_ratio, self.metric_subset_ratio);
        c.tune_hyperparams = self.tune_hyperparams;
        set(&mut c.restore_mode, self.restore_mode);
        set(&mut c.ranking_score, self.ranking_score);
        c.validate()?;
        Ok(c)
    }
}

/// A flag given replaces the library's default.
fn set<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

/// A job from a config file; the output directory defaults to `results/<model_name>` as POT's does.
fn job_from_config(path: &Path, output: Option<PathBuf>) -> Result<Job> {
    let config = config::load(path).with_context(|| format!("config '{}'", path.display()))?;
    let output = output.unwrap_or_else(|| {
        let name = config.model_name.clone().unwrap_or_else(|| {
            config
                .model
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().into_owned())
        });
        Path::new("results").join(name)
    });
    Ok(Job {
        model: config.model,
        calibration: config.calibration,
        validation: config.validation,
        metrics: config.metrics,
        algorithm: config.algorithm,
        deployed_check: AccuracyControlParams::default(),
        output,
    })
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod schema_tests;
