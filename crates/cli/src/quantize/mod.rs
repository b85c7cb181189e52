//! `aquant quantize`: opens what the arguments name, hands the job to the library ([`aquant::job::run`]: the
//! algorithm, then the model and report saved), says what it returned, and maps the outcome to an exit code.
//! The flags and the validated job they become live in `args`.

mod args;
mod executor;
mod resume;

use anyhow::{bail, Context, Result};
use aquant::config::DataSource;
use aquant::job::{AccuracyControlOutcome, DefaultOutcome, Destination, Finished, Request};
use aquant::search::{self, RunOptions};
use aquant::Graph;

use args::Job;
pub use args::QuantizeArgs;
pub use executor::{ExecutorSpec, Executors, NoExecutors};
use resume::prepare_state;
pub use resume::resume_request;

use crate::interrupt;
use crate::output::{OutputDir, OutputFormat};
use crate::progress::Bars;

/// How the flags say to carry the run out (no journal or interrupt yet: accuracy control adds them).
fn run_options<'a>(
    args: &QuantizeArgs,
    output: &OutputDir,
    progress: &'a Bars,
    deployed: Option<&'a dyn aquant::Backend>,
) -> RunOptions<'a> {
    RunOptions {
        batch_size: args.batch,
        intermediate_dir: Some(output.intermediate()),
        compress_weights: !args.no_compress_weights,
        progress,
        levers: args.levers(),
        journal: None,
        interrupt: None,
        deployed,
        deployed_batch: args.deployed_batch,
        latency_runs: args.latency_runs,
        sensitivity_samples: match args.no_sensitivity {
            true => 0,
            false => aquant::sensitivity::DEFAULT_SAMPLES,
        },
        executor: None,
        memory_limit: args.memory_limit,
        reference_budget: aquant::params::DEFAULT_REFERENCE_BUDGET,
    }
}

/// Runs `aquant quantize`; `resumed`: the arguments come from an interrupted run's state.
pub fn run(args: QuantizeArgs, resumed: bool, executors: &dyn Executors) -> Result<u8> {
    let job = Job::try_from(&args)?;
    let (graph, sources) = Graph::open(&job.model, job.weights.as_deref())?;
    let model = graph.into_model();
    let output = OutputDir::plan(&sources.files, &job.output)?;
    let format = OutputFormat::resolve(args.output_format, &job.model);
    // Every op of the model must have a form in the output format: known now, not after the search.
    format.check(&model)?;
    args.external_data.check(format)?;
    // Every input is opened and checked before the output directory is created.
    let inputs = Inputs::open(&job, &args, format)?;
    let metrics: Vec<&dyn aquant::Metric> = inputs.metrics.iter().map(|m| m.as_ref()).collect();
    let progress = Bars::new(args.quiet);
    if args.executor.is_some() && job.algorithm.control().is_none() {
        bail!("--executor is for accuracy-aware quantization (DefaultQuantization has no search)");
    }
    let executor = args
        .executor
        .as_ref()
        .map(|spec| executors.open(spec))
        .transpose()?;
    let mut options = run_options(&args, &output, &progress, inputs.deployed.as_deref());
    options.executor = executor.as_deref();
    let state = match job.algorithm.control() {
        Some(control) => {
            let validation = inputs
                .validation()
                .context("accuracy-aware quantization needs a validation set")?;
            warn_if_subset_clamped(control.ranking_subset_size, validation.len());
            output.create()?;
            let state = prepare_state(&job.output, resumed)?;
            interrupt::install();
            options.interrupt = Some(interrupt::flag());
            Some(state)
        }
        None => None,
    };
    let request = Request {
        backend: &inputs.backend,
        model,
        model_name: job.model.display().to_string(),
        algorithm: &job.algorithm,
        calibration: inputs.calibration.as_ref(),
        validation: inputs.validation(),
        metrics: &metrics,
        deployed_check: &job.deployed_check,
        options,
        output: Some(Destination {
            dir: &output,
            format,
            external_data: args.external_data.for_input(Some(&sources)),
            state,
        }),
    };
    match aquant::job::run(request) {
        Err(aquant::Error::Interrupted) => {
            eprintln!(
                "interrupted before the quantized model was evaluated: nothing to save yet; \
                 continue with: aquant quantize --resume {}",
                job.output.display()
            );
            Ok(130)
        }
        Err(error) => Err(error.into()),
        Ok(Finished::Default(outcome)) => Ok(say_default(&outcome)),
        Ok(Finished::AccuracyControl(outcome)) => Ok(say_accuracy_control(&outcome, &args, &job)),
    }
}

/// Says what DefaultQuantization did; its exit code.
fn say_default(outcome: &DefaultOutcome) -> u8 {
    let report = &outcome.report;
    say!("{}", report.summary());
    if let Some(deployed) = &report.deployed {
        say!("{}", deployed.summary());
        if !deployed.target_met {
            say!("accuracy target NOT met on the deployed engine");
        }
    }
    exit_code(outcome.target_met())
}

/// Says what accuracy control did (and how to resume an interrupted run); its exit code.
fn say_accuracy_control(outcome: &AccuracyControlOutcome, args: &QuantizeArgs, job: &Job) -> u8 {
    let report = &outcome.report;
    say!("{}", report.summary());
    say!("model: {}", report.output.as_deref().unwrap_or_default());
    if args.profile {
        print_profile(report);
    }
    if report.interrupted {
        eprintln!(
            "interrupted: continue with: aquant quantize --resume {}",
            job.output.display()
        );
        return 130;
    }
    exit_code(outcome.target_met())
}

/// 0 when the accuracy target is met, 1 when it is not (the best model is saved all the same).
fn exit_code(target_met: bool) -> u8 {
    if target_met {
        0
    } else {
        1
    }
}

/// The datasets, metrics and engines of a job, opened and checked.
struct Inputs {
    calibration: Box<dyn aquant::Dataset>,
    /// A validation set other than the calibration set. When both are the same data, one dataset object
    /// serves both: the library then reuses calibration's FP32 outputs as the FP32 evaluation.
    other_validation: Option<Box<dyn aquant::Dataset>>,
    has_validation: bool,
    metrics: Vec<Box<dyn aquant::Metric>>,
    backend: aquant::ChosenBackend,
    deployed: Option<Box<dyn aquant::Backend>>,
}

impl Inputs {
    fn open(job: &Job, args: &QuantizeArgs, format: OutputFormat) -> Result<Inputs> {
        let calibration = job.calibration.open().context("calibration data")?;
        let backend = args.backend.choose(format, job.device.as_deref())?;
        let other_validation = match &job.validation {
            Some(source) if !same_source(source, &job.calibration) => {
                Some(source.open().context("validation data")?)
            }
            _ => None,
        };
        let metrics = job
            .metrics
            .iter()
            .map(|m| aquant::metric::builtin(m))
            .collect::<aquant::Result<Vec<_>>>()?;
        let has_validation = job.validation.is_some();
        Ok(Inputs {
            calibration,
            other_validation,
            has_validation,
            metrics,
            backend,
            deployed: deployed_engine(args, job, format),
        })
    }

    fn validation(&self) -> Option<&dyn aquant::Dataset> {
        match &self.other_validation {
            Some(validation) => Some(validation.as_ref()),
            None if self.has_validation => Some(self.calibration.as_ref()),
            None => None,
        }
    }
}

/// The `--profile` table: wall time per stage, then what the evaluations spent it on.
fn print_profile(report: &search::Report) {
    let t = &report.timings_s;
    let p = &report.profile;
    let e = &report.evaluations;
    say!("profile ({} backend):", report.backend.name);
    let stages = [
        ("calibration + bias correction", t.calibration),
        ("overflow fix analysis", t.overflow_analysis),
        ("FP32 evaluation", t.fp32_eval),
        ("INT8 evaluation", t.int8_eval),
        ("ranking", t.ranking),
        ("revert steps", t.restore),
        ("deployed check + latency", t.deployed),
        ("saturation analysis (saved)", t.saturation),
        ("sensitivity analysis", t.sensitivity),
        ("front (export + latency)", t.front),
    ];
    let named: f64 = stages.iter().map(|(_, seconds)| seconds).sum();
    // What no stage names: loading, quantizing, building the model to save, the float-op dump.
    let rest = ("the rest", (t.total - named).max(0.0));
    for (stage, seconds) in stages.into_iter().chain([rest, ("total", t.total)]) {
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

/// The engine the saved model is checked on unless `--no-deployed-check`: judged there with a validation set,
/// timed there in any case (`--latency-runs`); ONNX Runtime as deployed for an ONNX output, OpenVINO reading the
/// saved IR itself, on the job's device, for an IR output. A missing engine is a warning, not an error: the run
/// is still worth having.
fn deployed_engine(
    args: &QuantizeArgs,
    job: &Job,
    format: OutputFormat,
) -> Option<Box<dyn aquant::Backend>> {
    let nothing_to_do = job.validation.is_none() && args.latency_runs == 0;
    if args.no_deployed_check || nothing_to_do {
        return None;
    }
    let device = job.device.as_deref();
    match aquant_engines::deployed_engine(format, device) {
        Ok(engine) => Some(engine),
        Err(missing) => {
            eprintln!("warning: {missing}; --no-deployed-check silences this");
            None
        }
    }
}
