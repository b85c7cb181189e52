//! Per-layer sensitivity: how much of the INT8 model's output error each quantized op causes.
//!
//! The search ranks *groups* by the metric on the validation set; a person reading a report also wants to see,
//! op by op and in graph order, where the int8 model departs from FP32. For each quantized op, the model with
//! only that op's quantizers enabled (every other op in FP32) is compared with the FP32 model on the first
//! few samples of the calibration set, by the normalised squared error of all outputs (NMSE, the `nmse`
//! metric: scale-free, so ops compare with each other). Each op's *share* is its NMSE over the sum of all
//! ops' NMSE. It costs one small evaluation per op (in the form the engine evaluates candidates in, a handful
//! of samples, the ops on all cores; each op's model run from where it departs from FP32, see `OpSuffixes`),
//! so it runs after the search and can be skipped
//! ([`RunOptions::sensitivity_samples`](crate::params::RunOptions)).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use aquant_onnx::ModelProto;

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::Backend;
use crate::data::Annotation;
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::{aggregate, Evaluator};
use crate::graph::{changed_suffix, prefix, Cut, Suffix};
use crate::metric::{Metric, OutputError};
use crate::params::RunOptions;
use crate::progress::NoProgress;
use crate::quantize::{ModelForm, QuantizedModel, RestoreMode};
use crate::runner::{run_batches, Flow, InputBinding};
use crate::tensor::Tensor;

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
    from_suffixes: bool,
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
    let names: Vec<&str> = ops.iter().map(|(n, _)| *n).collect();
    let suffixes = match from_suffixes {
        true => OpSuffixes::new(quantized, &evaluator, form, &indices)?,
        false => None,
    };
    let errors = match suffixes {
        Some(suffixes) => suffixes.all_errors(&names, &error_with)?,
        None => whole_errors(quantized, &names, &error_with)?,
    };
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

/// Each op's model with only `op` quantized: `error_with(every other op)`. Each op's model is built and
/// prepared on its own core: with a handful of samples, building and preparing (single-threaded in the
/// engines) is most of the cost. Each holds about a copy of the model's weights in the engine, so no more run
/// at once than fit in [`CONCURRENT_OP_MODELS_BYTES`].
fn whole_errors(
    quantized: &QuantizedModel,
    ops: &[&str],
    error_with: &(dyn Fn(BTreeSet<String>) -> Result<f64> + Sync),
) -> Result<Vec<f64>> {
    let at_once = (CONCURRENT_OP_MODELS_BYTES / quantized.weight_bytes().max(1))
        .clamp(1, rayon::current_num_threads());
    ops.par_iter()
        .with_min_len(ops.len().div_ceil(at_once))
        .map(|only| error_with(all_but(ops, only)))
        .collect()
}

/// Every op of `ops` but `only`.
fn all_but(ops: &[&str], only: &str) -> BTreeSet<String> {
    ops.iter()
        .filter(|n| **n != only)
        .map(|n| n.to_string())
        .collect()
}

/// The ops' models run from where each departs from the FP32 model: every node before an op's input computes
/// what the FP32 model computes there (FP32 ops, no quantizer), so the FP32 model runs that part once per
/// sample for a window of ops, with their inputs as extra outputs, and each op's model runs only its
/// [`Suffix`] (on MobileNetV2 about half the nodes on average; the analysis 2.4-2.7 -> 1.9-2.1 s on ONNX
/// Runtime, VNNI + AMX, 2 cores).
///
/// On an engine that computes every node the same whoever reads its result (tract) the figures are each op's
/// whole model's, bit for bit. ONNX Runtime fuses an FP32 convolution with the residual Add reading it unless
/// the value between them is an output, and the fused kernel rounds differently (tapping it would unfuse the
/// FP32 model every op of the window reads: MobileNetV2's figures moved by up to 4e-3 of their value). So
/// a suffix never starts at a convolution's or matrix product's result ([`Cut::OutsideFloatFusions`]): an op
/// reading one runs from that product's input on. What remains is a residual block's FP32 convolution fused
/// with its Add in the whole model, not where the Add reads a suffix input: 15 of MobileNetV2's 64 figures
/// within 4e-5 of their value, the others equal (`prefix_cache` test). The search never reads these
/// figures; the `prefix_cache` lever off runs whole models.
struct OpSuffixes<'q, 'e> {
    quantized: &'q QuantizedModel,
    evaluator: &'e Evaluator<'e>,
    form: ModelForm,
    /// Every op reverted: the FP32 model in the form the ops' models are built in.
    base: ModelProto,
    indices: &'e [usize],
    /// Ops whose suffixes are held at once.
    window: usize,
}

impl<'q, 'e> OpSuffixes<'q, 'e> {
    /// Set up with the FP32 model built in `form`, when windows of more than one op's models fit in
    /// [`CONCURRENT_OP_MODELS_BYTES`] (`None`: a model that large runs its ops' models whole, one at a time).
    fn new(
        quantized: &'q QuantizedModel,
        evaluator: &'e Evaluator<'e>,
        form: ModelForm,
        indices: &'e [usize],
    ) -> Result<Option<Self>> {
        let window = CONCURRENT_OP_MODELS_BYTES / quantized.weight_bytes().max(1);
        if window < 2 {
            return Ok(None);
        }
        let every_op: BTreeSet<String> = (quantized.placement().nodes.iter())
            .map(|n| n.name.clone())
            .collect();
        let base = quantized.build(&every_op, RestoreMode::ActivationsAndWeights, form)?;
        Ok(Some(OpSuffixes {
            quantized,
            evaluator,
            form,
            base,
            indices,
            window,
        }))
    }

    /// The output NMSE of each op's model, a window of ops at a time.
    fn all_errors(
        &self,
        ops: &[&str],
        whole: &(dyn Fn(BTreeSet<String>) -> Result<f64> + Sync),
    ) -> Result<Vec<f64>> {
        let mut errors = Vec::with_capacity(ops.len());
        for window in ops.chunks(self.window) {
            errors.extend(self.errors(ops, window, whole)?);
        }
        Ok(errors)
    }

    /// The output NMSE of the model with only `op` quantized, for each op of `window`: from its suffix, or
    /// `whole(every other op of ops)` where it has none.
    fn errors(
        &self,
        ops: &[&str],
        window: &[&str],
        whole: &(dyn Fn(BTreeSet<String>) -> Result<f64> + Sync),
    ) -> Result<Vec<f64>> {
        let all_but = |op: &str| all_but(ops, op);
        let suffixes = window
            .par_iter()
            .map(|op| {
                let model = self.quantized.build(
                    &all_but(op),
                    RestoreMode::ActivationsAndWeights,
                    self.form,
                )?;
                Ok(changed_suffix(&self.base, &model, Cut::OutsideFloatFusions))
            })
            .collect::<Result<Vec<Option<Suffix>>>>()?;
        let taps: Vec<String> = suffixes
            .iter()
            .flatten()
            .flat_map(|s| s.boundary.iter().cloned())
            .collect::<BTreeSet<String>>()
            .into_iter()
            .collect();
        let tapped = self.tap(&taps)?;
        let references = self.evaluator.references(self.indices)?;
        window
            .par_iter()
            .zip(suffixes)
            .map(|(op, suffix)| match suffix {
                Some(suffix) => self.suffix_error(&suffix, &taps, &tapped, &references),
                None => whole(all_but(op)),
            })
            .collect()
    }

    /// Each sample's annotation and the values `taps` of the FP32 model on it (the model cut after the last).
    fn tap(&self, taps: &[String]) -> Result<Vec<(Annotation, Vec<Tensor>)>> {
        if taps.is_empty() {
            return Ok(Vec::new());
        }
        let model = prefix(self.base.clone(), taps);
        let outputs = model.graph.as_ref().map_or(0, |g| g.output.len());
        let session = self.evaluator.prepare(&model, taps)?;
        let binding = InputBinding::from_model(&model)?;
        let mut tapped = Vec::with_capacity(self.indices.len());
        run_batches(
            session.as_ref(),
            &binding,
            self.evaluator.dataset(),
            self.indices,
            1,
            &NoProgress,
            // Batches of one sample: the outputs are that sample's values whatever their shape.
            |_, mut values, annotations| {
                let annotation = annotations.into_iter().next().unwrap_or(Annotation::None);
                tapped.push((annotation, values.split_off(outputs)));
                Ok(Flow::Continue)
            },
        )?;
        Ok(tapped)
    }

    /// The metric of `suffix` run on each sample's tapped values.
    fn suffix_error(
        &self,
        suffix: &Suffix,
        taps: &[String],
        tapped: &[(Annotation, Vec<Tensor>)],
        references: &[Arc<Vec<Tensor>>],
    ) -> Result<f64> {
        let at: Vec<usize> = (suffix.boundary.iter())
            .map(|b| {
                taps.binary_search(b)
                    .expect("every boundary value is tapped")
            })
            .collect();
        let inputs =
            |values: &[Tensor]| -> Vec<Tensor> { at.iter().map(|&t| values[t].clone()).collect() };
        let first = tapped.first().map(|(_, v)| inputs(v)).unwrap_or_default();
        let session = self.evaluator.prepare(&suffix.model_for(&first)?, &[])?;
        let values = (self.indices.iter().zip(tapped).zip(references))
            .map(|((&index, (annotation, values)), reference)| {
                let outputs = session.run(inputs(values))?;
                self.evaluator
                    .sample_value(0, index, &outputs, annotation, Some(reference))
            })
            .collect::<Result<Vec<f64>>>()?;
        aggregate(self.evaluator.metrics()[0], &values)
    }
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
        samples => analyze(
            quantized,
            backend,
            calibration,
            samples,
            options.batch_size,
            options.levers.prefix_cache,
        )
        .map(Some),
    }
}
