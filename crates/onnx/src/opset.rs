//! Raising a model's default-domain opset, op by op, with nothing left to chance.
//!
//! 16-bit QuantizeLinear/DequantizeLinear exist in the standard domain only from opset 21 (ONNX Runtime rejects
//! int16 Q/DQ at 13 and 19), so a model quantized with a 16-bit quantizer must declare opset 21. Declaring it
//! changes the meaning of every node whose operator was redefined between the model's opset and 21. For each
//! such redefinition this module knows one of three things (`Change`): the new version reads the old node the
//! same way (types or attributes added with defaults that keep the old behaviour), the node must be rewritten
//! (ReduceMean's `axes` attribute became an input at 18), or no faithful rewrite exists and the upgrade is
//! refused, naming the op. An op this table does not know is refused too: a model ONNX Runtime would run
//! differently, or reject, must never be written.
//!
//! Only upgrades from opset 13 on are handled (aquant's per-channel quantization needs 13 anyway); older models
//! go through `onnx.version_converter` first.

use crate::attr;
use crate::error::OnnxError;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};
use crate::tensor;

/// The first standard opset whose QuantizeLinear/DequantizeLinear take int16/uint16 (ONNX Runtime rejects them
/// at 13 and 19).
pub const SIXTEEN_BIT_OPSET: i64 = 21;

/// The oldest opset an upgrade starts from.
pub const UPGRADE_FROM: i64 = 13;

/// The newest opset this module knows every operator's history up to.
pub const UPGRADE_TO: i64 = 21;

/// What a redefinition of an operator means for a node written against the previous version.
#[derive(Clone, Copy)]
enum Change {
    /// The new version reads the node the same way.
    Compatible,
    /// The node must be rewritten for the new version.
    Rewrite(fn(&mut NodeProto, &mut Vec<crate::TensorProto>) -> Result<(), String>),
    /// No faithful rewrite: the upgrade is refused with this reason.
    Refuse(&'static str),
}

use Change::{Compatible, Refuse, Rewrite};

/// Every default-domain operator known, with the versions in `UPGRADE_FROM + 1 ..= UPGRADE_TO` at which it
/// was redefined, and what each redefinition means (from ONNX's Changelog.md). An operator listed with no
/// versions is unchanged over that span.
const HISTORY: &[(&str, &[(i64, Change)])] = &[
    ("Abs", &[]),
    ("Acos", &[]),
    ("Acosh", &[]),
    ("Add", &[(14, Compatible)]),
    ("And", &[]),
    ("ArgMax", &[]),
    ("ArgMin", &[]),
    ("Asin", &[]),
    ("Asinh", &[]),
    ("Atan", &[]),
    ("Atanh", &[]),
    ("AveragePool", &[(19, Compatible)]),
    (
        "BatchNormalization",
        &[(14, Rewrite(batch_norm_inference)), (15, Compatible)],
    ),
    ("BitShift", &[]),
    ("Cast", &[(19, Compatible), (21, Compatible)]),
    ("CastLike", &[(19, Compatible), (21, Compatible)]),
    ("Ceil", &[]),
    ("Celu", &[]),
    ("Clip", &[]),
    ("Concat", &[]),
    ("Constant", &[(19, Compatible), (21, Compatible)]),
    ("ConstantOfShape", &[(20, Compatible), (21, Compatible)]),
    ("Conv", &[]),
    ("ConvInteger", &[]),
    ("ConvTranspose", &[]),
    ("Cos", &[]),
    ("Cosh", &[]),
    ("CumSum", &[(14, Compatible)]),
    ("DepthToSpace", &[]),
    ("DequantizeLinear", &[(19, Compatible), (21, Compatible)]),
    ("Div", &[(14, Compatible)]),
    ("Dropout", &[]),
    ("Einsum", &[]),
    ("Elu", &[]),
    ("Equal", &[(19, Compatible)]),
    ("Erf", &[]),
    ("Exp", &[]),
    ("Expand", &[]),
    ("Flatten", &[(21, Compatible)]),
    ("Floor", &[]),
    ("Gather", &[]),
    ("GatherElements", &[]),
    ("GatherND", &[]),
    ("Gelu", &[(20, Compatible)]),
    ("Gemm", &[]),
    ("GlobalAveragePool", &[]),
    ("GlobalMaxPool", &[]),
    ("Greater", &[]),
    ("GreaterOrEqual", &[(16, Compatible)]),
    (
        "GridSample",
        &[(16, Compatible), (20, Rewrite(grid_sample_modes))],
    ),
    (
        "GroupNormalization",
        &[
            (18, Compatible),
            (
                21,
                Refuse("its scale and bias became per channel instead of per group at opset 21"),
            ),
        ],
    ),
    ("HardSigmoid", &[]),
    ("HardSwish", &[(14, Compatible)]),
    ("Hardmax", &[]),
    (
        "Identity",
        &[
            (14, Compatible),
            (16, Compatible),
            (19, Compatible),
            (21, Compatible),
        ],
    ),
    ("InstanceNormalization", &[]),
    ("IsInf", &[(20, Compatible)]),
    ("IsNaN", &[(20, Compatible)]),
    ("LRN", &[]),
    ("LayerNormalization", &[(17, Compatible)]),
    ("LeakyRelu", &[(16, Compatible)]),
    ("Less", &[]),
    ("LessOrEqual", &[(16, Compatible)]),
    ("Log", &[]),
    ("LogSoftmax", &[]),
    ("MatMul", &[]),
    ("MatMulInteger", &[]),
    ("Max", &[]),
    ("MaxPool", &[]),
    ("Mean", &[]),
    ("Min", &[]),
    ("Mish", &[(18, Compatible)]),
    ("Mod", &[]),
    ("Mul", &[(14, Compatible)]),
    ("Neg", &[]),
    ("NonZero", &[]),
    ("Not", &[]),
    ("OneHot", &[]),
    ("Or", &[]),
    ("PRelu", &[(16, Compatible)]),
    (
        "Pad",
        &[(18, Compatible), (19, Compatible), (21, Compatible)],
    ),
    ("Pow", &[(15, Compatible)]),
    ("QLinearConv", &[]),
    ("QLinearMatMul", &[(21, Compatible)]),
    ("QuantizeLinear", &[(19, Compatible), (21, Compatible)]),
    ("Range", &[]),
    ("Reciprocal", &[]),
    (
        "ReduceL1",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceL2",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceLogSum",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceLogSumExp",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceMax",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceMean",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceMin",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    (
        "ReduceProd",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    ("ReduceSum", &[(20, Compatible)]),
    (
        "ReduceSumSquare",
        &[(18, Rewrite(axes_to_input)), (20, Compatible)],
    ),
    ("Relu", &[(14, Compatible)]),
    (
        "Reshape",
        &[(14, Compatible), (19, Compatible), (21, Compatible)],
    ),
    ("Resize", &[(18, Compatible), (19, Compatible)]),
    ("Round", &[]),
    ("ScatterElements", &[(16, Compatible), (18, Compatible)]),
    ("ScatterND", &[(16, Compatible), (18, Compatible)]),
    ("Selu", &[]),
    (
        "Shape",
        &[(15, Compatible), (19, Compatible), (21, Compatible)],
    ),
    ("Sigmoid", &[]),
    ("Sign", &[]),
    ("Sin", &[]),
    ("Sinh", &[]),
    ("Size", &[(19, Compatible), (21, Compatible)]),
    ("Slice", &[]),
    ("Softmax", &[]),
    ("Softplus", &[]),
    ("Softsign", &[]),
    ("SpaceToDepth", &[]),
    ("Split", &[(18, Rewrite(split_num_outputs))]),
    ("Sqrt", &[]),
    ("Squeeze", &[(21, Compatible)]),
    ("Sub", &[(14, Compatible)]),
    ("Sum", &[]),
    ("Tan", &[]),
    ("Tanh", &[]),
    ("ThresholdedRelu", &[]),
    ("Tile", &[]),
    ("TopK", &[]),
    ("Transpose", &[(21, Compatible)]),
    ("Trilu", &[(14, Compatible)]),
    ("Unsqueeze", &[(21, Compatible)]),
    ("Where", &[(16, Compatible)]),
    ("Xor", &[]),
];

/// Sets the model's default-domain opset to `target`, rewriting the nodes whose operator changed meaning on
/// the way. Fails, leaving `model` untouched, when a node cannot be carried over faithfully.
pub fn upgrade(model: &mut ModelProto, target: i64) -> Result<(), OnnxError> {
    let from = crate::default_opset(model);
    if from >= target {
        return Ok(());
    }
    let refuse = |message: String| OnnxError::OpsetUpgrade {
        from,
        to: target,
        message,
    };
    if from < UPGRADE_FROM || target > UPGRADE_TO {
        return Err(refuse(format!(
            "aquant upgrades from opset {UPGRADE_FROM} up to {UPGRADE_TO} only; convert the model first \
             (onnx.version_converter.convert_version)"
        )));
    }
    let mut upgraded = model.clone();
    if let Some(graph) = upgraded.graph.as_mut() {
        upgrade_graph(graph, from, target).map_err(refuse)?;
    }
    set_default_opset(&mut upgraded, target);
    // Opset 21 needs IR version 10 (ONNX's versioning table).
    let ir = upgraded.ir_version.unwrap_or(0);
    upgraded.ir_version = Some(ir.max(10));
    *model = upgraded;
    Ok(())
}

/// Upgrades every default-domain node of `graph` and of its subgraphs.
fn upgrade_graph(graph: &mut GraphProto, from: i64, to: i64) -> Result<(), String> {
    let mut added = Vec::new();
    for node in &mut graph.node {
        if !matches!(node.domain.as_deref(), None | Some("") | Some("ai.onnx")) {
            continue;
        }
        for attribute in &mut node.attribute {
            if let Some(body) = attribute.g.as_mut() {
                upgrade_graph(body, from, to)?;
            }
            for body in &mut attribute.graphs {
                upgrade_graph(body, from, to)?;
            }
        }
        upgrade_node(node, from, to, &mut added)?;
    }
    graph.initializer.extend(added);
    Ok(())
}

/// Applies every redefinition of `node`'s operator between `from` (exclusive) and `to` (inclusive).
fn upgrade_node(
    node: &mut NodeProto,
    from: i64,
    to: i64,
    added: &mut Vec<crate::TensorProto>,
) -> Result<(), String> {
    let op = node.op_type.clone().unwrap_or_default();
    let name = node.name.clone().unwrap_or_default();
    let Some((_, versions)) = HISTORY.iter().find(|(known, _)| *known == op) else {
        return Err(format!(
            "node '{name}' ({op}): aquant does not know how {op} changed up to opset {to}, so it cannot \
             carry it over faithfully"
        ));
    };
    for (version, change) in versions.iter().filter(|(v, _)| *v > from && *v <= to) {
        match change {
            Compatible => {}
            Rewrite(rewrite) => rewrite(node, added)
                .map_err(|reason| format!("node '{name}' ({op}) at opset {version}: {reason}"))?,
            Refuse(reason) => return Err(format!("node '{name}' ({op}): {reason}")),
        }
    }
    Ok(())
}

fn set_default_opset(model: &mut ModelProto, version: i64) {
    let default = model
        .opset_import
        .iter_mut()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")));
    match default {
        Some(opset) => opset.version = Some(version),
        None => model.opset_import.push(OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(version),
        }),
    }
}

/// Reduce* at 18: the `axes` attribute becomes the optional second input (an int64 initializer).
fn axes_to_input(node: &mut NodeProto, added: &mut Vec<crate::TensorProto>) -> Result<(), String> {
    let Some(axes) = attr::ints(node, "axes") else {
        return Ok(()); // No axes: reduce over all of them, at either version.
    };
    node.attribute.retain(|a| a.name.as_deref() != Some("axes"));
    let name = format!(
        "{}_axes_opset18",
        node.name.clone().unwrap_or_else(|| node.output.join("_"))
    );
    added.push(tensor::from_i64(&name, &[axes.len()], &axes));
    node.input.truncate(1);
    node.input.push(name);
    Ok(())
}

/// BatchNormalization at 14: the optional training outputs went away; an inference node (one output, no
/// `spatial`, which 9 already removed) reads the same.
fn batch_norm_inference(
    node: &mut NodeProto,
    _: &mut Vec<crate::TensorProto>,
) -> Result<(), String> {
    match node.output.iter().filter(|o| !o.is_empty()).count() {
        1 => Ok(()),
        n => Err(format!(
            "{n} outputs: the training-mode outputs changed meaning at opset 14"
        )),
    }
}

/// Split at 18: without a `split` input, the number of outputs must be given as `num_outputs`.
fn split_num_outputs(node: &mut NodeProto, _: &mut Vec<crate::TensorProto>) -> Result<(), String> {
    let has_split = node.input.get(1).is_some_and(|s| !s.is_empty());
    if !has_split && attr::int(node, "num_outputs").is_none() {
        node.attribute
            .push(attr::make_int("num_outputs", node.output.len() as i64));
    }
    Ok(())
}

/// GridSample at 20: the modes `bilinear` and `bicubic` were renamed `linear` and `cubic`.
fn grid_sample_modes(node: &mut NodeProto, _: &mut Vec<crate::TensorProto>) -> Result<(), String> {
    for attribute in &mut node.attribute {
        if attribute.name.as_deref() == Some("mode") {
            let renamed = match attribute.s.as_deref() {
                Some(b"bilinear") => Some(b"linear".to_vec()),
                Some(b"bicubic") => Some(b"cubic".to_vec()),
                _ => None,
            };
            if renamed.is_some() {
                attribute.s = renamed;
                attribute.r#type = Some(AttributeType::String as i32);
            }
        }
    }
    Ok(())
}

/// Whether `op` is in the table (for tests and callers that want to check a model before upgrading).
pub fn known(op: &str) -> bool {
    HISTORY.iter().any(|(known, _)| *known == op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::AttributeProto;

    fn model(opset: i64, nodes: Vec<NodeProto>) -> ModelProto {
        ModelProto {
            ir_version: Some(7),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                node: nodes,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("{op}_0")),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attributes,
            ..Default::default()
        }
    }

    fn ints(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: Some(name.into()),
            ints: values.to_vec(),
            r#type: Some(AttributeType::Ints as i32),
            ..Default::default()
        }
    }

    #[test]
    fn the_table_is_sorted_and_every_version_is_in_the_upgrade_span() {
        for pair in HISTORY.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (op, versions) in HISTORY {
            for (v, _) in *versions {
                assert!((UPGRADE_FROM + 1..=UPGRADE_TO).contains(v), "{op} {v}");
            }
        }
    }

    #[test]
    fn reduce_axes_become_an_input_and_the_opset_and_ir_version_rise() {
        let mut m = model(
            13,
            vec![node(
                "ReduceMean",
                &["x"],
                &["y"],
                vec![ints("axes", &[2, 3])],
            )],
        );
        upgrade(&mut m, 21).unwrap();
        assert_eq!(crate::default_opset(&m), 21);
        assert_eq!(m.ir_version, Some(10));
        let graph = m.graph.unwrap();
        let reduce = &graph.node[0];
        assert!(reduce.attribute.is_empty());
        assert_eq!(reduce.input.len(), 2);
        let axes = graph
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(&reduce.input[1]));
        assert_eq!(tensor::to_i64(axes.unwrap()).unwrap(), vec![2, 3]);
    }

    #[test]
    fn an_op_that_cannot_be_carried_over_is_refused_by_name_and_the_model_is_untouched() {
        let mut m = model(
            18,
            vec![node("GroupNormalization", &["x", "s", "b"], &["y"], vec![])],
        );
        let before = m.clone();
        let error = upgrade(&mut m, 21).unwrap_err().to_string();
        assert!(
            error.contains("GroupNormalization") && error.contains("per channel"),
            "{error}"
        );
        assert_eq!(m, before);
        let mut m = model(13, vec![node("FancyNewOp", &["x"], &["y"], vec![])]);
        let error = upgrade(&mut m, 21).unwrap_err().to_string();
        assert!(error.contains("FancyNewOp"), "{error}");
    }

    #[test]
    fn a_split_without_sizes_gets_its_output_count() {
        let mut m = model(13, vec![node("Split", &["x"], &["a", "b", "c"], vec![])]);
        upgrade(&mut m, 21).unwrap();
        assert_eq!(attr::int(&m.graph.unwrap().node[0], "num_outputs"), Some(3));
    }

    #[test]
    fn old_models_are_sent_to_the_version_converter() {
        let mut m = model(11, vec![node("Relu", &["x"], &["y"], vec![])]);
        let error = upgrade(&mut m, 21).unwrap_err().to_string();
        assert!(error.contains("version_converter"), "{error}");
    }
}
