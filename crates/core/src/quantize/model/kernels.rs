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
//! Which ops are fused, and how their output leaves the kernel, is decided in `fusion`.
//!
//! Not modelled: CPUs without VNNI saturate pairs of products in int16 (see the saturation analysis); MatMul
//! (`QLinearMatMul`, `MatMulIntegerToFloat`) keeps the simulation.

use std::collections::BTreeSet;

use aquant_onnx::{tensor, NodeProto};

use super::fusion::{integer_kernel, type_range, Fused, KernelOutput};
use super::qdq::{self, fake_quant_name};
use super::QuantizedModel;
use crate::error::Result;
use crate::graph::{Edit, Graph, Patch};
use crate::numerics::Quantizer;
use crate::ops::IntegerKernel;
use crate::quantize::placement::QuantizedNode;

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
        if let Some(fused) = integer_kernel(model, node, reverted, opset) {
            spell(model, &graph, node, &fused, &mut patch)?;
        }
    }
    if patch.is_empty() {
        return Ok(graph);
    }
    graph.patched(&patch)
}

/// Replaces `node` (in `graph`, the evaluation form) by its integer arithmetic and the requantization.
fn spell(
    model: &QuantizedModel,
    graph: &Graph,
    node: &QuantizedNode,
    fused: &Fused,
    patch: &mut Patch,
) -> Result<()> {
    let built = graph.node(&node.name).expect("a placed node").clone();
    let mut kernel = built.clone();
    kernel.input[0] = fake_quant_name(&node.activations[0].1, "clipped");
    let weight_rank = integer_weights(model, node, &built, &mut kernel, patch)?;
    integer_bias(model, node, &built, &mut kernel, patch)?;
    let accumulator = Accumulator::new(model, node, &built, fused.kernel, weight_rank);
    kernel.output[0] = accumulator.name.clone();
    patch.push(Edit::RemoveNode(node.name.clone()));
    patch.push(Edit::AddNode(kernel));
    match &fused.output {
        KernelOutput::Float => float_output(&accumulator, patch),
        KernelOutput::Requantized { tensor, direct } => {
            requantization(model, &accumulator, tensor, *direct, patch)
        }
    }
    Ok(())
}

/// The kernel reads its weight as integers (f32, exact): adds them and points `kernel` at them. Returns the
/// weight's rank.
fn integer_weights(
    model: &QuantizedModel,
    node: &QuantizedNode,
    built: &NodeProto,
    kernel: &mut NodeProto,
    patch: &mut Patch,
) -> Result<usize> {
    let weight = node.weight.as_ref().expect("integer kernels have weights");
    let initializer = model
        .fp32
        .initializer(&weight.initializer)
        .expect("placement checked it");
    let dims = tensor::dims(initializer)?;
    let integers: Vec<f32> = model.weights[&node.name]
        .quantize_tensor(&tensor::to_f32(initializer)?, &dims)?
        .into_iter()
        .map(|q| q as f32)
        .collect();
    let name = format!("{}.weight_integer", node.name);
    patch.push(Edit::AddInitializer(tensor::from_f32(
        &name, &dims, &integers,
    )));
    patch.push(Edit::RemoveInitializer(built.input[weight.input].clone()));
    kernel.input[weight.input] = name;
    Ok(dims.len())
}

/// The kernel adds its int32 bias into the accumulator: adds it (as f32, exact) and points `kernel` at it.
fn integer_bias(
    model: &QuantizedModel,
    node: &QuantizedNode,
    built: &NodeProto,
    kernel: &mut NodeProto,
    patch: &mut Patch,
) -> Result<()> {
    let (Some(bias), Some(integers)) = (node.bias.as_ref(), model.bias_integers(node)?) else {
        return Ok(());
    };
    let name = format!("{}.bias_integer", node.name);
    let values: Vec<f32> = integers.values.iter().map(|&q| q as f32).collect();
    patch.push(Edit::AddInitializer(tensor::from_f32(
        &name,
        &integers.dims,
        &values,
    )));
    patch.push(Edit::RemoveInitializer(built.input[bias.input].clone()));
    kernel.input[bias.input] = name;
    Ok(())
}

/// A fused op's int32 accumulator: where it is, where its result goes, and its scale per output channel.
struct Accumulator {
    /// The node's name: the prefix of every value the kernel's output steps add.
    node: String,
    /// The tensor holding the accumulator (the fused op's output, renamed).
    name: String,
    /// The op's original output, which the steps compute.
    result: String,
    /// The shape of a per-channel factor on the accumulator.
    channel_shape: Vec<usize>,
    /// `s_x · s_w[c]`.
    scale: Vec<f32>,
}

impl Accumulator {
    fn new(
        model: &QuantizedModel,
        node: &QuantizedNode,
        built: &NodeProto,
        kernel: IntegerKernel,
        weight_rank: usize,
    ) -> Self {
        let input_scale = model.activations[&node.activations[0].1].scale[0];
        let weight_scale = &model.weights[&node.name].scale;
        let result = built.output[0].clone();
        Accumulator {
            node: node.name.clone(),
            name: format!("{result}_accumulator"),
            result,
            channel_shape: kernel.channel_shape(weight_scale.len(), weight_rank),
            scale: weight_scale.iter().map(|s| input_scale * s).collect(),
        }
    }

    /// The name of a value or node the kernel's output steps add.
    fn part(&self, part: &str) -> String {
        format!("{}.kernel_{part}", self.node)
    }
}

/// `QGemm` with a float output: `f32(acc) · f32(s_x · s_w[c])`.
fn float_output(accumulator: &Accumulator, patch: &mut Patch) {
    let p = |part: &str| accumulator.part(part);
    patch.push(Edit::AddInitializer(tensor::from_f32(
        &p("scale"),
        &accumulator.channel_shape,
        &accumulator.scale,
    )));
    patch.push(Edit::AddNode(simple(
        "Mul",
        &p("Mul"),
        &[&accumulator.name, &p("scale")],
        &accumulator.result,
    )));
}

/// MLAS' requantization into the quantizer of `tensor`: `clamp(round_half_even(f32(acc) · M) + zp)`, then
/// dequantized as the quantizer's reader sees it. `direct`: the kernel's integers replace those the
/// quantizer of `tensor` computes from its float input (the same numbers), which saves that quantizer three
/// ops.
fn requantization(
    model: &QuantizedModel,
    accumulator: &Accumulator,
    tensor: &str,
    direct: bool,
    patch: &mut Patch,
) {
    let p = |part: &str| accumulator.part(part);
    let integers = if direct {
        for node in qdq::fake_quant_integer_nodes(tensor) {
            patch.push(Edit::RemoveNode(node));
        }
        fake_quant_name(tensor, "clipped")
    } else {
        p("clipped")
    };
    requantization_constants(accumulator, &model.activations[tensor], patch);
    // The first Clip (to int32's range) changes no value: it keeps tract from folding the per-channel
    // multiplier into the integer weights (its Conv declutters a following per-channel Mul that way), which
    // would make the sum inexact (tract/tests/integer_kernels.rs). A Clip, unlike the Round that did this
    // before, is fused into tract's matmul kernel: MobileNetV2's INT8 evaluation takes 6.5 s instead of 8.0 s
    // (300 images, 2 cores, AVX-512 VNNI), 6.3 s without integer kernels.
    let accumulated = [
        accumulator.name.clone(),
        p("accumulator_lo"),
        p("accumulator_hi"),
    ];
    for (step, op, inputs, output) in [
        ("accumulate", "Clip", accumulated.to_vec(), p("accumulated")),
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
            accumulator.result.clone(),
        ),
    ] {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        patch.push(Edit::AddNode(simple(op, &p(step), &inputs, &output)));
    }
}

/// The constants of the requantization into a quantizer with `out`: the multiplier `M` per channel, the
/// output's integer range less its zero point, its scale, and int32's range.
fn requantization_constants(accumulator: &Accumulator, out: &Quantizer, patch: &mut Patch) {
    let p = |part: &str| accumulator.part(part);
    let (scale, zero_point) = (out.scale[0], out.zero_point[0]);
    let multiplier: Vec<f32> = accumulator.scale.iter().map(|s| s / scale).collect();
    let (lo, hi) = type_range(out);
    for (name, dims, values) in [
        (
            p("multiplier"),
            accumulator.channel_shape.clone(),
            multiplier,
        ),
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
}

/// A node with no attributes.
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
    use crate::numerics::{Mode, QuantSpec};
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
                Quantizer::from_range(&spec(true), &[-1.0], &[1.0], None),
            ),
            (
                "r1",
                Quantizer::from_range(&spec(r1_signed), &[0.0], &[2.0], None),
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
