//! `aquant quantize`: the base algorithm (and, with `--val`, accuracy control).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use aquant::config::{self, DataSource};
use aquant::quant::{Granularity, RangeEstimator};
use aquant::quantize::{
    self, IgnoredScope, ModelForm, ModelType, OverflowFix, Preset, QuantizationParams, RestoreMode,
    TargetDevice,
};
use aquant::search::{self, AccuracyControlParams, DropType, Levers, MetricTarget, RunOptions};
use aquant::Graph;
use clap::{Args, ValueEnum};

use crate::engine::Engine;
use crate::interrupt;
use crate::output::OutputDir;
use crate::progress::Bars;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Algorithm {
    /// DefaultQuantization: quantize everything that can be.
    Default,
    /// AccuracyAwareQuantization: then revert groups until the metric drop is within --max-drop.
    AccuracyAware,
}

/// The flags a config file replaces: giving one of them with --config is refused rather than silently merged,
/// so a run is described by one source.
const CONFIG_REPLACES: [&str; 29] = [
    "fallback",
    "no_fast_bias_correction",
    "model",
    "calib",
    "algorithm",
    "val",
    "metric",
    "max_drop",
    "drop_type",
    "ranking_subset_size",
    "max_iter",
    "no_use_prev_if_drop_increase",
    "convert_to_mixed_preset",
    "baseline",
    "metric_subset_ratio",
    "tune_hyperparams",
    "restore_mode",
    "preset",
    "target_device",
    "model_type",
    "stat_subset_size",
    "shuffle_data",
    "seed",
    "ignored_scope",
    "ignored_pattern",
    "ignored_type",
    "range_estimator",
    "weights_granularity",
    "overflow_fix",
];

/// An evaluation shortcut of the search (see `aquant::search::Levers`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lever {
    EarlyStop,
    Reuse,
    Cohorts,
    PrefixCache,
}

/// Arguments of `aquant quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// A POT-style JSON config naming the model, data, metrics and algorithm. It replaces the model, data
    /// and algorithm flags (giving both is an error); run flags (-o, --batch, --backend, ...) still apply.
    #[arg(short, long, conflicts_with_all = CONFIG_REPLACES)]
    config: Option<PathBuf>,
    /// The FP32 ONNX model (never modified).
    #[arg(long, required_unless_present = "config")]
    model: Option<PathBuf>,
    /// Data spec (JSON) of the calibration set.
    #[arg(long, required_unless_present = "config")]
    calib: Option<PathBuf>,
    /// Output directory: model.onnx and report.json are written there (with --config, default
    /// results/MODEL_NAME).
    #[arg(short, long, required_unless_present = "config")]
    output: Option<PathBuf>,
    /// Algorithm (default: accuracy-aware when --val is given, default otherwise).
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    /// Data spec (JSON) of the validation set: enables accuracy control.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Metrics to control (comma-separated or repeated): top1, top5, topK, agreement, mse, nmse.
    #[arg(long, value_delimiter = ',', default_value = "top1", requires = "val")]
    metric: Vec<String>,
    /// Allowed drop (POT maximal_drop).
    #[arg(long, default_value_t = 0.01, requires = "val")]
    max_drop: f64,
    /// absolute or relative.
    #[arg(long, default_value = "absolute", requires = "val")]
    drop_type: String,
    /// Samples used to rank groups (default min(N, 300)).
    #[arg(long, requires = "val")]
    ranking_subset_size: Option<usize>,
    /// Most groups reverted (POT max_iter_num).
    #[arg(long, requires = "val")]
    max_iter: Option<usize>,
    /// Keep a revert even when it increases the drop.
    #[arg(long, requires = "val")]
    no_use_prev_if_drop_increase: bool,
    /// If the performance preset fails, retry with mixed before reverting.
    #[arg(long, requires = "val")]
    convert_to_mixed_preset: bool,
    /// Known FP32 value of a metric, NAME=VALUE (skips the FP32 full evaluation when every metric has one).
    #[arg(long, value_delimiter = ',', requires = "val")]
    baseline: Vec<String>,
    /// With baselines: fraction of the validation set compared sample by sample.
    #[arg(long, default_value_t = 0.5, requires = "val")]
    metric_subset_ratio: f64,
    /// Grid-search range estimator, bias correction and preset on the ranking subset before reverting.
    #[arg(long, requires = "val")]
    tune_hyperparams: bool,
    /// Precision ladder of a reverted group, e.g. "fp32" (default) or "int16,fp32".
    #[arg(long, value_delimiter = ',', default_value = "fp32", requires = "val")]
    fallback: Vec<String>,
    /// What a revert returns to FP32: activations_and_weights or only_activations.
    #[arg(long, default_value = "activations_and_weights", requires = "val")]
    restore_mode: String,
    /// Activation preset: performance (symmetric) or mixed (asymmetric activations).
    #[arg(long, default_value = "performance")]
    preset: String,
    /// Target device: ANY, CPU, GPU, NPU.
    #[arg(long, default_value = "ANY")]
    target_device: String,
    /// `transformer` enables transformer patterns.
    #[arg(long)]
    model_type: Option<String>,
    /// Calibration samples.
    #[arg(long, default_value_t = 300)]
    stat_subset_size: usize,
    /// Draw calibration samples at random (with --seed).
    #[arg(long)]
    shuffle_data: bool,
    /// Seed for --shuffle-data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Node names never quantized (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    ignored_scope: Vec<String>,
    /// Regular expressions of node names never quantized.
    #[arg(long, value_delimiter = ',')]
    ignored_pattern: Vec<String>,
    /// Op types never quantized.
    #[arg(long, value_delimiter = ',')]
    ignored_type: Vec<String>,
    /// Activation range estimator: mean_minmax (default), minmax or mean_quantile.
    #[arg(long)]
    range_estimator: Option<String>,
    /// Weight granularity: perchannel or pertensor.
    #[arg(long, default_value = "perchannel")]
    weights_granularity: String,
    /// Half-range int8 weights ([-64, 63], scale doubled) against int16 saturation on CPUs without VNNI:
    /// first_layer (default: the first Convs from each input), enable (every Conv/MatMul/Gemm), disable, or
    /// auto (exactly the layers the saturation analysis finds at risk on the calibration samples).
    #[arg(long)]
    overflow_fix: Option<String>,
    /// Disable fast bias correction.
    #[arg(long)]
    no_fast_bias_correction: bool,
    /// Keep FP32 weights behind QuantizeLinear/DequantizeLinear instead of storing int8 weights.
    #[arg(long)]
    no_compress_weights: bool,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Turn evaluation shortcuts off, to measure them (results do not change): early-stop, reuse, cohorts,
    /// prefix-cache.
    #[arg(long, value_enum, value_delimiter = ',')]
    without: Vec<Lever>,
    /// Print where the time went (stages, and the engine's prepare/run time summed over threads).
    #[arg(long)]
    profile: bool,
    /// Do not judge the saved model on ONNX Runtime as it is deployed (default graph optimizations, this
    /// CPU's int8 kernels). By default it is, whenever ONNX Runtime is found and a validation set is given.
    #[arg(long)]
    no_deployed_check: bool,
    /// Inference engine for calibration and evaluation.
    #[arg(long, value_enum, default_value_t)]
    backend: Engine,
    /// Hide progress bars.
    #[arg(long, short)]
    quiet: bool,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .with_context(|| format!("invalid {what} '{value}'"))
}

impl QuantizeArgs {
    fn params(&self) -> Result<QuantizationParams> {
        let mut params = QuantizationParams {
            preset: parse::<Preset>("--preset", &self.preset)?,
            target_device: parse::<TargetDevice>(
                "--target-device",
                &self.target_device.to_uppercase(),
            )?,
            model_type: self
                .model_type
                .as_deref()
                .map(|m| parse::<ModelType>("--model-type", m))
                .transpose()?,
            stat_subset_size: self.stat_subset_size,
            shuffle_data: self.shuffle_data,
            seed: self.seed,
            fast_bias_correction: !self.no_fast_bias_correction,
            ignored_scope: IgnoredScope {
                names: self.ignored_scope.clone(),
                patterns: self.ignored_pattern.clone(),
                types: self.ignored_type.clone(),
            },
            overflow_fix: self
                .overflow_fix
                .as_deref()
                .map(|v| parse::<OverflowFix>("--overflow-fix", v))
                .transpose()?,
            ..Default::default()
        };
        params.weights.granularity =
            parse::<Granularity>("--weights-granularity", &self.weights_granularity)?;
        params.activations.range_estimator = match self.range_estimator.as_deref() {
            None => None,
            Some("mean_minmax") => Some(RangeEstimator::default_activations(
                params.activation_mode(),
            )),
            Some("minmax") => Some(RangeEstimator::min_max()),
            Some("mean_quantile") => Some(RangeEstimator::mean_quantile()),
            Some(other) => {
                bail!("--range-estimator '{other}' (mean_minmax, minmax or mean_quantile)")
            }
        };
        params.validate()?;
        Ok(params)
    }
}

impl QuantizeArgs {
    fn levers(&self) -> Levers {
        let on = |lever| !self.without.contains(&lever);
        Levers {
            early_stop: on(Lever::EarlyStop),
            reuse: on(Lever::Reuse),
            cohorts: on(Lever::Cohorts),
            prefix_cache: on(Lever::PrefixCache),
        }
    }

    fn algorithm(&self) -> Result<Algorithm> {
        let algorithm = self.algorithm.unwrap_or(if self.val.is_some() {
            Algorithm::AccuracyAware
        } else {
            Algorithm::Default
        });
        if algorithm == Algorithm::AccuracyAware && self.val.is_none() {
            bail!("--algorithm accuracy-aware needs a validation set (--val SPEC.json)");
        }
        Ok(algorithm)
    }

    fn control(&self) -> Result<AccuracyControlParams> {
        match self.fallback.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["fp32"] => {}
            ladder if ladder.contains(&"int16") => bail!(
                "--fallback int16 is not available: the tract engine (0.23.9) cannot execute 16-bit \
                 QuantizeLinear (ONNX Runtime can, at opset 21); use --fallback fp32"
            ),
            other => bail!("--fallback {}: the only supported ladder is 'fp32'", other.join(",")),
        }
        let targets = self
            .baseline
            .iter()
            .map(|b| {
                let (name, value) = b
                    .split_once('=')
                    .with_context(|| format!("--baseline '{b}' is not NAME=VALUE"))?;
                let value: f64 = value
                    .parse()
                    .with_context(|| format!("--baseline '{b}': '{value}' is not a number"))?;
                Ok(MetricTarget {
                    name: name.to_string(),
                    baseline_value: Some(value),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let control = AccuracyControlParams {
            maximal_drop: self.max_drop,
            drop_type: parse::<DropType>("--drop-type", &self.drop_type)?,
            ranking_subset_size: self.ranking_subset_size,
            max_iter_num: self.max_iter,
            use_prev_if_drop_increase: !self.no_use_prev_if_drop_increase,
            convert_to_mixed_preset: self.convert_to_mixed_preset,
            metrics: targets,
            metric_subset_ratio: self.metric_subset_ratio,
            restore_mode: parse::<RestoreMode>("--restore-mode", &self.restore_mode)?,
            tune_hyperparams: self.tune_hyperparams,
        };
        control.validate()?;
        Ok(control)
    }
}

/// Where a run keeps what `--resume` needs, inside its output directory.
const STATE_DIR: &str = "state";
/// The journal of results (see `aquant::search::RunOptions::journal`).
const JOURNAL: &str = "journal.jsonl";
/// The command line of the run, to resume it with the same arguments.
const ARGS: &str = "args.json";

/// `quantize --resume OUT_DIR`: the original arguments of the run that wrote OUT_DIR, if that is what
/// `argv` (without the program name) asks for.
pub fn resume_request(argv: &[String]) -> Option<Result<Vec<String>>> {
    let rest: Vec<&str> = argv.iter().map(String::as_str).collect();
    let dir = match rest.as_slice() {
        ["quantize", "--resume", dir] => dir,
        ["quantize", flag] if flag.starts_with("--resume=") => &flag["--resume=".len()..],
        _ => return None,
    };
    let file = Path::new(dir).join(STATE_DIR).join(ARGS);
    Some(
        std::fs::read(&file)
            .with_context(|| {
                format!(
                    "'{dir}' holds no interrupted run to resume (no {})",
                    file.display()
                )
            })
            .and_then(|bytes| {
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("'{}' is unreadable", file.display()))
            }),
    )
}

/// Makes `OUT_DIR/state`: kept when resuming, started afresh (with this run's arguments) otherwise.
fn prepare_state(output: &Path, resumed: bool) -> Result<PathBuf> {
    let state = output.join(STATE_DIR);
    if !resumed {
        match std::fs::remove_dir_all(&state) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("clearing '{}'", state.display()))
            }
            _ => {}
        }
        std::fs::create_dir_all(&state)
            .with_context(|| format!("creating '{}'", state.display()))?;
        let argv: Vec<String> = std::env::args().skip(1).collect();
        aquant_onnx::write_atomic(&state.join(ARGS), &serde_json::to_vec(&argv)?)
            .with_context(|| format!("writing '{}'", state.join(ARGS).display()))?;
    }
    Ok(state)
}

/// What one run quantizes and how: from the flags or from a config file.
struct Job {
    model: PathBuf,
    calibration: DataSource,
    validation: Option<DataSource>,
    metrics: Vec<String>,
    params: QuantizationParams,
    /// `Some` for accuracy-aware quantization.
    control: Option<AccuracyControlParams>,
    output: PathBuf,
}

impl QuantizeArgs {
    fn job(&self) -> Result<Job> {
        match &self.config {
            Some(path) => job_from_config(path, self.output.clone()),
            None => self.job_from_flags(),
        }
    }

    fn job_from_flags(&self) -> Result<Job> {
        let (Some(model), Some(calib), Some(output)) = (&self.model, &self.calib, &self.output)
        else {
            bail!("--model, --calib and --output are required without --config");
        };
        let params = self.params()?;
        let control = self.control()?;
        Ok(Job {
            model: model.clone(),
            calibration: DataSource::File(calib.clone()),
            validation: self.val.clone().map(DataSource::File),
            metrics: self.metric.clone(),
            params,
            control: (self.algorithm()? == Algorithm::AccuracyAware).then_some(control),
            output: output.clone(),
        })
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
        params: config.quantization,
        control: config.accuracy_control,
        output,
    })
}

/// Runs `aquant quantize`; `resumed`: the arguments come from an interrupted run's state.
pub fn run(args: QuantizeArgs, resumed: bool) -> Result<ExitCode> {
    let start = Instant::now();
    let job = args.job()?;
    let model = Graph::load(&job.model)?.into_model();
    let output = OutputDir::plan(&job.model, &job.output)?;
    let calibration = job.calibration.open().context("calibration data")?;
    let backend = args.backend.open()?;
    let backend = backend.as_ref();
    let progress = Bars::new(args.quiet);
    // Every input is opened and checked before the output directory is created. One dataset object when
    // validation and calibration are the same data: the library then reuses calibration's FP32 outputs as the
    // FP32 evaluation.
    let opened;
    let validation: Option<&dyn aquant::Dataset> = match &job.validation {
        Some(source) if same_source(source, &job.calibration) => Some(calibration.as_ref()),
        Some(source) => {
            opened = source.open().context("validation data")?;
            Some(opened.as_ref())
        }
        None => None,
    };
    let metrics = job
        .metrics
        .iter()
        .map(|m| aquant::metric::builtin(m))
        .collect::<aquant::Result<Vec<_>>>()?;
    let metric_refs: Vec<&dyn aquant::Metric> = metrics.iter().map(|m| m.as_ref()).collect();
    let deployed = deployed_engine(&args, validation.is_some());
    let deployed = deployed.as_deref();
    let Some(control) = &job.control else {
        output.create()?;
        return run_default(
            &args,
            &job,
            (backend, deployed),
            model,
            (calibration.as_ref(), validation, &metric_refs),
            &output,
            &progress,
            start,
        );
    };
    let validation = validation.context("accuracy-aware quantization needs a validation set")?;
    warn_if_subset_clamped(control.ranking_subset_size, validation.len());
    output.create()?;
    let state = prepare_state(&job.output, resumed)?;
    interrupt::install();
    let options = RunOptions {
        batch_size: args.batch,
        intermediate_dir: Some(output.intermediate()),
        compress_weights: !args.no_compress_weights,
        progress: &progress,
        levers: args.levers(),
        journal: Some(state.join(JOURNAL)),
        interrupt: Some(interrupt::flag()),
        deployed,
    };
    let outcome = search::quantize_with_accuracy_control(
        backend,
        model,
        calibration.as_ref(),
        validation,
        &metric_refs,
        &job.params,
        control,
        &options,
    );
    let mut outcome = match outcome {
        Err(aquant::Error::Interrupted) => {
            eprintln!(
                "interrupted before the quantized model was evaluated: nothing to save yet; \
                 continue with: aquant quantize --resume {}",
                job.output.display()
            );
            return Ok(ExitCode::from(130));
        }
        Err(error) => {
            // Not resumable: a failed run leaves nothing behind.
            let _ = std::fs::remove_dir_all(&state);
            return Err(error.into());
        }
        Ok(outcome) => outcome,
    };
    let target = output.save_model(&outcome.model)?;
    outcome.report.output = Some(target.display().to_string());
    outcome.report.model = job.model.display().to_string();
    output.write_report(&outcome.report)?;
    say!("{}", outcome.report.summary());
    say!("model: {}", target.display());
    if args.profile {
        print_profile(&outcome.report);
    }
    if outcome.report.interrupted {
        eprintln!(
            "interrupted: continue with: aquant quantize --resume {}",
            job.output.display()
        );
        return Ok(ExitCode::from(130));
    }
    // Finished: the journal has served its purpose.
    let _ = std::fs::remove_dir_all(&state);
    Ok(if outcome.target_met() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The `--profile` table: wall time per stage, then what the evaluations spent it on.
fn print_profile(report: &search::Report) {
    let t = &report.timings_s;
    let p = &report.profile;
    let e = &report.evaluations;
    say!("profile ({} backend):", report.backend);
    for (stage, seconds) in [
        ("calibration + bias correction", t.calibration),
        ("FP32 evaluation", t.fp32_eval),
        ("INT8 evaluation", t.int8_eval),
        ("ranking", t.ranking),
        ("revert steps", t.restore),
        ("total", t.total),
    ] {
        say!("  {stage:<30} {seconds:>8.1} s");
    }
    say!(
        "  engine, summed over threads:   build {:.1} s ({} models), prepare {:.1} s ({}), run {:.1} s ({} batches)",
        p.build_s, p.builds, p.prepare_s, p.prepares, p.run_s, p.runs
    );
    say!(
        "  evaluations: {} full, {} on the ranking subset, {} samples inferred",
        e.full,
        e.subset,
        e.samples_inferred
    );
}

/// Whether two data sources are the same data: the same spec file, or equal inline specs read from the same
/// place.
fn same_source(a: &DataSource, b: &DataSource) -> bool {
    match (a, b) {
        (DataSource::File(a), DataSource::File(b)) => {
            matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
        }
        (a, b) => a == b,
    }
}

/// The ranking subset is clamped to the validation set, as NNCF does; a larger request is worth a word, since
/// it usually means the wrong validation set was given.
fn warn_if_subset_clamped(requested: Option<usize>, samples: usize) {
    if let Some(size) = requested.filter(|&size| size > samples) {
        eprintln!(
            "warning: --ranking-subset-size {size} is larger than the {samples} validation samples; ranking uses all of them"
        );
    }
}

/// The engine the saved model is judged on: ONNX Runtime as deployed, when it is found, a validation set is
/// given and `--no-deployed-check` is not.
fn deployed_engine(args: &QuantizeArgs, has_validation: bool) -> Option<Box<dyn aquant::Backend>> {
    if args.no_deployed_check || !has_validation {
        return None;
    }
    match Engine::Ort.open() {
        Ok(engine) => Some(engine),
        Err(error) => {
            eprintln!(
                "warning: the saved model is not judged on ONNX Runtime ({error:#}); \
                 --no-deployed-check silences this"
            );
            None
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_default(
    args: &QuantizeArgs,
    job: &Job,
    (backend, deployed): (&dyn aquant::Backend, Option<&dyn aquant::Backend>),
    model: aquant_onnx::ModelProto,
    (calibration, validation, metrics): (
        &dyn aquant::Dataset,
        Option<&dyn aquant::Dataset>,
        &[&dyn aquant::Metric],
    ),
    output: &OutputDir,
    progress: &Bars,
    start: Instant,
) -> Result<ExitCode> {
    let params = &job.params;
    let (quantized, summary) =
        quantize::quantize(backend, model, calibration, params, args.batch, progress)?;
    let form = ModelForm::Export {
        compress_weights: !args.no_compress_weights,
    };
    let output_model = quantized.build(&Default::default(), Default::default(), form)?;
    let target = output.save_model(&output_model)?;
    let deployed = match (deployed, validation) {
        (Some(engine), Some(validation)) => {
            let control = match &job.control {
                Some(control) => control.clone(),
                None => args.control()?,
            };
            Some(search::check_deployed(
                engine,
                quantized.fp32().model(),
                &output_model,
                validation,
                metrics,
                &control,
                args.batch,
                progress,
            )?)
        }
        _ => None,
    };
    let samples = quantize::AUTO_SAMPLES.min(summary.calibration_samples);
    let saturation =
        aquant::saturation::analyze(&quantized, backend, calibration, samples, args.batch)?;
    let report = serde_json::json!({
        "algorithm": "DefaultQuantization",
        "model": job.model,
        "quantized_ops": summary.quantized_ops,
        "reverted_ops": 0,
        "activation_quantizers": summary.activation_quantizers,
        "corrected_biases": summary.corrected_biases,
        "calibration_samples": summary.calibration_samples,
        "parameters": params,
        "overflow_fix": {
            "mode": summary.overflow_fix.name(),
            "half_range_layers": summary.half_range_layers,
            "auto_analysis": summary.saturation.as_ref().map(|s| s.summary()),
        },
        "saturation": saturation.summary(),
        "deployed": deployed,
        "timings_s": {
            "calibration": summary.calibration_seconds,
            "bias_correction": summary.bias_correction_seconds,
            "total": start.elapsed().as_secs_f64(),
        },
        "output": target,
    });
    output.write_report(&report)?;
    say!(
        "{} ops quantized ({} activation quantizers, {} biases corrected, {} half-range: overflow fix {}; {} at risk of int16 saturation without VNNI) in {:.1} s → {}",
        summary.quantized_ops,
        summary.activation_quantizers,
        summary.corrected_biases,
        summary.half_range_layers.len(),
        summary.overflow_fix.name(),
        saturation.at_risk().count(),
        start.elapsed().as_secs_f64(),
        target.display()
    );
    match &deployed {
        Some(d) if !d.target_met => {
            say!(
                "{}\naccuracy target NOT met on the deployed engine",
                d.summary()
            );
            Ok(ExitCode::from(1))
        }
        Some(d) => {
            say!("{}", d.summary());
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
