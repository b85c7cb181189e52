//! DefaultQuantization from start to report: the one entry point of the base algorithm as a job
//! ([`quantize_default`]), and what it reports ([`DefaultReport`]), next to accuracy control's
//! [`search::Report`](crate::search::Report).
//!
//! The base algorithm itself is [`quantize`](crate::quantize::quantize); this adds what a finished run owes its user: the
//! deployable model, the saturation analysis of the saved weights on this CPU family, and (with a validation
//! set and an engine) the deployed check, so that a front end only maps arguments and writes files.

use std::time::Instant;

use aquant_onnx::ModelProto;
use serde::Serialize;

use crate::data::Dataset;
use crate::error::Result;
use crate::job::deployed::{check_deployed, time_deployed};
use crate::metric::Metric;
use crate::params::{AccuracyControlParams, RunOptions};
use crate::quantize::{
    quantize, ModelBytes, ModelForm, OpsByPrecision, QuantizationParams, QuantizedModel,
    AUTO_SAMPLES,
};
use crate::search::DeployedReport;
use crate::sensitivity::SensitivityReport;
use crate::{Backend, BackendChoice};

/// POT's name of the base algorithm, as reports spell it.
pub const DEFAULT_QUANTIZATION: &str = "DefaultQuantization";

/// What the saved model is judged against when it is checked as deployed ([`RunOptions::deployed`]).
pub struct DeployedTarget<'a> {
    /// The validation set.
    pub data: &'a dyn Dataset,
    /// The metrics, each with its own allowed drop.
    pub metrics: &'a [&'a dyn Metric],
    /// The allowed drop.
    pub control: &'a AccuracyControlParams,
}

/// What a DefaultQuantization run did (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultReport {
    /// Always [`DEFAULT_QUANTIZATION`].
    pub algorithm: &'static str,
    /// The input model, as the caller names it.
    pub model: String,
    /// Ops quantized.
    pub quantized_ops: usize,
    /// Always 0: the base algorithm reverts nothing (the key matches accuracy control's report).
    pub reverted_ops: usize,
    /// Activation quantizers placed.
    pub activation_quantizers: usize,
    /// Biases shifted by fast bias correction.
    pub corrected_biases: usize,
    /// Calibration samples used.
    pub calibration_samples: usize,
    /// The parameters the run used.
    pub parameters: QuantizationParams,
    /// The engine that calibrated, and why that one.
    pub backend: BackendChoice,
    /// The threads and FP32-output cache a memory limit allowed, when one was given (set by [`crate::job::run`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::params::MemoryPlan>,
    /// The overflow fix applied.
    pub overflow_fix: OverflowFixApplied,
    /// Where int16 saturation threatens the saved model on CPUs without VNNI
    /// ([`SaturationReport::summary`](crate::saturation::SaturationReport::summary)).
    pub saturation: serde_json::Value,
    /// The saved model judged on its deployment engine, when one and a validation set were given.
    pub deployed: Option<DeployedReport>,
    /// Wall times.
    pub timings_s: DefaultTimings,
    /// Where the caller saved the model.
    pub output: Option<String>,
    /// Layers the saturation analysis finds at risk (the `saturation` summary lists them).
    #[serde(skip)]
    pub layers_at_risk: usize,
    /// Each quantized op's share of the output error (`None`: skipped).
    pub sensitivity: Option<SensitivityReport>,
    /// The saved model's ops by precision.
    pub ops_by_precision: OpsByPrecision,
    /// The FP32 and saved models' sizes.
    pub model_bytes: ModelBytes,
}

/// The overflow fix a run applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverflowFixApplied {
    /// The mode ([`OverflowFix::name`](crate::params::OverflowFix::name)).
    pub mode: &'static str,
    /// The weight quantizers given half the int8 range.
    pub half_range_layers: Vec<String>,
    /// For `auto`: the analysis that chose them.
    pub auto_analysis: Option<serde_json::Value>,
}

/// Wall times of a DefaultQuantization run, in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DefaultTimings {
    /// Calibration statistics.
    pub calibration: f64,
    /// Fast bias correction.
    pub bias_correction: f64,
    /// The saturation analysis `overflow_fix: auto` chooses the half-range layers with (0 without it).
    pub overflow_analysis: f64,
    /// The per-layer sensitivity analysis (0 when skipped).
    pub sensitivity: f64,
    /// The whole run.
    pub total: f64,
}

/// The result of [`quantize_default`].
pub struct DefaultOutcome {
    /// The quantized model (state), to build or inspect.
    pub quantized: QuantizedModel,
    /// The deployable QDQ model.
    pub model: ModelProto,
    /// What happened.
    pub report: DefaultReport,
}

impl DefaultOutcome {
    /// Whether the deployed check, when there was one, found every metric within its allowed drop.
    pub fn target_met(&self) -> bool {
        self.report.deployed.as_ref().is_none_or(|d| d.target_met)
    }
}

impl DefaultReport {
    /// One line for a terminal.
    pub fn summary(&self) -> String {
        format!(
            "{} ops quantized ({} activation quantizers, {} biases corrected, {} half-range: overflow fix {}; {} at risk of int16 saturation without VNNI) in {:.1} s on {} → {}",
            self.quantized_ops,
            self.activation_quantizers,
            self.corrected_biases,
            self.overflow_fix.half_range_layers.len(),
            self.overflow_fix.mode,
            self.layers_at_risk,
            self.timings_s.total,
            self.backend.describe(),
            self.output.as_deref().unwrap_or("(not saved)"),
        )
    }
}

/// POT's DefaultQuantization as a job: quantizes `model` on `calibration`, builds the deployable model
/// (`options.compress_weights`), analyses its int16 saturation, and, with `options.deployed` and a `target`,
/// judges it on that engine at `options.deployed_batch` (without a target, only times it there). Of `options`, the batch size, progress and weight
/// compression apply too.
pub fn quantize_default(
    backend: &dyn Backend,
    model: ModelProto,
    calibration: &dyn Dataset,
    params: &QuantizationParams,
    target: Option<DeployedTarget>,
    options: &RunOptions,
) -> Result<DefaultOutcome> {
    let start = Instant::now();
    let batch = options.batch_size;
    let (quantized, summary) =
        quantize(backend, model, calibration, params, batch, options.progress)?;
    let form = ModelForm::Export {
        compress_weights: options.compress_weights,
    };
    let precisions = crate::quantize::device_precisions(quantized.placement(), params);
    let output_model = quantized.build_with(&precisions, Default::default(), form)?;
    let deployed = judge_deployed(&quantized, &output_model, calibration, target, options)?;
    let samples = AUTO_SAMPLES.min(summary.calibration_samples);
    let saturation = analyze_saturation(
        &quantized,
        &output_model,
        backend,
        calibration,
        samples,
        batch,
    )?;
    let sensitivity = crate::sensitivity::after_run(&quantized, backend, calibration, options)?;
    let report = DefaultReport {
        algorithm: DEFAULT_QUANTIZATION,
        model: String::new(),
        quantized_ops: summary.quantized_ops,
        reverted_ops: 0,
        activation_quantizers: summary.activation_quantizers,
        corrected_biases: summary.corrected_biases,
        calibration_samples: summary.calibration_samples,
        parameters: params.clone(),
        backend: BackendChoice::named(backend),
        memory: None,
        overflow_fix: OverflowFixApplied {
            mode: summary.overflow_fix.name(),
            half_range_layers: summary.half_range_layers,
            auto_analysis: summary.saturation.as_ref().map(|s| s.summary()),
        },
        saturation: saturation.summary(),
        deployed,
        timings_s: DefaultTimings {
            calibration: summary.calibration_seconds,
            bias_correction: summary.bias_correction_seconds,
            overflow_analysis: summary.overflow_analysis_seconds,
            sensitivity: sensitivity.as_ref().map_or(0.0, |(_, seconds)| *seconds),
            total: start.elapsed().as_secs_f64(),
        },
        output: None,
        layers_at_risk: saturation.at_risk().count(),
        sensitivity: sensitivity.map(|(report, _)| report),
        ops_by_precision: OpsByPrecision::of(&quantized, &precisions),
        model_bytes: ModelBytes::of(quantized.fp32().model(), &output_model),
    };
    Ok(DefaultOutcome {
        quantized,
        model: output_model,
        report,
    })
}

/// The saturation analysis of the saved model. An engine that runs Q/DQ natively analyses the saved model
/// itself, as accuracy control does: exactly what is deployed, already built ([`crate::saturation::analyze`]
/// would build its int8 Q/DQ form again). tract runs the evaluation form.
fn analyze_saturation(
    quantized: &QuantizedModel,
    saved: &ModelProto,
    backend: &dyn Backend,
    calibration: &dyn Dataset,
    samples: usize,
    batch: usize,
) -> Result<crate::saturation::SaturationReport> {
    match backend.runs_qdq_natively() {
        true => {
            let saved = crate::Graph::new(saved.clone())?;
            crate::saturation::analyze_qdq(&saved, backend, Some(calibration), samples, batch)
        }
        false => crate::saturation::analyze(quantized, backend, calibration, samples, batch),
    }
}

/// The saved model on the deployed engine: judged on `target`'s data when there is one, else only timed.
fn judge_deployed(
    quantized: &QuantizedModel,
    saved: &ModelProto,
    calibration: &dyn Dataset,
    target: Option<DeployedTarget>,
    options: &RunOptions,
) -> Result<Option<DeployedReport>> {
    let fp32 = quantized.fp32().model();
    Ok(match (options.deployed, target) {
        (Some(engine), Some(target)) => Some(check_deployed(
            engine,
            fp32,
            saved,
            target.data,
            target.metrics,
            target.control,
            options.deployed_batch,
            options.latency_runs,
            options.progress,
        )?),
        (Some(engine), None) => {
            time_deployed(engine, fp32, saved, calibration, options.latency_runs)?
        }
        (None, _) => None,
    })
}
