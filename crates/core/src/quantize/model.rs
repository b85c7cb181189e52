//! A quantized model as data: the FP32 graph plus every quantizer's parameters.
//!
//! The INT8 ONNX model is never edited in place. It is *built* from the FP32 graph, the placement and the
//! parameters, for a given set of nodes left in FP32. That makes reverting a group during accuracy control a
//! set operation, restores a reverted layer's original weights and bias exactly (bias correction lives here,
//! not in the graph), and lets the same state produce two numerically identical forms: the deployable QDQ
//! model (int8 weights behind `DequantizeLinear`) and a cheaper evaluation model (weights fake-quantized into
//! FP32 initializers, which spares the engine per-axis constant folding on every candidate).

mod fusion;
mod kernels;
mod qdq;
mod stored;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aquant_onnx::{tensor, ModelProto};

use crate::error::{Error, Result};
use crate::graph::{Edit, Graph, Patch};
use crate::numerics::Quantizer;
use crate::params::{Precision, RestoreMode};
use crate::quantize::placement::{ActivationQuantizer, ConstantSlot, Placement, QuantizedNode};
use crate::quantize::precision::{widen, Precisions};
use crate::quantize::Deploy;
use stored::StoredWeights;

/// Every quantizer fitted by calibration, and the biases bias correction found: with the FP32 model and the
/// placement, everything a [`QuantizedModel`] is. (Named apart from the calibration *dataset*.)
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FittedQuantizers {
    /// Activation quantizers, by tensor.
    pub activations: BTreeMap<String, Quantizer>,
    /// Weight quantizers, by node.
    pub weights: BTreeMap<String, Quantizer>,
    /// Corrected FP32 biases, by node.
    pub biases: BTreeMap<String, Vec<f32>>,
}

impl FittedQuantizers {
    /// A stable fingerprint (FNV-1a of the JSON form): tells quantized models apart in a run's journal.
    pub fn fingerprint(&self) -> u64 {
        let json = serde_json::to_vec(self).unwrap_or_default();
        json.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
            (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

/// Which form of the quantized model to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelForm {
    /// The deployable QDQ model. `compress_weights`: int8 weight initializers behind `DequantizeLinear`
    /// (POT's `compress_model_weights`); otherwise FP32 weights behind `QuantizeLinear`/`DequantizeLinear`.
    Export {
        /// Store weights as int8.
        compress_weights: bool,
    },
    /// For evaluation: the same numbers, with weights and biases fake-quantized into FP32 initializers.
    Evaluation,
}

impl ModelForm {
    /// The form `engine` evaluates a candidate in: the deployable Q/DQ model where it runs Q/DQ natively (it
    /// fuses it into its int8 kernels, as deployed, and holds int8 weights), else the evaluation form.
    pub fn evaluated_on(engine: &dyn crate::Backend, compress_weights: bool) -> ModelForm {
        match engine.runs_qdq_natively() {
            true => ModelForm::Export { compress_weights },
            false => ModelForm::Evaluation,
        }
    }
}

/// The FP32 model with everything needed to build its quantized forms.
#[derive(Debug, Clone)]
pub struct QuantizedModel {
    fp32: Graph,
    placement: Placement,
    activations: BTreeMap<String, Quantizer>,
    weights: BTreeMap<String, Quantizer>,
    biases: BTreeMap<String, Vec<f32>>,
    deploy: Deploy,
    /// Ops that quantize their input at run time (the ladder's `dynamic` step) instead of with its calibrated
    /// quantizer, which their tensor keeps for its other readers.
    dynamic: BTreeSet<String>,
    /// The integer weights built so far, shared by every model built from this one (and its clones).
    stored: StoredWeights,
}

impl QuantizedModel {
    /// The calibrated parameters (to store, or to rebuild the model with [`QuantizedModel::new`]).
    pub fn calibration(&self) -> FittedQuantizers {
        FittedQuantizers {
            activations: self.activations.clone(),
            weights: self.weights.clone(),
            biases: self.biases.clone(),
        }
    }

    /// Bytes of the FP32 model's initializers (weights, mostly): what each prepared copy of it costs.
    pub fn weight_bytes(&self) -> usize {
        self.fp32
            .model()
            .graph
            .as_ref()
            .map_or(0, |g| g.initializer.iter().map(initializer_bytes).sum())
    }

    /// Bytes of the initializers of the fully quantized model built in `form`: each quantized weight as its
    /// integer codes where `form` stores them so (int8: a quarter of its FP32 bytes), every other initializer
    /// as in the FP32 model. What a prepared copy of a candidate costs, give or take its reverted ops.
    pub fn weight_bytes_in(&self, form: ModelForm) -> usize {
        let ModelForm::Export {
            compress_weights: true,
        } = form
        else {
            return self.weight_bytes();
        };
        let codes: BTreeMap<&str, u8> = (self.placement.nodes.iter())
            .filter_map(|n| Some((n.weight.as_ref()?, self.weights.get(&n.name)?)))
            .map(|(slot, quantizer)| (slot.initializer.as_str(), quantizer.bits))
            .collect();
        self.fp32.model().graph.as_ref().map_or(0, |g| {
            (g.initializer.iter())
                .map(|t| {
                    let bytes = initializer_bytes(t);
                    match codes.get(t.name.as_deref().unwrap_or("")) {
                        Some(&bits) => bytes * usize::from(bits.div_ceil(8)) / 4,
                        None => bytes,
                    }
                })
                .sum()
        })
    }

    /// Assembles a quantized model. `activations` is keyed by tensor, `weights` and `biases` (corrected FP32
    /// biases; absent = the original bias) by node.
    pub fn new(
        fp32: Graph,
        placement: Placement,
        activations: BTreeMap<String, Quantizer>,
        weights: BTreeMap<String, Quantizer>,
        biases: BTreeMap<String, Vec<f32>>,
    ) -> Result<Self> {
        for q in &placement.activations {
            if !activations.contains_key(&q.tensor) {
                return Err(Error::InvalidModel(format!(
                    "no parameters for quantized tensor '{}'",
                    q.tensor
                )));
            }
        }
        for n in placement.nodes.iter().filter(|n| n.weight.is_some()) {
            if !weights.contains_key(&n.name) {
                return Err(Error::InvalidModel(format!(
                    "no weight parameters for node '{}'",
                    n.name
                )));
            }
        }
        Ok(QuantizedModel {
            fp32,
            placement,
            activations,
            weights,
            biases,
            deploy: Deploy::Ort,
            dynamic: BTreeSet::new(),
            stored: StoredWeights::default(),
        })
    }

    /// This model for `deploy` (ONNX Runtime when not said): the engine decides how the export form stores
    /// activation integers (`qdq::activation_storage`).
    pub fn deployed_on(self, deploy: Deploy) -> Self {
        QuantizedModel { deploy, ..self }
    }

    /// The FP32 model.
    pub fn fp32(&self) -> &Graph {
        &self.fp32
    }

    /// Where the quantizers are.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Parameters of the activation quantizer on `tensor`.
    pub fn activation_params(&self, tensor: &str) -> Option<&Quantizer> {
        self.activations.get(tensor)
    }

    /// Parameters of the weight quantizer of node `node`.
    pub fn weight_params(&self, node: &str) -> Option<&Quantizer> {
        self.weights.get(node)
    }

    /// Nodes whose weights use half the int8 range (the overflow fix), in graph order.
    pub fn half_range_layers(&self) -> Vec<String> {
        self.placement
            .nodes
            .iter()
            .filter(|n| {
                self.weights
                    .get(&n.name)
                    .is_some_and(crate::quantize::is_half_range)
            })
            .map(|n| n.name.clone())
            .collect()
    }

    /// Builds the model with each op at its precision in `precisions` (absent: as quantized): FP32 ops are
    /// reverted as [`QuantizedModel::build`] reverts them, 16-bit ones get widened quantizers
    /// ([`widen`](super::precision::widen)), dynamic ones quantize their input at run time. The export form
    /// of a model with any 16-bit quantizer is raised to opset
    /// [`SIXTEEN_BIT_OPSET`](aquant_onnx::opset::SIXTEEN_BIT_OPSET), the first whose standard Q/DQ take 16
    /// bits; a model with a dynamic op to `DYNAMIC_OPSET` in both forms, the first with
    /// `DynamicQuantizeLinear`.
    pub fn build_with(
        &self,
        precisions: &Precisions,
        mode: RestoreMode,
        form: ModelForm,
    ) -> Result<ModelProto> {
        let reverted: BTreeSet<String> = precisions
            .iter()
            .filter(|(_, p)| **p == Precision::Fp32)
            .map(|(op, _)| op.clone())
            .collect();
        if !precisions.values().any(|p| p.is_kept_quantized()) {
            return self.build(&reverted, mode, form);
        }
        let widened = self.widened(precisions)?;
        let mut model = widened.build(&reverted, mode, form)?;
        if !widened.dynamic.is_empty() {
            aquant_onnx::opset::upgrade(&mut model, DYNAMIC_OPSET)?;
        }
        if matches!(form, ModelForm::Export { .. })
            && precisions.values().any(|p| p.is_sixteen_bit())
        {
            aquant_onnx::opset::upgrade(&mut model, aquant_onnx::opset::SIXTEEN_BIT_OPSET)?;
        }
        Ok(model)
    }

    /// This model with the quantizers of the 16-bit ops in `precisions` widened: an op's weights by its own
    /// precision, an activation quantizer by its readers' (one group, hence one precision; FP32 readers
    /// ignored).
    fn widened(&self, precisions: &Precisions) -> Result<QuantizedModel> {
        let mut model = self.clone();
        for (op, precision) in precisions {
            if let (Some(bits), Some(q)) = (precision.weight_bits(), model.weights.get_mut(op)) {
                *q = widen(q, bits)?;
            }
        }
        for quantizer in &self.placement.activations {
            let bits = quantizer
                .consumers
                .iter()
                .filter_map(|c| precisions.get(c).and_then(|p| p.activation_bits()))
                .max();
            if let (Some(bits), Some(q)) = (bits, model.activations.get_mut(&quantizer.tensor)) {
                *q = widen(q, bits)?;
            }
        }
        model.dynamic = self
            .placement
            .nodes
            .iter()
            .filter(|n| precisions.get(&n.name) == Some(&Precision::Dynamic))
            .filter(|n| n.can_quantize_input_at_run_time())
            .map(|n| n.name.clone())
            .collect();
        Ok(model)
    }

    /// Builds the model with every placed node quantized except those in `reverted`, which `mode` returns
    /// wholly or partly to FP32.
    pub fn build(
        &self,
        reverted: &BTreeSet<String>,
        mode: RestoreMode,
        form: ModelForm,
    ) -> Result<ModelProto> {
        let fp32_nodes = reverted;
        let mut patch = Patch::new("quantize");
        let mut replaced: HashSet<String> = HashSet::new();
        for quantizer in &self.placement.activations {
            let (at_run_time, calibrated): (Vec<&String>, Vec<&String>) = quantizer
                .consumers
                .iter()
                .filter(|c| !fp32_nodes.contains(*c))
                .partition(|c| self.dynamic.contains(*c));
            if !calibrated.is_empty() {
                if let Some(dequantized) =
                    self.activation_quantizer(&mut patch, quantizer, form, fp32_nodes)
                {
                    self.read_from(&mut patch, &quantizer.tensor, &calibrated, &dequantized);
                }
            }
            if !at_run_time.is_empty() {
                let dequantized = qdq::run_time_quantizer(&mut patch, &quantizer.tensor, form);
                self.read_from(&mut patch, &quantizer.tensor, &at_run_time, &dequantized);
            }
        }
        for node in &self.placement.nodes {
            let weights_only = match (fp32_nodes.contains(&node.name), mode) {
                (false, _) => false,
                (true, RestoreMode::OnlyActivations) => true,
                (true, RestoreMode::ActivationsAndWeights) => continue,
            };
            self.quantize_constants(&mut patch, node, form, weights_only, &mut replaced)?;
        }
        let mut graph = remove_unused(self.fp32.clone().patched(&patch)?, &replaced)?;
        if form == ModelForm::Evaluation {
            graph = kernels::spell_integer_kernels(self, graph, fp32_nodes)?;
        }
        Ok(graph.into_model())
    }

    /// Makes `consumers` read `dequantized` where they read `tensor`.
    fn read_from(&self, patch: &mut Patch, tensor: &str, consumers: &[&String], dequantized: &str) {
        for consumer in consumers {
            let node = self
                .placement
                .node(consumer)
                .expect("consumers are placed nodes");
            for (input, read) in &node.activations {
                if read == tensor {
                    patch.push(Edit::SetInput {
                        node: node.name.clone(),
                        index: *input,
                        value: dequantized.to_string(),
                    });
                }
            }
        }
    }

    /// How many placed ops the deployed engine runs in INT8 when the ops of `reverted` stay out of it. On
    /// ONNX Runtime, the integer kernels of the `fusion` module's model: a revert costs its own kernels and those of
    /// the neighbours whose int8 chain it breaks (a Conv whose output no longer reaches a quantizer stays in
    /// float). OpenVINO's low-precision transformations are not modelled: every op left quantized counts.
    pub fn integer_kernels(&self, reverted: &BTreeSet<String>) -> usize {
        let opset = aquant_onnx::default_opset(self.fp32.model());
        let in_int8 = |node: &&QuantizedNode| match self.deploy {
            Deploy::Ort => fusion::integer_kernel(self, node, reverted, opset).is_some(),
            Deploy::Openvino => !reverted.contains(&node.name),
        };
        self.placement.nodes.iter().filter(in_int8).count()
    }

    /// Adds the quantizer of an activation in `form` and returns the tensor its consumers read instead, or
    /// `None` when the export moved it before the tensor's producer ([`fusion::Lift::Before`]): the consumers
    /// then read the tensor itself, computed from quantized values.
    fn activation_quantizer(
        &self,
        patch: &mut Patch,
        quantizer: &ActivationQuantizer,
        form: ModelForm,
        reverted: &BTreeSet<String>,
    ) -> Option<String> {
        let (tensor, params) = (&quantizer.tensor, &self.activations[&quantizer.tensor]);
        if form == ModelForm::Evaluation {
            return Some(qdq::activation_fake_quant(patch, tensor, params));
        }
        if let Some(lifted) = fusion::export_lift(self, quantizer, reverted) {
            let value = qdq::activation_qdq(patch, &lifted.input, params, self.deploy);
            patch.push(Edit::SetInput {
                node: lifted.producer,
                index: 0,
                value,
            });
            if lifted.lift == fusion::Lift::Before {
                return None;
            }
        }
        Some(qdq::activation_qdq(patch, tensor, params, self.deploy))
    }

    /// Quantizes `node`'s weight (and, unless `weights_only`, its bias) in `form`; the FP32 initializers they
    /// replace go to `replaced`.
    fn quantize_constants(
        &self,
        patch: &mut Patch,
        node: &QuantizedNode,
        form: ModelForm,
        weights_only: bool,
        replaced: &mut HashSet<String>,
    ) -> Result<()> {
        let Some(weight) = &node.weight else {
            return Ok(());
        };
        let value = self.quantized_weight(patch, node, weight, form)?;
        patch.push(Edit::SetInput {
            node: node.name.clone(),
            index: weight.input,
            value,
        });
        replaced.insert(weight.initializer.clone());
        // Without a quantized input there is no accumulator scale: a weights-only op keeps its FP32 bias.
        if let Some(bias) = node.bias.as_ref().filter(|_| !weights_only) {
            self.quantize_bias(patch, node, bias, form)?;
            replaced.insert(bias.initializer.clone());
        }
        Ok(())
    }

    /// Adds `node`'s quantized weight in `form` and returns the tensor the node reads instead.
    fn quantized_weight(
        &self,
        patch: &mut Patch,
        node: &QuantizedNode,
        weight: &ConstantSlot,
        form: ModelForm,
    ) -> Result<String> {
        let initializer = self
            .fp32
            .initializer(&weight.initializer)
            .expect("placement checked it");
        let dims = tensor::dims(initializer)?;
        let params = &self.weights[&node.name];
        let prefix = format!("{}.weight", node.name);
        let ModelForm::Export { compress_weights } = form else {
            let mut values = tensor::to_f32(initializer)?;
            params.fake_quantize_tensor(&mut values, &dims)?;
            let name = format!("{prefix}_fake_quantized");
            patch.push(Edit::AddInitializer(tensor::from_f32(
                &name, &dims, &values,
            )));
            return Ok(name);
        };
        let (scale, zero_point) = qdq::scale_and_zero_point(patch, &prefix, params);
        let source = format!("{prefix}_quantized");
        if compress_weights {
            let storage = qdq::storage_type(params);
            let raw = self.stored.get_or_compute(&node.name, params, || {
                let q = params.quantize_tensor(&tensor::to_f32(initializer)?, &dims)?;
                Ok(tensor::quantized_bytes(storage, &q))
            })?;
            patch.push(Edit::AddInitializer(tensor::from_bytes(
                &source, &dims, storage, raw,
            )));
        } else {
            patch.push(Edit::AddNode(qdq::qdq_node(
                "QuantizeLinear",
                &format!("{prefix}_QuantizeLinear"),
                &[&weight.initializer, &scale, &zero_point],
                &source,
                params.axis,
            )));
        }
        let name = format!("{prefix}_dequantized");
        patch.push(Edit::AddNode(qdq::qdq_node(
            "DequantizeLinear",
            &format!("{prefix}_DequantizeLinear"),
            &[&source, &scale, &zero_point],
            &name,
            params.axis,
        )));
        Ok(name)
    }

    /// Re-expresses the (corrected) bias in the accumulator's scale `s_x · s_w[c]` as int32, which is what
    /// runtimes expect to fuse `Conv`/`Gemm` into an integer kernel.
    fn quantize_bias(
        &self,
        patch: &mut Patch,
        node: &QuantizedNode,
        bias: &ConstantSlot,
        form: ModelForm,
    ) -> Result<()> {
        let prefix = format!("{}.bias", node.name);
        let value = match (self.bias_integers(node)?, form) {
            // An unusual bias layout (broadcast shapes): keep it in FP32, corrected.
            (None, _) => {
                let (dims, values) = self.bias_values(bias, &node.name)?;
                let name = format!("{prefix}_corrected");
                patch.push(Edit::AddInitializer(tensor::from_f32(
                    &name, &dims, &values,
                )));
                name
            }
            (Some(integers), ModelForm::Evaluation) => {
                let fake: Vec<f32> = integers
                    .values
                    .iter()
                    .zip(&integers.scales)
                    .map(|(q, s)| *q as f32 * s)
                    .collect();
                let name = format!("{prefix}_fake_quantized");
                patch.push(Edit::AddInitializer(tensor::from_f32(
                    &name,
                    &integers.dims,
                    &fake,
                )));
                name
            }
            (Some(integers), ModelForm::Export { .. }) => {
                integer_bias_qdq(patch, &prefix, &integers)
            }
        };
        patch.push(Edit::SetInput {
            node: node.name.clone(),
            index: bias.input,
            value,
        });
        Ok(())
    }
}

/// The first opset with `DynamicQuantizeLinear`, which the ladder's `dynamic` step needs.
pub const DYNAMIC_OPSET: i64 = 11;

/// The largest bias integer before a channel gets a scale of its own: 2^30, well inside int32.
const BIAS_LIMIT: f32 = 1_073_741_824.0;

/// A bias in int32 at the accumulator's scale `s_x · s_w[c]` (or, where that leaves int32, its own).
struct IntegerBias {
    dims: Vec<usize>,
    values: Vec<i32>,
    /// Per output channel.
    scales: Vec<f32>,
}

impl QuantizedModel {
    /// The FP32 bias in `slot` of node `node`, corrected when bias correction changed it, and its dimensions.
    fn bias_values(&self, slot: &ConstantSlot, node: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let initializer = self
            .fp32
            .initializer(&slot.initializer)
            .expect("placement checked it");
        let values = match self.biases.get(node) {
            Some(corrected) => corrected.clone(),
            None => tensor::to_f32(initializer)?,
        };
        Ok((tensor::dims(initializer)?, values))
    }

    /// The (corrected) bias of `node` in int32 at the accumulator's scale; `None` without a bias or for a layout
    /// that is not one value per output channel.
    fn bias_integers(&self, node: &QuantizedNode) -> Result<Option<IntegerBias>> {
        let Some(bias) = &node.bias else {
            return Ok(None);
        };
        let (dims, values) = self.bias_values(bias, &node.name)?;
        let input_tensor = &node.activations[0].1;
        let input_scale = self.activations[input_tensor].scale[0];
        let weight_scale = &self.weights[&node.name].scale;
        let channels = values.len();
        let per_channel_ok =
            dims.len() == 1 && (weight_scale.len() == channels || weight_scale.len() == 1);
        if !per_channel_ok {
            return Ok(None);
        }
        let scales: Vec<f32> = (0..channels)
            .map(|c| input_scale * weight_scale[if weight_scale.len() == 1 { 0 } else { c }])
            .collect();
        // At 16 bits `s_x · s_w` can be so small that a bias leaves int32 (MobileNetV2 at w16a16): such a
        // channel gets its own scale, `|b| / 2^30`, instead of being clamped. No integer kernel reads a 16-bit
        // op's bias, so the scale need not be the accumulator's; the graph keeps the int32 `DequantizeLinear`
        // that ONNX Runtime is checked against (an FP32 bias there changes its batch-1 numerics).
        let mut scales = scales;
        let quantized: Vec<i32> = values
            .iter()
            .zip(scales.iter_mut())
            .map(|(v, s)| {
                let q = (v / *s).round_ties_even();
                if q.abs() < BIAS_LIMIT {
                    return q as i32;
                }
                *s = v.abs() / BIAS_LIMIT;
                (v / *s).round_ties_even() as i32
            })
            .collect();
        Ok(Some(IntegerBias {
            dims,
            values: quantized,
            scales,
        }))
    }
}

/// Adds the export form of an int32 bias (`DequantizeLinear` of the integers, per-channel scales) and returns
/// the dequantized tensor's name.
fn integer_bias_qdq(patch: &mut Patch, prefix: &str, bias: &IntegerBias) -> String {
    let channels = bias.values.len();
    let q_name = format!("{prefix}_quantized");
    let scale = format!("{prefix}_scale");
    let zero_point = format!("{prefix}_zero_point");
    patch.push(Edit::AddInitializer(tensor::from_i32(
        &q_name,
        &bias.dims,
        &bias.values,
    )));
    patch.push(Edit::AddInitializer(tensor::from_f32(
        &scale,
        &[channels],
        &bias.scales,
    )));
    patch.push(Edit::AddInitializer(tensor::from_i32(
        &zero_point,
        &[channels],
        &vec![0; channels],
    )));
    let name = format!("{prefix}_dequantized");
    patch.push(Edit::AddNode(qdq::qdq_node(
        "DequantizeLinear",
        &format!("{prefix}_DequantizeLinear"),
        &[&q_name, &scale, &zero_point],
        &name,
        Some(0),
    )));
    name
}

/// Drops the original initializers that no node reads any more, so the saved model holds int8 weights only.
fn remove_unused(graph: Graph, candidates: &HashSet<String>) -> Result<Graph> {
    let mut patch = Patch::new("drop replaced FP32 initializers");
    for name in candidates {
        if graph.consumers(name).is_empty() && !graph.is_output(name) {
            patch.push(Edit::RemoveInitializer(name.clone()));
        }
    }
    if patch.is_empty() {
        return Ok(graph);
    }
    graph.patched(&patch)
}

/// Bytes of an initializer's FP32 values.
fn initializer_bytes(t: &aquant_onnx::TensorProto) -> usize {
    t.raw_data.as_ref().map_or(0, |raw| raw.len()) + 4 * t.float_data.len()
}
