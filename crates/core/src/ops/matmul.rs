//! Matrix products: `Gemm` and `MatMul`.
//!
//! Activation on input 0, weight on input 1. `Gemm` has a bias on input 2 and its output channels on the
//! weight's axis 1, or axis 0 with `transB`; `MatMul`'s are on the weight's last axis. In transformer mode a
//! `MatMul` between two activations (attention scores) is quantized too, on both inputs. ONNX Runtime fuses a
//! quantized `Gemm` (`alpha` = `beta` = 1) into `QGemm`; `MatMul` (`QLinearMatMul`, `MatMulIntegerToFloat`)
//! keeps the QDQ simulation. Both reduce the activation's last axis in the int8 GEMM kernel. A `MatMul` with a
//! constant weight can also quantize its input at run time (the ladder's `dynamic` step).

use aquant_onnx::{attr, NodeProto};

use super::{weighted, Inputs, IntegerKernel, OpNode, QuantizedOp, Reduction};
use crate::quantize::{ModelType, QuantizationParams};

/// `Gemm`: `alpha · A' · B' + beta · C`.
pub(super) struct Gemm;

fn transposed(node: &NodeProto, attribute: &str) -> bool {
    attr::int(node, attribute).unwrap_or(0) != 0
}

impl QuantizedOp for Gemm {
    fn place(&self, node: &OpNode<'_>, _params: &QuantizationParams) -> Option<Inputs> {
        let axis = if transposed(node.proto(), "transB") {
            0
        } else {
            1
        };
        weighted(node, 1, Some(2), |_| axis)
    }

    fn integer_kernel(&self, node: &NodeProto) -> Option<IntegerKernel> {
        let unit = |name: &str| attr::float(node, name).is_none_or(|v| v == 1.0);
        (unit("alpha") && unit("beta")).then_some(IntegerKernel::QGemm)
    }

    fn reduction(&self, node: &NodeProto) -> Option<Reduction> {
        Some(Reduction::Dense {
            transposed_activation: transposed(node, "transA"),
            transposed_weight: transposed(node, "transB"),
        })
    }
}

/// `MatMul`.
pub(super) struct MatMul;

impl QuantizedOp for MatMul {
    fn place(&self, node: &OpNode<'_>, params: &QuantizationParams) -> Option<Inputs> {
        weighted(node, 1, None, |rank| rank.saturating_sub(1)).or_else(|| {
            let transformer = params.model_type == Some(ModelType::Transformer);
            (transformer && node.is_activation(0) && node.is_activation(1))
                .then(|| Inputs::activations(vec![0, 1]))
        })
    }

    /// ONNX Runtime fuses `DynamicQuantizeLinear → DequantizeLinear → MatMul ← DequantizeLinear(int8 weight)`
    /// into `DynamicQuantizeMatMul` (checked by tests/ort_fusion.rs).
    fn quantizes_input_at_run_time(&self) -> bool {
        true
    }

    fn reduction(&self, _node: &NodeProto) -> Option<Reduction> {
        Some(Reduction::Dense {
            transposed_activation: false,
            transposed_weight: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::lookup;
    use crate::ops::tests::{all_params, binary_model, only_node, placed, weighted_model};

    fn gemm(trans_b: bool) -> NodeProto {
        NodeProto {
            op_type: Some("Gemm".into()),
            attribute: vec![attr::make_int("transB", trans_b as i64)],
            ..Default::default()
        }
    }

    #[test]
    fn gemm_channels_follow_trans_b_and_it_keeps_its_bias() {
        let graph = weighted_model("Gemm", &[4, 8], true);
        let node = only_node(graph, &Default::default());
        assert_eq!(node.weight_axis, Some(1));
        assert_eq!(node.bias.unwrap().input, 2);
        let mut model = weighted_model("Gemm", &[4, 8], true).model().clone();
        let proto = &mut model.graph.as_mut().unwrap().node[0];
        proto.attribute.push(attr::make_int("transB", 1));
        let node = only_node(crate::Graph::new(model).unwrap(), &Default::default());
        assert_eq!(node.weight_axis, Some(0));
    }

    #[test]
    fn gemm_is_a_qgemm_unless_scaled() {
        let op = lookup("Gemm").unwrap();
        assert_eq!(op.integer_kernel(&gemm(false)), Some(IntegerKernel::QGemm));
        let mut scaled = gemm(false);
        scaled.attribute.push(aquant_onnx::AttributeProto {
            name: Some("alpha".into()),
            f: Some(0.5),
            ..Default::default()
        });
        assert_eq!(op.integer_kernel(&scaled), None);
        assert_eq!(
            op.reduction(&gemm(true)),
            Some(Reduction::Dense {
                transposed_activation: false,
                transposed_weight: true
            })
        );
    }

    #[test]
    fn matmul_weight_channels_are_its_last_axis_and_it_has_no_bias() {
        let node = only_node(
            weighted_model("MatMul", &[2, 4, 8], true),
            &Default::default(),
        );
        assert_eq!(node.weight_axis, Some(2));
        assert!(node.bias.is_none(), "MatMul has no bias input");
        assert_eq!(
            lookup("MatMul")
                .unwrap()
                .integer_kernel(&NodeProto::default()),
            None
        );
    }

    #[test]
    fn matmul_between_activations_is_quantized_in_transformer_mode_only() {
        let graph = binary_model("MatMul", false);
        for params in all_params() {
            let transformer = params.model_type == Some(ModelType::Transformer);
            let node = placed(&graph, &params);
            assert_eq!(node.is_some(), transformer, "{params:?}");
            if let Some(node) = node {
                assert_eq!(node.activations.len(), 2);
                assert!(node.weight.is_none());
            }
        }
    }
}
