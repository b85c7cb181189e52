//! Saturation analysis: which int8 layers overflow on x86 CPUs without VNNI, computed on any CPU.
//!
//! # Why
//! Without VNNI (AVX2, AVX-512 without VNNI: Intel before Cascade Lake, AMD Zen 2/3, many cloud VMs), x86 int8
//! kernels multiply u8 activations by s8 weights with `vpmaddubsw`, which adds each pair of adjacent products
//! in **saturating int16**, then widens to int32 (`vpmaddwd` by 1, `vpaddd`). A pair such as 255·127 + 255·127
//! = 64770 is clamped to 32767. CPUs with VNNI (`vpdpbusd`, AVX-512 VNNI, AVX-VNNI, AMX) add in int32 and never
//! saturate, so a model tested on one may fail on the other: aquant's full-range MobileNetV2 scores 0.70 top-1
//! in ONNX Runtime on an AVX2 EPYC and 0.82 with VNNI (`assets/saturation/`). OpenVINO's documentation says
//! the only way to detect it is to run on both kinds of CPU; this module computes it instead, exactly, from
//! the integer codes the kernel would multiply.
//!
//! # What is modelled (read from ONNX Runtime's MLAS source, 1.2x–1.3x)
//! - **Which operand is what.** Activations are u8, weights s8 (`QgemmU8S8KernelAvx2`,
//!   `ConvSymKernelAvx2.S`). On x86 ONNX Runtime does not run int8 activations (`QDQIsInt8Allowed()` is false
//!   except on ARM): `QDQS8ToU8Transformer` rewrites each int8 Q→DQ pair to uint8 with zero point + 128, so a
//!   signed code `q` reaches the kernel as `q + 128`. A signed activation near zero is therefore a *large* u8
//!   code (≈ 128): that is why normalised images saturate the first layer. Zero points are folded after the
//!   product (`MlasGemm` row/column sums, `column_sums_` in `qlinearconv.cc`), so the raw codes are what
//!   `vpmaddubsw` sees.
//! - **Which products are paired.** `vpmaddubsw` pairs bytes 2j and 2j + 1 of 4-byte groups along the
//!   reduction axis K. For Conv, ONNX Runtime transposes to NHWC and orders K as (kh, kw, cin): the im2col
//!   GEMM path (`MlasGemm`, `PackedK = 4`, K blocks of 128/256, so pairs stay (2j, 2j + 1) of the whole
//!   axis, zero-padded at the end) and the symmetric-conv path (`MlasConvSym`, taken on AVX2 when cin % 4 == 0
//!   and cout % 8 == 0; weights packed per kernel position in blocks of 4 input channels) agree on this pairing.
//!   MatMul/Gemm reduce along the activation's last axis. Padding of convolutions is the (shifted) zero point.
//! - **What does not saturate.** Depthwise convolutions (`MlasConvSymDepthwiseKernelAvx2` widens both
//!   operands to 32 bits before `vpmaddwd`) and anything not run by a u8×s8 kernel (16-bit quantizers).
//!
//! Not modelled: whether ONNX Runtime fuses a given layer into an int8 kernel at all (a Conv whose output is
//! not quantized, e.g. MobileNetV2's projection convs that feed a float residual Add, stays a float Conv), and
//! the GEMV kernel used for a single row (assumed to pair like the GEMM kernel). Both can only make the
//! analysis flag a layer that is in fact safe, never miss one.
//!
//! # What is measured
//! Per layer, on calibration samples: the output values whose sum includes at least one saturated pair
//! (`rate`), and the fraction of saturated pair sums. Without data, the weights alone bound the risk: only a
//! same-sign pair with |w0| + |w1| ≥ 129 can reach 32768 (255 · 129); half-range weights (|w| ≤ 64, the overflow
//! fix) never can. A layer is **at risk** when its rate exceeds [`AT_RISK_RATE`].
//!
//! Everything is integer arithmetic on codes, so the result is deterministic and the same on every CPU.

mod conv;
mod kernel;
mod layers;
mod sources;

use std::collections::BTreeSet;

use rayon::prelude::*;
use serde::Serialize;

pub use kernel::{Counts, StaticRisk};
pub use layers::KernelPath;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::progress::NoProgress;
use crate::quantize::{ModelForm, QuantizedModel};
use crate::runner::{run_batches, Flow, InputBinding};
use layers::Layer;

/// A layer whose rate (fraction of output values touched by a saturated pair) exceeds this is at risk:
/// `--overflow-fix auto` (the default for ONNX Runtime deployment) halves it and reports list it. Chosen from
/// measurements with ONNX Runtime on a real AVX2 CPU without VNNI (AMD EPYC Zen 2, 2026-12-05) on the placement
/// ONNX Runtime fuses end to end: MobileNetV2's expand convs saturate on 0.2–2.5 % of their outputs, and once
/// every Conv and residual Add runs as an integer kernel those clipped sums travel down the int8 chain and cost
/// 5 of 300 predictions (0.8100 vs 0.8267 computed exactly); halving the 19 layers above 0.1 % gives 0.8233 on
/// that CPU and 0.8200 computed exactly, EfficientNet-Lite0 0.7567 on both (0.7267 without VNNI with the first
/// layer alone). It is a rate, not an accuracy: it also halves layers whose clipped sums change no prediction
/// (all five of the MNIST CNN). Rates depend on the calibration (a smaller set gives narrower ranges, hence
/// larger codes).
pub const AT_RISK_RATE: f64 = 0.001;

/// The kernel this analysis models, for reports.
pub const KERNEL: &str =
    "ONNX Runtime MLAS u8s8 on x86 without VNNI (vpmaddubsw: adjacent products added in saturating int16)";

/// Saturation of one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSaturation {
    /// Node name.
    pub node: String,
    /// ONNX op type.
    pub op_type: String,
    /// The kernel that computes it.
    pub kernel: KernelPath,
    /// Whether the activation is int8, which reaches the kernel shifted by 128.
    pub signed_activation: bool,
    /// What the weights alone allow.
    pub weights: StaticRisk,
    /// What the samples did (absent without data).
    pub measured: Option<Counts>,
}

impl LayerSaturation {
    /// Fraction of output values touched by saturation on the samples (0 for layers that cannot saturate).
    pub fn rate(&self) -> Option<f64> {
        self.measured.map(|c| c.output_rate())
    }

    /// Whether the weights allow saturation at all on this kernel.
    pub fn can_saturate(&self) -> bool {
        self.kernel == KernelPath::PairwiseInt16 && self.weights.risky_pairs > 0
    }

    /// At risk: measured rate above `threshold`, or (without data) weights that can saturate.
    pub fn at_risk(&self, threshold: f64) -> bool {
        match self.rate() {
            Some(rate) => rate > threshold,
            None => self.can_saturate(),
        }
    }
}

/// The analysis of a model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SaturationReport {
    /// What is modelled ([`KERNEL`]).
    pub kernel: String,
    /// The rate above which a layer is at risk.
    pub threshold: f64,
    /// Samples measured (0: weights only).
    pub samples: usize,
    /// Every int8 Conv/MatMul/Gemm, in graph order.
    pub layers: Vec<LayerSaturation>,
}

impl SaturationReport {
    /// The layers at risk.
    pub fn at_risk(&self) -> impl Iterator<Item = &LayerSaturation> {
        self.layers.iter().filter(|l| l.at_risk(self.threshold))
    }

    /// Names of the layers at risk.
    pub fn at_risk_names(&self) -> BTreeSet<String> {
        self.at_risk().map(|l| l.node.clone()).collect()
    }

    /// The compact form for report.json: the layers at risk with their rate, then every layer's rate (for the
    /// report's chart).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "kernel": self.kernel,
            "threshold": self.threshold,
            "samples": self.samples,
            "layers_at_risk": self.at_risk().map(|l| serde_json::json!({
                "node": l.node,
                "op_type": l.op_type,
                "rate": l.rate(),
                "pair_rate": l.measured.map(|c| c.pair_rate()),
                "risky_weight_pairs": l.weights.risky_pairs,
            })).collect::<Vec<_>>(),
            "layers": self.layers.iter().map(|l| serde_json::json!({
                "node": l.node,
                "op_type": l.op_type,
                "rate": l.rate(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Analyses a quantized model (every op quantized, as built for export) on the first `samples` samples of
/// `data`; `samples == 0` gives the weights-only analysis.
pub fn analyze(
    quantized: &QuantizedModel,
    backend: &dyn Backend,
    data: &dyn Dataset,
    samples: usize,
    batch_size: usize,
) -> Result<SaturationReport> {
    let form = ModelForm::evaluated_on(backend, true);
    let model = quantized.build(&BTreeSet::new(), Default::default(), form)?;
    let graph = Graph::new(model)?;
    // The int8 Q/DQ model where the engine runs Q/DQ natively: its weights as int8 codes, where the
    // evaluation form's fake-quantized copy is FP32, held twice (built, and packed by the engine; issue #27).
    let layers = match form {
        ModelForm::Evaluation => sources::from_quantized(quantized)?,
        _ => sources::from_qdq(&graph)?,
    };
    measure(&graph, layers, backend, Some(data), samples, batch_size)
}

/// Analyses a QDQ model (any producer's: Conv/MatMul/Gemm whose input and weight come from
/// `DequantizeLinear`); with `data`, on its first `samples` samples.
pub fn analyze_qdq(
    graph: &Graph,
    backend: &dyn Backend,
    data: Option<&dyn Dataset>,
    samples: usize,
    batch_size: usize,
) -> Result<SaturationReport> {
    let layers = sources::from_qdq(graph)?;
    measure(graph, layers, backend, data, samples, batch_size)
}

/// The weights-only analysis of a QDQ model (no engine needed).
pub fn analyze_qdq_weights(graph: &Graph) -> Result<SaturationReport> {
    Ok(report(sources::from_qdq(graph)?, None, 0))
}

fn measure(
    graph: &Graph,
    layers: Vec<Layer>,
    backend: &dyn Backend,
    data: Option<&dyn Dataset>,
    samples: usize,
    batch_size: usize,
) -> Result<SaturationReport> {
    let Some(data) = data.filter(|d| samples > 0 && !d.is_empty()) else {
        return Ok(report(layers, None, 0));
    };
    let indices: Vec<usize> = (0..samples.min(data.len())).collect();
    let stored = backend.keeps_quantized_values_when_tapped();
    // Only layers some pair of which can saturate need their input observed.
    let observed: Vec<String> = layers
        .iter()
        .filter(|l| l.needs_data())
        .map(|l| l.tapped(stored).to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut counts = vec![Counts::default(); layers.len()];
    if !observed.is_empty() {
        let session = backend.prepare_for_few_runs(graph.model(), &observed)?;
        let binding = InputBinding::new(graph)?;
        let outputs = graph.outputs().len();
        run_batches(
            session.as_ref(),
            &binding,
            data,
            &indices,
            batch_size,
            &NoProgress,
            |_, tensors, _| {
                let extra = tensors.get(outputs..).unwrap_or(&[]);
                let batch = measure_batch(&layers, &observed, extra, stored, backend)?;
                for (total, c) in counts.iter_mut().zip(batch) {
                    total.add(c);
                }
                Ok(Flow::Continue)
            },
        )?;
    }
    Ok(report(layers, Some(counts), indices.len()))
}

/// Counts saturation in every layer on one batch; `observed` names the `tensors` (the extra outputs), which
/// hold stored codes where `stored` says the engine keeps them.
fn measure_batch(
    layers: &[Layer],
    observed: &[String],
    tensors: &[crate::Tensor],
    stored: bool,
    backend: &dyn Backend,
) -> Result<Vec<Counts>> {
    layers
        .par_iter()
        .map(|layer| {
            if !layer.needs_data() {
                return Ok(Counts::default());
            }
            let tapped = layer.tapped(stored);
            let at = observed
                .iter()
                .position(|o| o == tapped)
                .expect("observed holds every measured layer's input");
            let x = tensors.get(at).ok_or_else(|| Error::Backend {
                backend: backend.name().to_string(),
                message: format!("no output '{tapped}'"),
            })?;
            layer.measure(x)
        })
        .collect()
}

fn report(layers: Vec<Layer>, counts: Option<Vec<Counts>>, samples: usize) -> SaturationReport {
    let layers = layers
        .into_iter()
        .enumerate()
        .map(|(i, l)| LayerSaturation {
            weights: if l.path == KernelPath::PairwiseInt16 {
                l.static_risk()
            } else {
                StaticRisk::default()
            },
            measured: counts.as_ref().map(|c| c[i]),
            node: l.node,
            op_type: l.op_type,
            kernel: l.path,
            signed_activation: l.act.signed,
        })
        .collect();
    SaturationReport {
        kernel: KERNEL.to_string(),
        threshold: AT_RISK_RATE,
        samples,
        layers,
    }
}
