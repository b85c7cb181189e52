//! Placement and model-building tests on small graphs built in code.

use std::collections::BTreeSet;

use super::*;
use crate::builder::ModelBuilder;

fn conv(
    b: ModelBuilder,
    name: &str,
    input: &str,
    output: &str,
    channels: usize,
    in_channels: usize,
) -> ModelBuilder {
    let w: Vec<f32> = (0..channels * in_channels * 9)
        .map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0)
        .collect();
    let bias: Vec<f32> = (0..channels).map(|i| i as f32 * 0.1).collect();
    b.initializer(&format!("{name}.w"), &[channels, in_channels, 3, 3], &w)
        .initializer(&format!("{name}.b"), &[channels], &bias)
        .node(
            "Conv",
            name,
            &[input, &format!("{name}.w"), &format!("{name}.b")],
            &[output],
        )
        .attr(aquant_onnx::AttributeProto {
            name: Some("pads".into()),
            r#type: Some(7),
            ints: vec![1, 1, 1, 1],
            ..Default::default()
        })
}

/// x → conv1 → relu → conv2 → y
fn conv_relu_conv() -> Graph {
    let b = ModelBuilder::new(13).input("x", &[None, Some(2), Some(6), Some(6)]);
    let b = conv(b, "conv1", "x", "c1", 4, 2).node("Relu", "relu", &["c1"], &["r1"]);
    let b = conv(b, "conv2", "r1", "y", 3, 4).output("y", &[None, Some(3), Some(6), Some(6)]);
    Graph::new(b.build()).unwrap()
}

#[test]
fn conv_relu_is_quantized_after_the_activation() {
    let g = conv_relu_conv();
    let p = place(&g, &QuantizationParams::default()).unwrap();
    let tensors: Vec<&str> = p.activations.iter().map(|a| a.tensor.as_str()).collect();
    assert_eq!(
        tensors,
        vec!["x", "r1"],
        "no quantizer between conv1 and relu"
    );
    assert_eq!(p.nodes.len(), 2);
    let conv1 = p.node("conv1").unwrap();
    assert_eq!(conv1.weight.as_ref().unwrap().initializer, "conv1.w");
    assert_eq!(conv1.weight_axis, Some(0));
    assert_eq!(conv1.bias.as_ref().unwrap().initializer, "conv1.b");
}

/// x → conv_a ─┐
///   → conv_b ─┴ concat → conv_c → y, and conv_a + conv_b → add (residual)
fn branches() -> Graph {
    let b = ModelBuilder::new(13).input("x", &[None, Some(2), Some(4), Some(4)]);
    let b = conv(b, "conv_a", "x", "a", 2, 2);
    let b = conv(b, "conv_b", "x", "b", 2, 2)
        .initializer_i64("axis_dummy", &[1], &[0])
        .node("Concat", "concat", &["a", "b"], &["cat"])
        .attr(aquant_onnx::attr::make_int("axis", 1))
        .node("Add", "add", &["a", "b"], &["sum"]);
    let b = conv(b, "conv_c", "cat", "y", 2, 4)
        .output("y", &[None, Some(2), Some(4), Some(4)])
        .output("sum", &[None, Some(2), Some(4), Some(4)]);
    Graph::new(b.build()).unwrap()
}

/// POT's placement for target ANY: the model deployed on OpenVINO.
fn pot_any() -> QuantizationParams {
    QuantizationParams {
        deploy: Some(Deploy::Openvino),
        ..Default::default()
    }
}

#[test]
fn concat_propagates_and_shared_input_has_one_quantizer() {
    let g = branches();
    let p = place(&g, &pot_any()).unwrap();
    let x = p.activations.iter().find(|a| a.tensor == "x").unwrap();
    assert_eq!(
        x.consumers,
        vec!["conv_a", "conv_b"],
        "one quantizer shared by both readers of x"
    );
    assert!(
        p.activations.iter().any(|a| a.tensor == "cat"),
        "quantized after the concat"
    );
    assert!(
        !p.activations
            .iter()
            .any(|a| a.tensor == "a" || a.tensor == "b"),
        "no quantizer on concat inputs in the default pattern set"
    );
    assert!(
        p.node("add").is_none(),
        "Add is not quantized for target ANY"
    );
}

#[test]
fn residual_add_is_quantized_for_onnx_runtime_under_any() {
    // Left in float, the Add would read conv_a's and conv_b's outputs beside their quantizer (for the
    // concat), and ONNX Runtime would keep both convolutions in float.
    let g = branches();
    let p = place(&g, &QuantizationParams::default()).unwrap();
    let add = p.node("add").expect("Add quantized for ONNX Runtime");
    assert_eq!(
        add.activations,
        vec![(0, "a".to_string()), (1, "b".to_string())]
    );
    let explicit = QuantizationParams {
        deploy: Some(Deploy::Ort),
        ..Default::default()
    };
    assert_eq!(place(&g, &explicit).unwrap(), p, "ort is the default");
}

#[test]
fn residual_add_is_quantized_for_cpu() {
    let g = branches();
    let params = QuantizationParams {
        target_device: TargetDevice::Cpu,
        ..Default::default()
    };
    let p = place(&g, &params).unwrap();
    let add = p.node("add").expect("Add quantized on CPU");
    assert_eq!(
        add.activations,
        vec![(0, "a".to_string()), (1, "b".to_string())]
    );
}

#[test]
fn ignored_scope_by_name_pattern_and_type() {
    let g = branches();
    let mut params = pot_any();
    params.ignored_scope.names = vec!["conv_a".into()];
    let p = place(&g, &params).unwrap();
    assert!(p.node("conv_a").is_none() && p.node("conv_b").is_some());
    assert_eq!(
        p.activations
            .iter()
            .find(|a| a.tensor == "x")
            .unwrap()
            .consumers,
        vec!["conv_b"]
    );

    params.ignored_scope = IgnoredScope {
        patterns: vec!["conv_[ab]".into()],
        ..Default::default()
    };
    let p = place(&g, &params).unwrap();
    assert_eq!(
        p.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        vec!["conv_c"]
    );

    params.ignored_scope = IgnoredScope {
        types: vec!["Conv".into()],
        ..Default::default()
    };
    assert!(place(&g, &params).unwrap().nodes.is_empty());

    params.ignored_scope = IgnoredScope {
        names: vec!["no_such_node".into()],
        ..Default::default()
    };
    let err = place(&g, &params).unwrap_err().to_string();
    assert!(err.contains("no_such_node"), "{err}");
}

#[test]
fn already_quantized_model_and_old_opset_are_clear_errors() {
    let m = ModelBuilder::new(13)
        .input("x", &[Some(1)])
        .initializer("s", &[], &[1.0])
        .node("QuantizeLinear", "q", &["x", "s"], &["y"])
        .output("y", &[Some(1)])
        .build();
    let err = place(&Graph::new(m).unwrap(), &QuantizationParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'q' (QuantizeLinear)") && err.contains("already quantized"),
        "{err}"
    );

    let mut old = conv_relu_conv().into_model();
    old.opset_import[0].version = Some(11);
    let err = place(&Graph::new(old).unwrap(), &QuantizationParams::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("opset 11") && err.contains("per-channel"),
        "{err}"
    );
}

fn quantized_conv_relu_conv() -> QuantizedModel {
    let g = conv_relu_conv();
    let placement = place(&g, &QuantizationParams::default()).unwrap();
    let spec_u8 = QuantSpec::new(8, Mode::Symmetric, false, false).unwrap();
    let spec_i8 = QuantSpec::new(8, Mode::Symmetric, true, false).unwrap();
    let activations = [
        (
            "x".to_string(),
            Quantizer::from_range(&spec_i8, &[-1.0], &[1.0], None).unwrap(),
        ),
        (
            "r1".to_string(),
            Quantizer::from_range(&spec_u8, &[0.0], &[2.0], None).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let weights = weight_params(&g, &placement, &QuantizationParams::default()).unwrap();
    QuantizedModel::new(g, placement, activations, weights, BTreeMap::new()).unwrap()
}

#[test]
fn export_has_qdq_int8_weights_and_int32_bias() {
    let q = quantized_conv_relu_conv();
    let model = q
        .build(
            &BTreeSet::new(),
            RestoreMode::default(),
            ModelForm::Export {
                compress_weights: true,
            },
        )
        .unwrap();
    let g = Graph::new(model).unwrap();
    let ops: Vec<&str> = g
        .nodes()
        .iter()
        .map(|n| n.op_type.as_deref().unwrap())
        .collect();
    assert_eq!(ops.iter().filter(|o| **o == "QuantizeLinear").count(), 2);
    // 2 activation DQ + 2 weight DQ + 2 bias DQ.
    assert_eq!(ops.iter().filter(|o| **o == "DequantizeLinear").count(), 6);
    assert!(g.initializer("conv1.w").is_none(), "FP32 weight replaced");
    let w = g.initializer("conv1.weight_quantized").unwrap();
    assert_eq!(w.data_type, Some(3), "int8 weights");
    assert_eq!(
        g.initializer("conv1.bias_quantized").unwrap().data_type,
        Some(6),
        "int32 bias"
    );
    assert_eq!(
        g.initializer("r1_zero_point").unwrap().data_type,
        Some(2),
        "uint8 after ReLU"
    );
    assert_eq!(g.producer("r1").unwrap().name.as_deref(), Some("relu"));
    assert_eq!(g.node("conv2").unwrap().input[0], "r1_dequantized");
}

#[test]
fn reverted_node_gets_its_original_weights_and_no_quantizer() {
    let q = quantized_conv_relu_conv();
    let fp32: BTreeSet<String> = ["conv2".to_string()].into();
    let g = Graph::new(
        q.build(
            &fp32,
            RestoreMode::default(),
            ModelForm::Export {
                compress_weights: true,
            },
        )
        .unwrap(),
    )
    .unwrap();
    let conv2 = g.node("conv2").unwrap();
    assert_eq!(conv2.input, vec!["r1", "conv2.w", "conv2.b"]);
    assert!(
        g.node("r1_QuantizeLinear").is_none(),
        "quantizer without quantized readers removed"
    );
    assert!(g.node("x_QuantizeLinear").is_some());
    let all: BTreeSet<String> = ["conv1".to_string(), "conv2".to_string()].into();
    let fp = q
        .build(&all, RestoreMode::default(), ModelForm::Evaluation)
        .unwrap();
    assert_eq!(
        fp,
        *q.fp32().model(),
        "reverting everything gives the FP32 model back"
    );
}

#[test]
fn transformer_mode_quantizes_matmul_between_activations_and_residual_add() {
    let m = ModelBuilder::new(13)
        .input("q", &[None, Some(4), Some(8)])
        .input("k", &[None, Some(8), Some(4)])
        .node("MatMul", "scores", &["q", "k"], &["s"])
        .node("Add", "residual", &["s", "s2"], &["out"])
        .node("Relu", "r", &["s"], &["s2"])
        .output("out", &[None, Some(4), Some(4)])
        .build();
    let g = Graph::new(m).unwrap();
    assert!(place(&g, &pot_any()).unwrap().nodes.is_empty());
    let params = QuantizationParams {
        model_type: Some(ModelType::Transformer),
        ..pot_any()
    };
    let p = place(&g, &params).unwrap();
    let names: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["scores", "residual"]);
    assert_eq!(
        p.node("scores").unwrap().activations,
        vec![(0, "q".to_string()), (1, "k".to_string())]
    );
    assert!(p.node("scores").unwrap().weight.is_none());
}

/// x → conv1 → relu → pad (zeros) → conv2 → y, quantized with `deploy`.
fn quantized_conv_pad_conv(deploy: Deploy) -> QuantizedModel {
    let b = ModelBuilder::new(13).input("x", &[None, Some(2), Some(6), Some(6)]);
    let b = conv(b, "conv1", "x", "c1", 4, 2)
        .node("Relu", "relu", &["c1"], &["r1"])
        .initializer_i64("pads", &[8], &[0, 0, 1, 1, 0, 0, 1, 1])
        .node("Pad", "pad", &["r1", "pads"], &["p"]);
    let b = conv(b, "conv2", "p", "y", 3, 4).output("y", &[None, Some(3), Some(10), Some(10)]);
    let g = Graph::new(b.build()).unwrap();
    let params = QuantizationParams {
        deploy: Some(deploy),
        ..Default::default()
    };
    let placement = place(&g, &params).unwrap();
    let spec_u8 = QuantSpec::new(8, Mode::Symmetric, false, false).unwrap();
    let spec_i8 = QuantSpec::new(8, Mode::Symmetric, true, false).unwrap();
    let activations = [
        ("x", Quantizer::from_range(&spec_i8, &[-1.0], &[1.0], None)),
        ("p", Quantizer::from_range(&spec_u8, &[0.0], &[2.0], None)),
    ]
    .into_iter()
    .map(|(t, q)| (t.to_string(), q.unwrap()))
    .collect();
    let weights = weight_params(&g, &placement, &params).unwrap();
    QuantizedModel::new(g, placement, activations, weights, BTreeMap::new())
        .unwrap()
        .deployed_on(deploy)
}

fn export(q: &QuantizedModel, reverted: &[&str]) -> Graph {
    let reverted: BTreeSet<String> = reverted.iter().map(|s| s.to_string()).collect();
    let form = ModelForm::Export {
        compress_weights: true,
    };
    Graph::new(q.build(&reverted, RestoreMode::default(), form).unwrap()).unwrap()
}

#[test]
fn for_onnx_runtime_the_quantizer_after_a_zero_pad_moves_before_it() {
    // ONNX Runtime folds the Pad into conv2 only with no quantizer between them; conv1 then requantizes into
    // the same parameters, padded with their zero point (the value 0).
    let ort = export(&quantized_conv_pad_conv(Deploy::Ort), &[]);
    assert_eq!(ort.node("pad").unwrap().input[0], "r1_dequantized");
    assert_eq!(ort.node("conv2").unwrap().input[0], "p");
    assert!(ort.node("p_QuantizeLinear").is_none());
    let q = quantized_conv_pad_conv(Deploy::Ort);
    let scale = ort.initializer("r1_scale").expect("p's quantizer on r1");
    assert_eq!(
        aquant_onnx::tensor::to_f32(scale).unwrap(),
        q.activation_params("p").unwrap().scale
    );
    // OpenVINO's export keeps the quantizer where the placement put it.
    let openvino = export(&quantized_conv_pad_conv(Deploy::Openvino), &[]);
    assert_eq!(openvino.node("pad").unwrap().input[0], "r1");
    assert_eq!(openvino.node("conv2").unwrap().input[0], "p_dequantized");
    // conv2 reverted: no quantizer at all, the Pad reads FP32 values again.
    let reverted = export(&quantized_conv_pad_conv(Deploy::Ort), &["conv2"]);
    assert_eq!(reverted.node("pad").unwrap().input[0], "r1");
    assert!(reverted.node("r1_QuantizeLinear").is_none());
    // The evaluation form computes the same values with the quantizer where the placement put it.
    let eval = Graph::new(
        q.build(
            &BTreeSet::new(),
            RestoreMode::default(),
            ModelForm::Evaluation,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(eval.node("pad").unwrap().input[0], "r1");
}

#[test]
fn reverting_an_op_costs_the_kernels_whose_int8_chain_it_breaks() {
    // conv1 → relu → [quantizer] → conv2 → y: conv1 runs as QLinearConv (its output reaches conv2's
    // quantizer), conv2 writes a float graph output and is no integer kernel. Reverting conv2 removes the
    // quantizer and with it conv1's kernel.
    let q = quantized_conv_relu_conv();
    let reverted = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    assert_eq!(q.integer_kernels(&reverted(&[])), 1);
    assert_eq!(q.integer_kernels(&reverted(&["conv2"])), 0);
    assert_eq!(q.integer_kernels(&reverted(&["conv1"])), 0);
    // OpenVINO's fusions are not modelled: every op left quantized counts, whatever its neighbours.
    let openvino = q.deployed_on(Deploy::Openvino);
    assert_eq!(openvino.integer_kernels(&reverted(&[])), 2);
    assert_eq!(openvino.integer_kernels(&reverted(&["conv2"])), 1);
}

/// Every model built from one quantized model reads an op's integer weights from one buffer, computed once (the
/// candidates of a search share them); a 16-bit step of the ladder gets its own, and the 8-bit ones stay.
#[test]
fn built_models_share_each_ops_integer_weights() {
    let q = quantized_conv_relu_conv();
    let form = ModelForm::Export {
        compress_weights: true,
    };
    let weight = |model: &ModelProto| {
        Graph::new(model.clone())
            .unwrap()
            .initializer("conv1.weight_quantized")
            .unwrap()
            .clone()
    };
    let all = q
        .build(&BTreeSet::new(), RestoreMode::default(), form)
        .unwrap();
    let fp32: BTreeSet<String> = ["conv2".to_string()].into();
    let one = q.build(&fp32, RestoreMode::default(), form).unwrap();
    let (a, b) = (weight(&all), weight(&one));
    let (a_raw, b_raw) = (a.raw_data.as_ref().unwrap(), b.raw_data.as_ref().unwrap());
    assert_eq!(a_raw.as_ptr(), b_raw.as_ptr(), "one buffer, not a copy");

    let sixteen: Precisions = [("conv1".to_string(), Precision::W16A16)].into();
    let wide = weight(
        &q.build_with(&sixteen, RestoreMode::default(), form)
            .unwrap(),
    );
    assert_eq!(wide.data_type, Some(5), "int16 weights");
    assert_eq!(wide.raw_data.as_ref().unwrap().len(), 2 * a_raw.len());
    let again = weight(
        &q.build(&BTreeSet::new(), RestoreMode::default(), form)
            .unwrap(),
    );
    assert_eq!(again.raw_data.as_ref().unwrap().as_ptr(), a_raw.as_ptr());
    assert_eq!(again, a);
}

#[test]
fn int8_weights_count_a_quarter_of_their_fp32_bytes_where_the_form_stores_codes() {
    let q = quantized_conv_relu_conv();
    // conv1: 4·2·9 weights, 4 biases; conv2: 3·4·9 weights, 3 biases; 4 bytes each in FP32.
    let (w1, w2, biases) = (4 * 2 * 9 * 4, 3 * 4 * 9 * 4, (4 + 3) * 4);
    assert_eq!(q.weight_bytes(), w1 + w2 + biases);
    let compressed = ModelForm::Export {
        compress_weights: true,
    };
    assert_eq!(q.weight_bytes_in(compressed), (w1 + w2) / 4 + biases);
    let fp32_weights = ModelForm::Export {
        compress_weights: false,
    };
    assert_eq!(q.weight_bytes_in(fp32_weights), q.weight_bytes());
    assert_eq!(q.weight_bytes_in(ModelForm::Evaluation), q.weight_bytes());
}
