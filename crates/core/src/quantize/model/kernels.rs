//! The evaluation form of the ops ONNX Runtime runs as integer kernels: what the deployed model computes.
//!
//! ONNX Runtime (default graph optimizations, CPU) fuses `DequantizeLinear → Conv/Gemm → QuantizeLinear` into
//! `QLinearConv` / `QGemm`. Those kernels do not compute what the QDQ graph says in float: they sum exact
//! integer products with the int32 bias in an int32 accumulator and requantize it once,
//! `q_y = clamp(round_half_even(f32(acc) · M) + zp_y)` with `M = f32(f32(s_x · s_w[c]) / s_y)` (MLAS
//! `MlasRequantizeOutput` and the ConvSym kernels; the scales as `qlinearconv.cc` / `quant_gemm.cc` compute
//! them); a `QGemm` with a float output gives `f32(acc) · f32(s_x · s_w[c])`. Simulating the QDQ graph in f32
//! (a float sum of dequantized values, divided by `s_y`) lands on the other side of a rounding tie now and
//! then, and the differences add up: on INT8 MobileNetV2 (300 images, AVX-512 VNNI) tract's simulation agreed
//! with ONNX Runtime on top-1 for 99.33% of the images, tract running this form for 99.67% (the form itself,
//! run by ONNX Runtime without optimizations, for 100%: the rest is float convs summed in another order).
//!
//! So in the evaluation form a fused op reads the integers `q − zp` of its input (as f32: exact), holds its
//! integer weights and bias (as f32), and its accumulator is requantized as above, in f32 ops that give the
//! kernel's bits while every partial sum stays below 2^24. Ops that ONNX Runtime leaves in float keep the QDQ
//! simulation, which is what ONNX Runtime computes for them.
//!
//! Which ops are fused is modelled on ONNX Runtime 1.32's QDQ transformers (`qdq_selectors.cc`,
//! `relu_quantizelinear.cc`, `clip_quantizelinear.cc`, `qdq_propagation.cc`): a quantized Conv or Gemm with
//! 8-bit per-tensor input, 8-bit symmetric weights and an int32 (or no) bias, whose output reaches exactly
//! one `QuantizeLinear` through a chain of single-reader nodes that ONNX Runtime removes (`Relu` when the
//! zero point is the type's minimum, `Clip` when the quantized range lies inside the clip range or the clip
//! bounds, quantized, cover the type's range) or moves the
//! quantizer across (`MaxPool`, `Reshape`, `Transpose`, `Squeeze`, `Unsqueeze`, `Slice` at the op versions
//! the propagation accepts). A Gemm whose output is not quantized becomes a `QGemm` with a float output. A
//! Conv whose output also feeds a float op (a residual `Add`) stays a float Conv in ONNX Runtime too.
//!
//! Not modelled: CPUs without VNNI saturate pairs of products in int16 (see the saturation analysis); MatMul
//! (`QLinearMatMul`, `MatMulIntegerToFloat`) keeps the simulation.

use std::collections::BTreeSet;

use aquant_onnx::{attr, tensor, NodeProto, TensorProto};

use super::{fake_quant_name, QuantizedModel};
use crate::error::Result;
use crate::graph::{Edit, Graph, Patch};
use crate::quant::QuantParams;
use crate::quantize::placement::QuantizedNode;

/// How a fused op's accumulator leaves the kernel.
#[derive(Debug, Clone, PartialEq)]
enum KernelOutput {
    /// Requantized into the 8-bit quantizer of `tensor` (`QLinearConv`, `QGemm` with an 8-bit output).
    Requantized {
        /// The quantized tensor.
        tensor: String,
        /// Whether only elementwise no-ops (removed Relu/Clip) lie between the op and `tensor`: then the
        /// kernel's integers are that quantizer's integers, and its own rounding is not spelled again.
        direct: bool,
    },
    /// Scaled to float (`QGemm` with a float output).
    Float,
}

/// Rewrites every op of `graph` (the evaluation form, built with `reverted` ops in FP32) that ONNX Runtime
/// runs as an integer kernel into the kernel's arithmetic.
pub(super) fn spell_integer_kernels(
    model: &QuantizedModel,
    graph: Graph,
    reverted: &BTreeSet<String>,
) -> Result<Graph> {
    let opset = aquant_onnx::default_opset(model.fp32.model());
    let mut patch = Patch::new("integer kernels");
    for node in &model.placement.nodes {
        if let Some(output) = integer_kernel(model, node, reverted, opset) {
            spell(model, &graph, node, &output, &mut patch)?;
        }
    }
    if patch.is_empty() {
        return Ok(graph);
    }
    graph.patched(&patch)
}

/// Whether ONNX Runtime fuses `node` into an integer kernel, and how its output leaves it.
fn integer_kernel(
    model: &QuantizedModel,
    node: &QuantizedNode,
    reverted: &BTreeSet<String>,
    opset: i64,
) -> Option<KernelOutput> {
    let fp32 = &model.fp32;
    let op = fp32.node(&node.name)?;
    let is_gemm = node.op_type == "Gemm";
    if reverted.contains(&node.name) || !(node.op_type == "Conv" || is_gemm) {
        return None;
    }
    if is_gemm
        && (attr::float(op, "alpha").is_some_and(|a| a != 1.0)
            || attr::float(op, "beta").is_some_and(|b| b != 1.0))
    {
        return None;
    }
    let weight = model.weights.get(&node.name)?;
    if weight.bits != 8 || !weight.signed || weight.zero_point.iter().any(|&z| z != 0) {
        return None;
    }
    let [(0, input)] = node.activations.as_slice() else {
        return None;
    };
    let input = model.activations.get(input)?;
    if input.bits != 8 || input.scale.len() != 1 {
        return None;
    }
    if node.bias.is_some() && model.bias_integers(node).ok()?.is_none() {
        return None;
    }
    let output = op.output.first()?;
    match quantized_output(model, output, reverted, opset) {
        Some((tensor, direct)) => Some(KernelOutput::Requantized { tensor, direct }),
        None if is_gemm && !has_quantizer(model, output, reverted) => Some(KernelOutput::Float),
        None => None,
    }
}

/// True when `tensor` has a quantizer in the built model (a quantized reader that is not reverted).
fn has_quantizer(model: &QuantizedModel, tensor: &str, reverted: &BTreeSet<String>) -> bool {
    model
        .placement
        .activations
        .iter()
        .any(|q| q.tensor == tensor && q.consumers.iter().any(|c| !reverted.contains(c)))
}

/// The 8-bit quantized tensor that `output` reaches through nodes ONNX Runtime removes or moves its
/// quantizer across, when that quantizer is the only reader at the end of the chain.
fn quantized_output(
    model: &QuantizedModel,
    output: &str,
    reverted: &BTreeSet<String>,
    opset: i64,
) -> Option<(String, bool)> {
    let graph = &model.fp32;
    let mut direct = true;
    let mut tensor = output.to_string();
    let mut removed: Vec<&NodeProto> = Vec::new();
    // Each step moves one node down a chain of the acyclic graph: at most one step per node.
    for _ in 0..=graph.nodes().len() {
        if graph.is_output(&tensor) {
            return None;
        }
        let readers = graph.consumers(&tensor);
        if let Some(quantizer) = model
            .placement
            .activations
            .iter()
            .find(|q| q.tensor == tensor)
        {
            let params = model.activations.get(&tensor)?;
            let only_quantized_readers = !readers.is_empty()
                && readers.iter().all(|r| {
                    let name = r.name.as_deref().unwrap_or_default();
                    quantizer.consumers.iter().any(|c| c == name) && !reverted.contains(name)
                });
            let fusable = params.bits == 8
                && params.scale.len() == 1
                && only_quantized_readers
                && removed.iter().all(|n| removable(graph, n, params, opset));
            return fusable.then_some((tensor, direct));
        }
        let [reader] = readers.as_slice() else {
            return None;
        };
        let op = reader.op_type.as_deref().unwrap_or_default();
        if reader.input.first() != Some(&tensor) || reader.output.len() != 1 {
            return None;
        }
        match op {
            "Relu" | "Clip" => removed.push(reader),
            _ if moves_quantizer(op, opset) => direct = false,
            _ => return None,
        }
        tensor = reader.output[0].clone();
    }
    None
}

/// Whether ONNX Runtime's QDQ propagation moves a quantizer up across `op` (at the version `opset` gives it).
fn moves_quantizer(op: &str, opset: i64) -> bool {
    match op {
        "MaxPool" => (12..22).contains(&opset),
        "Reshape" => (5..21).contains(&opset),
        "Transpose" | "Squeeze" | "Unsqueeze" => opset < 21,
        "Slice" => true,
        _ => false,
    }
}

/// Whether ONNX Runtime removes `node` (a Relu or Clip read only by a quantizer with `params`).
fn removable(graph: &Graph, node: &NodeProto, params: &QuantParams, opset: i64) -> bool {
    let (type_min, type_max) = type_range(params);
    let zero_point = params.zero_point[0];
    match node.op_type.as_deref() {
        // ReluQuantFusion: the quantizer clamps at zero already.
        Some("Relu") => zero_point == type_min,
        // ClipQuantFusion (QuantizeLinear 10/13 only): the quantized range lies within the clip range; or the
        // QDQ selector's test (`IsClipMadeRedundantByQ`): the clip bounds, quantized, cover the type's range.
        Some("Clip") => {
            let Some((min, max)) = clip_bounds(graph, node, opset) else {
                return false;
            };
            let scale = params.scale[0];
            let lower = scale * (type_min - zero_point) as f32;
            let upper = scale * (type_max - zero_point) as f32;
            let fusion = opset < 19 && !(f32::EPSILON < min - lower || f32::EPSILON < upper - max);
            let quantized =
                |bound: f32| (bound / scale).round_ties_even() as i64 + zero_point as i64;
            let selector = quantized(min) <= type_min as i64 && quantized(max) >= type_max as i64;
            fusion || selector
        }
        _ => false,
    }
}

/// The clip bounds of a Clip node, when constant (attributes before opset 11, inputs since).
fn clip_bounds(graph: &Graph, node: &NodeProto, opset: i64) -> Option<(f32, f32)> {
    if opset < 11 {
        return Some((
            attr::float(node, "min").unwrap_or(f32::MIN),
            attr::float(node, "max").unwrap_or(f32::MAX),
        ));
    }
    let bound = |index: usize, default: f32| -> Option<f32> {
        match node.input.get(index).filter(|n| !n.is_empty()) {
            None => Some(default),
            Some(name) => scalar(graph, name),
        }
    };
    Some((bound(1, f32::MIN)?, bound(2, f32::MAX)?))
}

/// The value of a constant scalar: an initializer or a `Constant` node's `value`.
fn scalar(graph: &Graph, name: &str) -> Option<f32> {
    let tensor: &TensorProto = match graph.initializer(name) {
        Some(t) => t,
        None => {
            let producer = graph.producer(name)?;
            if producer.op_type.as_deref() != Some("Constant") {
                return None;
            }
            producer
                .attribute
                .iter()
                .find(|a| a.name.as_deref() == Some("value"))?
                .t
                .as_ref()?
        }
    };
    match tensor::to_f32(tensor).ok()?.as_slice() {
        [v] => Some(*v),
        _ => None,
    }
}

/// The range of the 8-bit storage type (what the kernels saturate to).
fn type_range(params: &QuantParams) -> (i32, i32) {
    if params.signed {
        (-128, 127)
    } else {
        (0, 255)
    }
}

/// Replaces `node` (in `graph`, the evaluation form) by its integer arithmetic and the requantization.
fn spell(
    model: &QuantizedModel,
    graph: &Graph,
    node: &QuantizedNode,
    output: &KernelOutput,
    patch: &mut Patch,
) -> Result<()> {
    let built = graph.node(&node.name).expect("a placed node").clone();
    let (input, weight) = (
        &node.activations[0].1,
        node.weight.as_ref().expect("integer kernels have weights"),
    );
    let input_scale = model.activations[input].scale[0];
    let params = &model.weights[&node.name];
    let initializer = model
        .fp32
        .initializer(&weight.initializer)
        .expect("placement checked it");
    let dims = tensor::dims(initializer)?;
    let integers: Vec<f32> = params
        .quantize_tensor(&tensor::to_f32(initializer)?, &dims)?
        .into_iter()
        .map(|q| q as f32)
        .collect();

    let mut fused = built.clone();
    fused.input[0] = fake_quant_name(input, "clipped");
    let weight_name = format!("{}.weight_integer", node.name);
    patch.push(Edit::AddInitializer(tensor::from_f32(
        &weight_name,
        &dims,
        &integers,
    )));
    patch.push(Edit::RemoveInitializer(built.input[weight.input].clone()));
    fused.input[weight.input] = weight_name;
    if let (Some(bias), Some(integers)) = (node.bias.as_ref(), model.bias_integers(node)?) {
        let name = format!("{}.bias_integer", node.name);
        let values: Vec<f32> = integers.values.iter().map(|&q| q as f32).collect();
        patch.push(Edit::AddInitializer(tensor::from_f32(
            &name,
            &integers.dims,
            &values,
        )));
        patch.push(Edit::RemoveInitializer(built.input[bias.input].clone()));
        fused.input[bias.input] = name;
    }
    let result = built.output[0].clone();
    let accumulator = format!("{result}_accumulator");
    fused.output[0] = accumulator.clone();
    patch.push(Edit::RemoveNode(node.name.clone()));
    patch.push(Edit::AddNode(fused));

    // Per output channel: axis 1 of the result, broadcast over the spatial axes of a Conv.
    let channels = params.scale.len();
    let shape: Vec<usize> = match (channels, node.op_type.as_str()) {
        (1, _) => vec![],
        (c, "Conv") => std::iter::once(c)
            .chain(std::iter::repeat_n(1, dims.len().saturating_sub(2)))
            .collect(),
        (c, _) => vec![c],
    };
    let accumulator_scale: Vec<f32> = params.scale.iter().map(|s| input_scale * s).collect();
    let p = |part: &str| format!("{}.kernel_{part}", node.name);
    match output {
        KernelOutput::Float => {
            patch.push(Edit::AddInitializer(tensor::from_f32(
                &p("scale"),
                &shape,
                &accumulator_scale,
            )));
            patch.push(Edit::AddNode(simple(
                "Mul",
                &p("Mul"),
                &[&accumulator, &p("scale")],
                &result,
            )));
        }
        KernelOutput::Requantized { tensor, direct } => {
            let out = &model.activations[tensor];
            let (scale, zero_point) = (out.scale[0], out.zero_point[0]);
            let multiplier: Vec<f32> = accumulator_scale.iter().map(|s| s / scale).collect();
            let (lo, hi) = type_range(out);
            // Directly requantized: the kernel's integers replace those the quantizer of `tensor` computes
            // from its float input (the same numbers), which saves that quantizer three ops.
            let integers = if *direct {
                for node in super::fake_quant_integer_nodes(tensor) {
                    patch.push(Edit::RemoveNode(node));
                }
                fake_quant_name(tensor, "clipped")
            } else {
                p("clipped")
            };
            for (name, dims, values) in [
                (p("multiplier"), shape.clone(), multiplier),
                (p("lo"), vec![], vec![(lo - zero_point) as f32]),
                (p("hi"), vec![], vec![(hi - zero_point) as f32]),
                (p("output_scale"), vec![], vec![scale]),
                (p("accumulator_lo"), vec![], vec![i32::MIN as f32]),
                (p("accumulator_hi"), vec![], vec![i32::MAX as f32]),
            ] {
                patch.push(Edit::AddInitializer(tensor::from_f32(
                    &name, &dims, &values,
                )));
            }
            // The first Clip (to int32's range) changes no value: it keeps tract from folding the per-channel
            // multiplier into the integer weights (its Conv declutters a following per-channel Mul that way),
            // which would make the sum inexact (tract/tests/integer_kernels.rs). A Clip, unlike the Round that
            // did this before, is fused into tract's matmul kernel: MobileNetV2's INT8 evaluation takes 6.5 s
            // instead of 8.0 s (300 images, 2 cores, AVX-512 VNNI), 6.3 s without integer kernels.
            for (step, op, inputs, output) in [
                (
                    "accumulate",
                    "Clip",
                    vec![
                        accumulator.clone(),
                        p("accumulator_lo"),
                        p("accumulator_hi"),
                    ],
                    p("accumulated"),
                ),
                (
                    "scale",
                    "Mul",
                    vec![p("accumulated"), p("multiplier")],
                    p("scaled"),
                ),
                ("round", "Round", vec![p("scaled")], p("rounded")),
                (
                    "saturate",
                    "Clip",
                    vec![p("rounded"), p("lo"), p("hi")],
                    integers.clone(),
                ),
                (
                    "dequantize",
                    "Mul",
                    vec![integers.clone(), p("output_scale")],
                    result.clone(),
                ),
            ] {
                let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                patch.push(Edit::AddNode(simple(op, &p(step), &inputs, &output)));
            }
        }
    }
    Ok(())
}

fn simple(op_type: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: Some(op_type.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::builder::ModelBuilder;
    use crate::quant::{Mode, QuantSpec};
    use crate::quantize::{place, weight_params, ModelForm, QuantizationParams, RestoreMode};

    /// x → conv1 → relu → conv2 → y, with the quantizer of `r1` unsigned (zero point 0) or signed.
    fn conv_relu_conv(r1_signed: bool) -> QuantizedModel {
        let w: Vec<f32> = (0..2 * 2 * 9)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0)
            .collect();
        let m = ModelBuilder::new(13)
            .input("x", &[None, Some(2), Some(4), Some(4)])
            .initializer("conv1.w", &[2, 2, 3, 3], &w)
            .initializer("conv1.b", &[2], &[0.1, -0.2])
            .node("Conv", "conv1", &["x", "conv1.w", "conv1.b"], &["c1"])
            .node("Relu", "relu", &["c1"], &["r1"])
            .initializer("conv2.w", &[2, 2, 3, 3], &w)
            .node("Conv", "conv2", &["r1", "conv2.w"], &["y"])
            .output("y", &[None, Some(2), Some(2), Some(2)])
            .build();
        let g = Graph::new(m).unwrap();
        let placement = place(&g, &QuantizationParams::default()).unwrap();
        let spec = |signed| QuantSpec::new(8, Mode::Symmetric, signed, false).unwrap();
        let activations = [
            (
                "x",
                QuantParams::from_range(&spec(true), &[-1.0], &[1.0], None),
            ),
            (
                "r1",
                QuantParams::from_range(&spec(r1_signed), &[0.0], &[2.0], None),
            ),
        ]
        .into_iter()
        .map(|(t, p)| (t.to_string(), p.unwrap()))
        .collect();
        let weights = weight_params(&g, &placement, &QuantizationParams::default()).unwrap();
        QuantizedModel::new(g, placement, activations, weights, BTreeMap::new()).unwrap()
    }

    fn evaluation(q: &QuantizedModel, reverted: &[&str]) -> Graph {
        let reverted = reverted.iter().map(|s| s.to_string()).collect();
        let model = q
            .build(&reverted, RestoreMode::default(), ModelForm::Evaluation)
            .unwrap();
        Graph::new(model).unwrap()
    }

    #[test]
    fn a_conv_requantized_through_a_removable_relu_becomes_an_integer_kernel() {
        let g = evaluation(&conv_relu_conv(false), &[]);
        let conv1 = g.node("conv1").unwrap();
        assert_eq!(
            conv1.input,
            [
                "x_fake_quant_clipped",
                "conv1.weight_integer",
                "conv1.bias_integer"
            ]
        );
        assert_eq!(conv1.output, ["c1_accumulator"]);
        let weights = tensor::to_f32(g.initializer("conv1.weight_integer").unwrap()).unwrap();
        assert!(weights.iter().all(|w| w.fract() == 0.0 && w.abs() <= 127.0));
        assert!(
            weights.iter().any(|w| w.abs() == 127.0),
            "full-range integers"
        );
        assert!(g.initializer("conv1.weight_fake_quantized").is_none());
        // Requantized into r1's quantizer, then the Relu (a no-op now) as before.
        assert_eq!(
            g.producer("c1").unwrap().name.as_deref(),
            Some("conv1.kernel_dequantize")
        );
        let multiplier = tensor::to_f32(g.initializer("conv1.kernel_multiplier").unwrap()).unwrap();
        let params = &conv_relu_conv(false);
        let (sx, sy) = (
            params.activations["x"].scale[0],
            params.activations["r1"].scale[0],
        );
        let sw = &params.weights["conv1"].scale;
        assert_eq!(multiplier, vec![sx * sw[0] / sy, sx * sw[1] / sy]);
        // The kernel's integers are r1's quantizer's: it no longer rounds the float value itself.
        assert_eq!(
            g.producer("r1_fake_quant_clipped").unwrap().name.as_deref(),
            Some("conv1.kernel_saturate")
        );
        assert!(g.node("r1_fake_quant_divided_Div").is_none());
        // conv2's output is not quantized: ONNX Runtime runs it as a float Conv, the simulation stays.
        assert_eq!(g.node("conv2").unwrap().input[0], "r1_dequantized");
    }

    #[test]
    fn no_integer_kernel_when_onnx_runtime_would_not_fuse() {
        // The quantizer after the Relu does not clamp at zero (signed, zero point 0): the Relu stays.
        let g = evaluation(&conv_relu_conv(true), &[]);
        assert_eq!(g.node("conv1").unwrap().input[0], "x_dequantized");
        // Its reader is reverted: no quantizer on r1, conv1's output is float.
        let g = evaluation(&conv_relu_conv(false), &["conv2"]);
        assert_eq!(g.node("conv1").unwrap().input[0], "x_dequantized");
        assert!(g.initializer("conv1.weight_integer").is_none());
        // conv1 reverted: FP32.
        let g = evaluation(&conv_relu_conv(false), &["conv1"]);
        assert_eq!(g.node("conv1").unwrap().input, ["x", "conv1.w", "conv1.b"]);
    }
}
