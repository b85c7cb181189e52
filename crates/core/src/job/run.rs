//! One job as a front end runs it: the algorithm on opened inputs, then the model and report written to the
//! output directory, and the run's state kept or cleared. The command line and the Python package both call
//! [`run`], so both save the same layout, keep the same resumable state and clear it on the same outcomes; they
//! differ only in how they open inputs and say what happened.

use std::path::PathBuf;

use aquant_onnx::ModelProto;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::job::memory::MemoryNeeds;
use crate::job::{
    quantize_default, quantize_with_accuracy_control, AccuracyControlOutcome, DefaultOutcome,
    DeployedTarget,
};
use crate::metric::Metric;
use crate::output::{ExternalData, OutputDir, OutputFormat};
use crate::params::{AccuracyControlParams, MemoryPlan, QuantizationParams, RunOptions};
use crate::{BackendChoice, ChosenBackend};

/// A compression algorithm with its parameters (POT's `{"name": ..., "params": {...}}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Algorithm {
    /// POT `DefaultQuantization`.
    Default(QuantizationParams),
    /// POT `AccuracyAwareQuantization` (its base algorithm is DefaultQuantization with `quantization`).
    AccuracyAware {
        /// The base algorithm's parameters.
        quantization: QuantizationParams,
        /// Accuracy control.
        control: AccuracyControlParams,
    },
}

impl Algorithm {
    /// The base algorithm's parameters.
    pub fn quantization(&self) -> &QuantizationParams {
        match self {
            Algorithm::Default(quantization) | Algorithm::AccuracyAware { quantization, .. } => {
                quantization
            }
        }
    }

    /// Targets `format`'s engine ([`OutputFormat::engine`]) unless the parameters name one: the placement then
    /// matches where the saved model runs.
    pub fn deploy_as(&mut self, format: OutputFormat) {
        let (Algorithm::Default(quantization) | Algorithm::AccuracyAware { quantization, .. }) =
            self;
        quantization.deploy.get_or_insert(format.engine());
    }

    /// Accuracy control's parameters, for AccuracyAwareQuantization.
    pub fn control(&self) -> Option<&AccuracyControlParams> {
        match self {
            Algorithm::Default(_) => None,
            Algorithm::AccuracyAware { control, .. } => Some(control),
        }
    }
}

/// A job with its inputs opened and checked, and where its results go.
pub struct Request<'a> {
    /// The engine that calibrates and judges, and why it is that one (the report says both).
    pub backend: &'a ChosenBackend,
    /// The FP32 model (moved into the algorithm).
    pub model: ModelProto,
    /// The input model as the report names it (its path).
    pub model_name: String,
    /// The algorithm and its parameters.
    pub algorithm: &'a Algorithm,
    /// The calibration set.
    pub calibration: &'a dyn Dataset,
    /// The validation set: accuracy control's, and for DefaultQuantization the deployed check's.
    pub validation: Option<&'a dyn Dataset>,
    /// The metrics, each with its own allowed drop.
    pub metrics: &'a [&'a dyn Metric],
    /// The drop DefaultQuantization's deployed check allows.
    pub deployed_check: &'a AccuracyControlParams,
    /// How to carry the run out; the journal is set here from `output`'s state directory.
    pub options: RunOptions<'a>,
    /// Where the model and report are written (`None`: returned only).
    pub output: Option<Destination<'a>>,
}

/// Where a job writes: the output directory (created before the run), the model's format, and for accuracy
/// control the state directory its journal lives in, which an interrupted run keeps for a resume.
pub struct Destination<'a> {
    /// The planned output directory.
    pub dir: &'a OutputDir,
    /// The saved model's format.
    pub format: OutputFormat,
    /// Whether an ONNX model is saved with external data (`Auto` already resolved against the input by
    /// [`ExternalData::for_input`]).
    pub external_data: ExternalData,
    /// Accuracy control's state directory, prepared by the front end (fresh, or kept for a resume).
    pub state: Option<PathBuf>,
}

/// A finished job: what the algorithm returned, with the report naming the model and where it was saved.
pub enum Finished {
    /// DefaultQuantization's outcome (boxed, as the other: each holds a report of kilobytes, and the two
    /// differ in size by more than the enum should carry inline).
    Default(Box<DefaultOutcome>),
    /// Accuracy control's outcome (possibly interrupted: then the best model so far).
    AccuracyControl(Box<AccuracyControlOutcome>),
}

impl Finished {
    /// The quantized model.
    pub fn model(&self) -> &ModelProto {
        match self {
            Finished::Default(outcome) => &outcome.model,
            Finished::AccuracyControl(outcome) => &outcome.model,
        }
    }

    /// Whether every accuracy target is met (DefaultQuantization: on the deployed engine, when checked).
    pub fn target_met(&self) -> bool {
        match self {
            Finished::Default(outcome) => outcome.target_met(),
            Finished::AccuracyControl(outcome) => outcome.target_met(),
        }
    }

    /// The line the command line prints for the run: one text wherever a run is summed up (the Python
    /// package's `Report.summary()` returns it too).
    pub fn summary(&self) -> String {
        match self {
            Finished::Default(outcome) => outcome.report.summary(),
            Finished::AccuracyControl(outcome) => outcome.report.summary(),
        }
    }

    /// Whether the run was interrupted (the model is the best so far).
    pub fn interrupted(&self) -> bool {
        match self {
            Finished::Default(_) => false,
            Finished::AccuracyControl(outcome) => outcome.report.interrupted,
        }
    }

    /// report.json's content.
    pub fn report_json(&self) -> Result<String> {
        let text = match self {
            Finished::Default(outcome) => serde_json::to_string(&outcome.report),
            Finished::AccuracyControl(outcome) => serde_json::to_string(&outcome.report),
        };
        text.map_err(|e| Error::Config(format!("encoding the report: {e}")))
    }
}

/// Runs the job's algorithm, then writes the model and report (with the report naming both). Accuracy control
/// journals into the destination's state directory: a failed run clears it (nothing to resume), an interrupted
/// one keeps it, a finished one clears it once its model is saved. An interrupt before the quantized model was
/// evaluated is [`Error::Interrupted`], with the state kept.
pub fn run(mut request: Request) -> Result<Finished> {
    match request.options.memory_limit {
        None => run_within(request, None),
        Some(limit) => {
            let plan = plan_memory(&request, limit)?;
            request.options.reference_budget = plan.reference_budget;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(plan.threads)
                .build()
                .map_err(|e| {
                    Error::Config(format!(
                        "memory_limit: starting {} threads: {e}",
                        plan.threads
                    ))
                })?;
            pool.install(|| run_within(request, Some(plan)))
        }
    }
}

/// The threads and FP32-output cache `request` fits in under `limit` bytes ([`MemoryNeeds::plan`]), before any
/// output is created.
fn plan_memory(request: &Request, limit: u64) -> Result<MemoryPlan> {
    let sets: Vec<&dyn Dataset> = std::iter::once(request.calibration)
        .chain(request.validation)
        .collect();
    MemoryNeeds {
        engine: request.backend.engine.name(),
        model_bytes: aquant_onnx::encoded_len(&request.model) as u64,
        data_bytes: MemoryNeeds::data_bytes(&sets)?,
        cores: rayon::current_num_threads(),
    }
    .plan(limit)
}

/// [`run`] on the current thread pool, `memory` the plan that chose it.
fn run_within(mut request: Request, memory: Option<MemoryPlan>) -> Result<Finished> {
    // The model moves into the algorithm: a large model is never held twice.
    let model = std::mem::take(&mut request.model);
    let state = request.output.as_ref().and_then(|o| o.state.clone());
    if let Some(output) = &request.output {
        output.dir.create()?;
    }
    let mut finished = match request.algorithm {
        Algorithm::Default(params) => {
            Finished::Default(Box::new(run_default(&request, model, params)?))
        }
        Algorithm::AccuracyAware {
            quantization,
            control,
        } => Finished::AccuracyControl(Box::new(run_accuracy_control(
            &request,
            model,
            quantization,
            control,
        )?)),
    };
    name_inputs(
        &mut finished,
        request.model_name,
        request.backend.choice(),
        memory,
    );
    if let Some(output) = &request.output {
        save(&mut finished, output)?;
    }
    if !finished.interrupted() {
        // Finished: the journal has served its purpose.
        clear_state(state.as_deref());
    }
    Ok(finished)
}

fn run_default(
    request: &Request,
    model: ModelProto,
    params: &QuantizationParams,
) -> Result<DefaultOutcome> {
    let target = request.validation.map(|data| DeployedTarget {
        data,
        metrics: request.metrics,
        control: request.deployed_check,
    });
    quantize_default(
        request.backend.engine.as_ref(),
        model,
        request.calibration,
        params,
        target,
        &request.options,
    )
}

fn run_accuracy_control(
    request: &Request,
    model: ModelProto,
    quantization: &QuantizationParams,
    control: &AccuracyControlParams,
) -> Result<AccuracyControlOutcome> {
    let validation = request.validation.ok_or_else(|| {
        Error::Config("accuracy-aware quantization needs a validation set".into())
    })?;
    let state = request.output.as_ref().and_then(|o| o.state.as_deref());
    let options = RunOptions {
        journal: state.map(OutputDir::journal),
        ..request.options.clone()
    };
    let outcome = quantize_with_accuracy_control(
        request.backend.engine.as_ref(),
        model,
        request.calibration,
        validation,
        request.metrics,
        quantization,
        control,
        &options,
    );
    // A failed run is not resumable and leaves nothing behind; an interrupted one keeps its journal.
    outcome.inspect_err(|error| {
        if !matches!(error, Error::Interrupted) {
            clear_state(state);
        }
    })
}

/// Removes accuracy control's state directory (best effort: a leftover only costs a fresh start).
fn clear_state(state: Option<&std::path::Path>) {
    if let Some(state) = state {
        let _ = std::fs::remove_dir_all(state);
    }
}

/// The report names the input model as the front end does, the engine with the front end's reason for it, and the memory
/// plan a limit chose.
fn name_inputs(
    finished: &mut Finished,
    model_name: String,
    backend: BackendChoice,
    memory: Option<MemoryPlan>,
) {
    match finished {
        Finished::Default(outcome) => {
            outcome.report.model = model_name;
            outcome.report.backend = backend;
            outcome.report.memory = memory;
        }
        Finished::AccuracyControl(outcome) => {
            outcome.report.model = model_name;
            outcome.report.backend = backend;
            outcome.report.memory = memory;
        }
    }
}

/// Saves the model in the destination's format and writes report.json (and report.html) naming it.
fn save(finished: &mut Finished, output: &Destination) -> Result<()> {
    let saved = output
        .dir
        .save_model(finished.model(), output.format, output.external_data)?;
    let saved = Some(saved.display().to_string());
    match finished {
        Finished::Default(outcome) => {
            outcome.report.output = saved;
            output.dir.write_report(&outcome.report)
        }
        Finished::AccuracyControl(outcome) => {
            outcome.report.output = saved.clone();
            save_targets(outcome, output, saved)?;
            output.dir.write_report(&outcome.report)
        }
    }
}

/// Saves each looser target's model in its own directory ([`OutputDir::target`]), in the run's format, and
/// names every target's model in the report (the tightest's is the run's own, `saved`).
fn save_targets(
    outcome: &mut AccuracyControlOutcome,
    output: &Destination,
    saved: Option<String>,
) -> Result<()> {
    let Some((tightest, looser)) = outcome.report.targets.split_first_mut() else {
        return Ok(());
    };
    tightest.output = saved;
    for (target, model) in looser.iter_mut().zip(&outcome.target_models) {
        let dir = output.dir.target(target.max_drop);
        dir.create()?;
        let path = dir.save_model(model, output.format, output.external_data)?;
        target.output = Some(path.display().to_string());
    }
    Ok(())
}
