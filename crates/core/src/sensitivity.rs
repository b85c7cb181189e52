//! Per-layer sensitivity: how much of the INT8 model's output error each quantized op causes.
//!
//! The search ranks *groups* by the metric on the validation set; a person reading a report also wants to see,
//! op by op and in graph order, where the int8 model departs from FP32. For each quantized op, the model with
//! only that op's quantizers enabled (every other op in FP32) is compared with the FP32 model on the first
//! few samples of the calibration set, by the normalised squared error of all outputs (NMSE, the `nmse`
//! metric: scale-free, so ops compare with each other). Each op's *share* is its NMSE over the sum of all
//! ops' NMSE. It costs one small evaluation per op (in the form the engine evaluates candidates in, a handful
//! of samples, the ops on all cores), so it runs after the search and can be skipped
//! ([`RunOptions::sensitivity_samples`](crate::params::RunOptions)).

use std::collections::BTreeSet;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::Evaluator;
use crate::metric::{Metric, OutputError};
use crate::params::RunOptions;
use crate::progress::NoProgress;
use crate::quantize::{ModelForm, QuantizedModel, RestoreMode};

/// Samples compared when the caller does not say.
pub use crate::params::DEFAULT_SENSITIVITY_SAMPLES as DEFAULT_SAMPLES;

/// One quantized op's sensitivity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSensitivity {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op_type: String,
    /// NMSE of the outputs against FP32 with only this op quantized.
    pub nmse: f64,
    /// `nmse` over the sum of every op's: this op's share of the output error (0 to 1).
    pub share: f64,
}

/// The sensitivity of every quantized op (`report.json` `sensitivity`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensitivityReport {
    /// What is measured, in words.
    pub measure: &'static str,
    /// Calibration samples compared (the first ones).
    pub samples: usize,
    /// NMSE of the fully quantized model, for scale: errors of single ops do not simply add up.
    pub all_quantized_nmse: f64,
    /// Every quantized op, in graph order.
    pub layers: Vec<LayerSensitivity>,
}

/// The weight bytes of the op models prepared at once. An op's model is FP32 but for that op, and an engine
/// that copies weights into its session (tract, OpenVINO; ONNX Runtime the weights it cannot read in place)
/// holds about a copy of the model's weights for each: the ops of a model past half of this run one at a
/// time, where the copies would otherwise dominate the run's peak memory (issue #27).
const CONCURRENT_OP_MODELS_BYTES: usize = 256 << 20;

/// What [`analyze`] measures, as the report says it.
const MEASURE: &str =
    "NMSE of the outputs against FP32 with only this op quantized; share = its part of the sum";

/// Measures every placed op of `quantized` on the first `samples` samples of `data`; the second value is the
/// wall time it took, in seconds.
pub fn analyze(
    quantized: &QuantizedModel,
    backend: &dyn Backend,
    data: &dyn Dataset,
    samples: usize,
    batch_size: usize,
) -> Result<(SensitivityReport, f64)> {
    let start = Instant::now();
    let nmse = OutputError::nmse();
    let metrics: Vec<&dyn Metric> = vec![&nmse];
    let fp32 = quantized.fp32().model();
    let evaluator =
        Evaluator::new(backend, data, metrics, Some(fp32), batch_size, &NoProgress)?.for_few_runs();
    let indices: Vec<usize> = (0..samples.min(data.len())).collect();
    let ops: Vec<(&str, &str)> = quantized
        .placement()
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.op_type.as_str()))
        .collect();
    // Int8 weights whatever form the model is saved in: the same numbers, a quarter of the weight bytes.
    let form = ModelForm::evaluated_on(backend, true);
    let error_with = |reverted: BTreeSet<String>| -> Result<f64> {
        let model = quantized.build(&reverted, RestoreMode::ActivationsAndWeights, form)?;
        Ok(evaluator.evaluate(&model, &indices, "sensitivity")?.value())
    };
    // First, alone: it fills the evaluator's cache of FP32 outputs that every op's evaluation then reads.
    let all_quantized_nmse = error_with(BTreeSet::new())?;
    // Every op reads those cached outputs: the FP32 session would only hold its packed weights beside the ops'.
    evaluator.release_reference_session();
    // Each op's model is built and prepared on its own core: with a handful of samples, building and
    // preparing (single-threaded in the engines) is most of the cost. Each holds about a copy of the
    // model's weights in the engine, so no more run at once than fit in CONCURRENT_OP_MODELS_BYTES.
    let at_once = (CONCURRENT_OP_MODELS_BYTES / quantized.weight_bytes().max(1))
        .clamp(1, rayon::current_num_threads());
    let errors = ops
        .par_iter()
        .with_min_len(ops.len().div_ceil(at_once))
        .map(|(only, _)| {
            error_with(
                ops.iter()
                    .map(|(n, _)| n.to_string())
                    .filter(|n| n != only)
                    .collect(),
            )
        })
        .collect::<Result<Vec<f64>>>()?;
    let total: f64 = errors.iter().sum();
    let layers = ops
        .iter()
        .zip(errors)
        .map(|((node, op_type), nmse)| LayerSensitivity {
            node: node.to_string(),
            op_type: op_type.to_string(),
            nmse,
            share: if total > 0.0 { nmse / total } else { 0.0 },
        })
        .collect();
    let report = SensitivityReport {
        measure: MEASURE,
        samples: indices.len(),
        all_quantized_nmse,
        layers,
    };
    Ok((report, start.elapsed().as_secs_f64()))
}

/// The sensitivity of `quantized` on the first calibration samples after a run, with the seconds it took
/// (`None` when `options.sensitivity_samples` is 0: nothing is built or run).
pub(crate) fn after_run(
    quantized: &QuantizedModel,
    backend: &dyn Backend,
    calibration: &dyn Dataset,
    options: &RunOptions,
) -> Result<Option<(SensitivityReport, f64)>> {
    match options.sensitivity_samples {
        0 => Ok(None),
        samples => analyze(quantized, backend, calibration, samples, options.batch_size).map(Some),
    }
}
