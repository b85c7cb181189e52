//! The base algorithm: POT DefaultQuantization / NNCF `quantize`.
//!
//! Statistics collection is separate from applying the change, as in NNCF: `placement` decides which tensors
//! must be observed, `calibrate` observes them in one FP32 pass, and the parameters are
//! then computed and stored in a [`QuantizedModel`], from which the QDQ ONNX model is built.

mod bias;
mod calibrate;
mod footprint;
mod model;
mod overflow;
mod placement;
mod precision;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use aquant_onnx::{tensor, ModelProto};

pub use crate::numerics::{is_half_range, HALF_RANGE_HIGH, HALF_RANGE_LOW};
pub use crate::params::{
    ActivationsParams, Deploy, IgnoredScope, ModelType, OverflowFix, Precision, Preset,
    QuantizationParams, RestoreMode, TargetDevice, WeightsParams,
};
pub use aquant_onnx::opset::SIXTEEN_BIT_OPSET;
pub use calibrate::{calibration_indices, CalibrationStats, FP32Outputs};
pub use footprint::{ModelBytes, OpsByPrecision};
pub use model::{FittedQuantizers, ModelForm, QuantizedModel};
pub use placement::{place, ActivationQuantizer, ConstantSlot, Placement, QuantizedNode};
pub use precision::{device_precisions, widen, Precisions};

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::progress::Progress;
// `crate::quantize::params::…` paths of the files not moved yet (placement.rs) resolve through this.
use crate::numerics::{weight_range, Mode, QuantSpec, Quantizer};
use crate::params;

/// Timings and counts of one run of the base algorithm.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QuantizationSummary {
    /// Nodes that compute in INT8.
    pub quantized_ops: usize,
    /// Activation quantizers.
    pub activation_quantizers: usize,
    /// Layers whose bias fast bias correction changed.
    pub corrected_biases: usize,
    /// Calibration samples used.
    pub calibration_samples: usize,
    /// Seconds spent calibrating.
    pub calibration_seconds: f64,
    /// Seconds spent on bias correction.
    pub bias_correction_seconds: f64,
    /// Seconds of the saturation analysis `overflow_fix: auto` decides with (0 without it).
    pub overflow_analysis_seconds: f64,
    /// The overflow fix applied (NNCF `overflow_fix`, after NNCF's default).
    pub overflow_fix: OverflowFix,
    /// Nodes whose weights use half the int8 range ([-64, 63], scale doubled), in graph order.
    pub half_range_layers: Vec<String>,
    /// With `overflow_fix: auto`, the saturation analysis that chose them (full-range weights, calibration
    /// samples).
    pub saturation: Option<crate::saturation::SaturationReport>,
    /// The FP32 outputs seen during calibration, when small enough to keep (see [`CalibrationStats`]).
    #[serde(skip)]
    pub fp32_outputs: Option<FP32Outputs>,
}

/// Calibration samples `overflow_fix: auto` measures saturation on (at most; the first ones).
pub const AUTO_SAMPLES: usize = 64;

/// `model` at the opset `params` need: 16-bit QuantizeLinear/DequantizeLinear exist in the standard domain
/// from opset 21 only, so a model with a 16-bit quantizer is raised to 21 first (every node carried over
/// faithfully or the run refused, naming the op: see `aquant_onnx::opset`). The FP32 model the run compares
/// with and reverts to is then the raised one, which computes the same values.
fn with_opset_for(params: &QuantizationParams, mut model: ModelProto) -> Result<ModelProto> {
    if params.weights.bits == 16 || params.activations.bits == 16 {
        aquant_onnx::opset::upgrade(&mut model, SIXTEEN_BIT_OPSET)?;
    }
    Ok(model)
}

/// Quantizes `model` with statistics from `calibration`.
pub fn quantize(
    backend: &dyn Backend,
    model: ModelProto,
    calibration: &dyn Dataset,
    params: &QuantizationParams,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<(QuantizedModel, QuantizationSummary)> {
    params.validate()?;
    let graph = Graph::new(with_opset_for(params, model)?)?;
    let placement = place_some(&graph, params)?;
    let mut stats = calibrate::calibrate(
        backend,
        &graph,
        &placement,
        calibration,
        params,
        batch_size,
        progress,
    )?;
    let mut draft = Draft::fit(graph, placement, &stats, params)?;
    let fix = params.effective_overflow_fix();
    let (saturation, overflow_analysis_seconds) = if fix == OverflowFix::Auto {
        let start = Instant::now();
        let samples = AUTO_SAMPLES.min(stats.samples);
        let analysis = draft.saturation(backend, calibration, samples, batch_size)?;
        (Some(analysis), start.elapsed().as_secs_f64())
    } else {
        (None, 0.0)
    };
    let halved = draft.halve_weights(fix, saturation.as_ref());
    let start = Instant::now();
    let biases = if params.fast_bias_correction {
        draft.corrected_biases(backend, &stats)?
    } else {
        BTreeMap::new()
    };
    let summary = QuantizationSummary {
        quantized_ops: draft.placement.nodes.len(),
        activation_quantizers: draft.placement.activations.len(),
        corrected_biases: biases.len(),
        calibration_samples: stats.samples,
        calibration_seconds: stats.seconds,
        bias_correction_seconds: start.elapsed().as_secs_f64(),
        overflow_analysis_seconds,
        overflow_fix: fix,
        half_range_layers: in_graph_order(&draft.placement, &halved),
        saturation,
        fp32_outputs: stats.fp32_outputs.take(),
    };
    let model = draft.finish(biases)?.deployed_on(params.deploy_engine());
    Ok((model, summary))
}

/// Where the quantizers of `graph` go; an error when there is no op to quantize (the run would change nothing).
fn place_some(graph: &Graph, params: &QuantizationParams) -> Result<Placement> {
    let placement = place(graph, params)?;
    if placement.nodes.is_empty() {
        return Err(Error::InvalidModel(
            "nothing to quantize: no Conv, ConvTranspose, Gemm or MatMul with constant weights outside the ignored scope"
                .into(),
        ));
    }
    Ok(placement)
}

/// The model being quantized: the FP32 graph, where its quantizers go, and their parameters so far (the
/// biases, corrected last, are added by [`Draft::finish`]).
struct Draft {
    graph: Graph,
    placement: Placement,
    activations: BTreeMap<String, Quantizer>,
    weights: BTreeMap<String, Quantizer>,
}

impl Draft {
    /// The quantizers' parameters fitted to the calibrated ranges and to the weights, full range.
    fn fit(
        graph: Graph,
        placement: Placement,
        stats: &CalibrationStats,
        params: &QuantizationParams,
    ) -> Result<Draft> {
        let activations = activation_params(&placement, stats, params)?;
        let weights = weight_params(&graph, &placement, params)?;
        Ok(Draft {
            graph,
            placement,
            activations,
            weights,
        })
    }

    /// The saturation analysis `overflow_fix: auto` decides with, on the first `samples` calibration samples.
    fn saturation(
        &self,
        backend: &dyn Backend,
        calibration: &dyn Dataset,
        samples: usize,
        batch_size: usize,
    ) -> Result<crate::saturation::SaturationReport> {
        // Decide from the full-range model, on the calibration samples (before bias correction, which the
        // halving changes: it must see the final weights).
        let full = QuantizedModel::new(
            self.graph.clone(),
            self.placement.clone(),
            self.activations.clone(),
            self.weights.clone(),
            BTreeMap::new(),
        )?;
        crate::saturation::analyze(&full, backend, calibration, samples, batch_size)
    }

    /// Halves the weight range of the layers `fix` picks (with `auto`, those `saturation` found at risk);
    /// returns their names.
    fn halve_weights(
        &mut self,
        fix: OverflowFix,
        saturation: Option<&crate::saturation::SaturationReport>,
    ) -> BTreeSet<String> {
        let at_risk = saturation.map(|s| s.at_risk_names()).unwrap_or_default();
        let halved = overflow::halved_layers(&self.graph, &self.placement, fix, &at_risk);
        for name in &halved {
            if let Some(p) = self.weights.get_mut(name) {
                *p = crate::numerics::half_range(p);
            }
        }
        halved
    }

    /// Fast bias correction's new biases, from the mean inputs calibration collected.
    fn corrected_biases(
        &self,
        backend: &dyn Backend,
        stats: &CalibrationStats,
    ) -> Result<BTreeMap<String, Vec<f32>>> {
        bias::fast_bias_correction(
            backend,
            &self.graph,
            &self.placement,
            &self.activations,
            &self.weights,
            &stats.mean_inputs,
        )
    }

    /// The quantized model, with the corrected `biases`.
    fn finish(self, biases: BTreeMap<String, Vec<f32>>) -> Result<QuantizedModel> {
        QuantizedModel::new(
            self.graph,
            self.placement,
            self.activations,
            self.weights,
            biases,
        )
    }
}

/// The quantized model of `model` with parameters calibrated earlier (placement is recomputed: it depends
/// only on the model and `params`).
pub fn from_calibration(
    model: ModelProto,
    params: &QuantizationParams,
    calibration: FittedQuantizers,
) -> Result<QuantizedModel> {
    params.validate()?;
    let graph = Graph::new(with_opset_for(params, model)?)?;
    let placement = place(&graph, params)?;
    Ok(QuantizedModel::new(
        graph,
        placement,
        calibration.activations,
        calibration.weights,
        calibration.biases,
    )?
    .deployed_on(params.deploy_engine()))
}

/// The placed ops named in `names`, in graph order (the report lists layers as the model does).
fn in_graph_order(placement: &Placement, names: &BTreeSet<String>) -> Vec<String> {
    placement
        .nodes
        .iter()
        .filter(|n| names.contains(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

/// Activation quantizer parameters from the calibrated ranges. In symmetric mode a tensor that is never
/// negative (after ReLU, ReLU6…) is quantized unsigned, doubling its resolution, as POT's performance preset does.
fn activation_params(
    placement: &Placement,
    stats: &CalibrationStats,
    params: &QuantizationParams,
) -> Result<BTreeMap<String, Quantizer>> {
    let mode = params.activation_mode();
    placement
        .activations
        .iter()
        .map(|q| {
            let (min, max) = stats.ranges[&q.tensor];
            let signed = mode == Mode::Symmetric && min < 0.0;
            let spec = QuantSpec::new(params.activations.bits, mode, signed, false)?;
            let p = Quantizer::from_range(&spec, &[min], &[max], None)
                .map_err(|e| Error::data(format!("activation '{}': {e}", q.tensor)))?;
            Ok((q.tensor.clone(), p))
        })
        .collect()
}

fn weight_params(
    graph: &Graph,
    placement: &Placement,
    params: &QuantizationParams,
) -> Result<BTreeMap<String, Quantizer>> {
    let w = &params.weights;
    let spec =
        QuantSpec::new(w.bits, w.mode, true, true)?.with_levels(w.level_low, w.level_high)?;
    placement
        .nodes
        .iter()
        .filter_map(|n| n.weight.as_ref().map(|slot| (n, slot)))
        .map(|(node, slot)| {
            let initializer = graph
                .initializer(&slot.initializer)
                .expect("placement checked it");
            let dims = tensor::dims(initializer)?;
            let values = tensor::to_f32(initializer)?;
            let (min, max) = weight_range(&values, &dims, node.weight_axis)?;
            let p = Quantizer::from_range(&spec, &min, &max, node.weight_axis).map_err(|e| {
                Error::data(format!(
                    "weight '{}' of node '{}': {e}",
                    slot.initializer, node.name
                ))
            })?;
            Ok((node.name.clone(), p))
        })
        .collect()
}

#[cfg(test)]
mod tests;
