//! The flags of `aquant quantize`, and the one step that turns them into a validated [`Job`].
//!
//! As in ripgrep (low-level args → high-level args): clap fills typed structs, then
//! `Job::try_from(&QuantizeArgs)` validates them, or reads the config file, in one place. The parameter flags
//! are not defined here: the library's parameter structs ([`QuantizationParams`], [`AccuracyControlParams`]),
//! which are the schema, derive them behind the core crate's `clap` feature and are flattened in as they are,
//! so a flag not given leaves the library's default and nothing is mapped by hand. This file adds only what
//! spans them: `--config` conflicts with every parameter flag and the accuracy-control flags need `--val`,
//! through groups built from the flags the structs derive (clap's derive leaves the group of a struct with
//! nested structs empty). A test walks the schema to check that every parameter has its flag.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use aquant::config::{self, DataSource};
use aquant::pipeline::Algorithm;
use aquant::quantize::QuantizationParams;
use aquant::search::{AccuracyControlParams, Levers};
use clap::{ArgGroup, Args, Command, ValueEnum};

use aquant_engines::EngineName;

/// Arguments of `aquant quantize`.
#[derive(Args)]
#[command(group = parameter_group::<QuantizationParams>(QUANTIZATION))]
#[command(group = parameter_group::<AccuracyControlParams>(CONTROL).requires("val"))]
pub struct QuantizeArgs {
    /// A POT-style JSON config naming the model, data, metrics and algorithm. It replaces the model, data
    /// and algorithm flags (giving both is an error); run flags (-o, --batch, --backend, ...) still apply.
    #[arg(short, long, conflicts_with_all = ["JobFlags", QUANTIZATION, CONTROL])]
    config: Option<PathBuf>,
    #[command(flatten)]
    job: JobFlags,
    #[command(flatten)]
    quantization: QuantizationParams,
    #[command(flatten)]
    control: AccuracyControlParams,
    /// Output directory: model.onnx and report.json are written there (with --config, default
    /// results/MODEL_NAME).
    #[arg(short, long, required_unless_present = "config")]
    pub output: Option<PathBuf>,
    /// Keep FP32 weights behind QuantizeLinear/DequantizeLinear instead of storing int8 weights.
    #[arg(long)]
    pub no_compress_weights: bool,
    /// Format of the saved model: onnx (QDQ, model.onnx) or ir (OpenVINO IR in NNCF's form, model.xml +
    /// model.bin). Default: the input model's format.
    #[arg(long, value_enum)]
    pub output_format: Option<aquant::output::OutputFormat>,
    /// Save an ONNX model's weights in model.onnx.data beside model.onnx (ONNX's external data): auto when
    /// the input model had external data or the model would pass protobuf's 2 GiB limit.
    #[arg(long, value_enum, default_value_t)]
    pub external_data: aquant::output::ExternalData,
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
    /// Do not judge the saved model as it is deployed: on ONNX Runtime (default graph optimizations, this CPU's
    /// int8 kernels), or for an IR output on OpenVINO reading the saved IR. By default it is, whenever that
    /// engine is found and a validation set is given.
    #[arg(long)]
    pub no_deployed_check: bool,
    /// Samples per batch of the deployed check: the batch the model will be served at. Some CPUs' int8
    /// kernels (AMX) give batch-dependent results, so the saved model is judged at this batch, whatever
    /// `--batch` the search runs at; 1 is what a latency-bound deployment runs.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub deployed_batch: usize,
    /// Timed runs of the FP32 and the saved model on the deployed engine after the deployed check (one
    /// sample per run, after a warm-up; the medians go in report.json `deployed.latency`); 0 skips it.
    #[arg(long, default_value_t = aquant::params::DEFAULT_LATENCY_RUNS)]
    pub latency_runs: usize,
    /// Skip the per-layer sensitivity analysis after the run (each quantized op's share of the output error
    /// against FP32, on 8 calibration samples: one small evaluation per op; report.html draws it).
    #[arg(long)]
    pub no_sensitivity: bool,
    /// Inference engine for calibration and the search: auto (default) is the engine the saved model is
    /// deployed on when it is found (ONNX Runtime for an ONNX output, OpenVINO for an IR output), else tract.
    #[arg(long, value_enum, default_value_t)]
    pub backend: EngineName,
    /// Keep the run's memory under this size (8G, 512M): it runs on as many threads, with as large a cache of
    /// FP32 outputs, as fit by the engine's measured memory per model byte, or stops at once with the least
    /// it needs (exit 2). Default: no limit. ONNX Runtime and tract only.
    #[arg(long, value_parser = aquant::job::parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Hide progress bars.
    #[arg(long, short)]
    pub quiet: bool,
    /// Where accuracy control's evaluations run: ray, or ray:ADDRESS (a Ray cluster; the search and its
    /// decisions stay here). Through the Python package's aquant command only.
    #[arg(long, value_parser = super::ExecutorSpec::parse)]
    pub executor: Option<super::ExecutorSpec>,
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

/// The group of every flag of the base algorithm's parameters.
const QUANTIZATION: &str = "quantization";
/// The group of every accuracy-control flag: they need `--val`.
const CONTROL: &str = "control";

/// A group of the flags the parameter struct `P` derives, nested structs' included.
fn parameter_group<P: Args>(id: &'static str) -> ArgGroup {
    let flags = P::augment_args(Command::new(id));
    ArgGroup::new(id)
        .multiple(true)
        .args(flags.get_arguments().map(|flag| flag.get_id().clone()))
}

/// `--algorithm`: which of the library's algorithms runs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AlgorithmName {
    /// DefaultQuantization: quantize everything that can be.
    Default,
    /// AccuracyAwareQuantization: then revert groups until the metric drop is within --max-drop.
    AccuracyAware,
}

/// An evaluation shortcut of the search (see `aquant::search::Levers`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lever {
    EarlyStop,
    Reuse,
    Cohorts,
    PrefixCache,
}

/// What one run quantizes and how: from the flags or from a config file, validated.
pub struct Job {
    /// The FP32 model.
    pub model: PathBuf,
    /// The `.bin` of an IR model, when the config names one (else beside the `.xml`).
    pub weights: Option<PathBuf>,
    /// The config's `engine.device`, for the backend.
    pub device: Option<String>,
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

    /// The job the flags or the config describe, placed for the engine its output format runs on unless
    /// the parameters name one.
    fn try_from(args: &QuantizeArgs) -> Result<Job> {
        let mut job = match &args.config {
            Some(path) => job_from_config(path, args.output.clone())?,
            None => args.job_from_flags()?,
        };
        let format = crate::output::OutputFormat::resolve(args.output_format, &job.model);
        job.algorithm.deploy_as(format);
        Ok(job)
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
        self.quantization.validate()?;
        let quantization = self.quantization.clone();
        let control = self.control()?;
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
            weights: None,
            device: None,
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

    /// Accuracy control's parameters, validated.
    fn control(&self) -> Result<AccuracyControlParams> {
        self.control.validate_for(&self.quantization)?;
        Ok(self.control.clone())
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
        weights: config.weights,
        device: config.device,
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
