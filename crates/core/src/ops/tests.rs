//! Shared helpers of the op family tests, and the registry's own tests.

use super::*;
use crate::builder::ModelBuilder;
use crate::quantize::{place, Deploy, ModelType, QuantizedNode, TargetDevice};

/// `x → op(x, w[, b]) → y`: one node called `node` with an initializer weight of `weight_dims` and, with
/// `bias`, an initializer bias of `weight_dims[0]` values.
pub(super) fn weighted_model(op_type: &str, weight_dims: &[usize], bias: bool) -> Graph {
    let len = weight_dims.iter().product();
    let weight: Vec<f32> = (0..len).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut b = ModelBuilder::new(13)
        .input("x", &[None, Some(2), Some(4), Some(4)])
        .initializer("w", weight_dims, &weight);
    let mut inputs = vec!["x", "w"];
    if bias {
        b = b.initializer("b", &[weight_dims[0]], &vec![0.5; weight_dims[0]]);
        inputs.push("b");
    }
    let b = b.node(op_type, "node", &inputs, &["y"]).output_untyped("y");
    Graph::new(b.build()).unwrap()
}

/// `op(x, y) → z` between two graph inputs (`y` = `x` with `same_input`).
pub(super) fn binary_model(op_type: &str, same_input: bool) -> Graph {
    let second = if same_input { "x" } else { "y" };
    let b = ModelBuilder::new(13)
        .input("x", &[None, Some(4), Some(4)])
        .input("y", &[None, Some(4), Some(4)])
        .node(op_type, "node", &["x", second], &["z"])
        .output_untyped("z");
    Graph::new(b.build()).unwrap()
}

/// The node called `node` as placed under `params`; `None` when it stays FP32.
pub(super) fn placed(graph: &Graph, params: &QuantizationParams) -> Option<QuantizedNode> {
    place(graph, params).unwrap().node("node").cloned()
}

/// The node called `node`, which must be placed under `params`.
pub(super) fn only_node(graph: Graph, params: &QuantizationParams) -> QuantizedNode {
    placed(&graph, params).expect("the node is quantized")
}

/// Every combination of target device and model type.
pub(super) fn all_params() -> Vec<QuantizationParams> {
    let devices = [
        TargetDevice::Any,
        TargetDevice::Cpu,
        TargetDevice::Gpu,
        TargetDevice::Npu,
    ];
    let model_types = [None, Some(ModelType::Transformer)];
    let engines = [None, Some(Deploy::Ort), Some(Deploy::Openvino)];
    devices
        .into_iter()
        .flat_map(|target_device| model_types.map(move |model_type| (target_device, model_type)))
        .flat_map(|(target_device, model_type)| {
            engines.map(move |deploy| QuantizationParams {
                target_device,
                model_type,
                deploy,
                ..Default::default()
            })
        })
        .collect()
}

#[test]
fn placement_quantizes_registered_op_types_only() {
    // Weighted and binary forms of registered ops and of ops aquant leaves in floating point.
    let op_types = [
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "Add",
        "AveragePool",
        "GlobalAveragePool",
        "Mul",
        "Sub",
        "MaxPool",
        "Concat",
    ];
    let mut quantized = std::collections::BTreeSet::new();
    for op_type in op_types {
        for graph in [
            weighted_model(op_type, &[4, 2, 3, 3], true),
            binary_model(op_type, false),
        ] {
            for params in all_params() {
                if let Some(node) = placed(&graph, &params) {
                    assert!(lookup(&node.op_type).is_some(), "{op_type} is placed");
                    quantized.insert(node.op_type);
                }
            }
        }
    }
    let registered: std::collections::BTreeSet<String> =
        REGISTRY.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(
        quantized, registered,
        "every registered op is placed somewhere"
    );
}

#[test]
fn placement_names_no_op_type() {
    // Op knowledge lives in the op families: placement asks the registry.
    let source = include_str!("../quantize/placement.rs");
    for (op_type, _) in REGISTRY {
        assert!(
            !source.contains(&format!("\"{op_type}\"")),
            "placement.rs special-cases {op_type}"
        );
    }
}

#[test]
fn integer_kernels_broadcast_per_channel_factors_over_their_output() {
    assert_eq!(
        IntegerKernel::QLinearConv.channel_shape(8, 4),
        vec![8, 1, 1]
    );
    assert_eq!(
        IntegerKernel::QLinearConv.channel_shape(1, 4),
        Vec::<usize>::new()
    );
    assert_eq!(IntegerKernel::QGemm.channel_shape(8, 2), vec![8]);
    assert!(IntegerKernel::QGemm.float_output());
    assert!(!IntegerKernel::QLinearConv.float_output());
}
