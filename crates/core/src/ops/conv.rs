//! Convolutions: `Conv` and `ConvTranspose`.
//!
//! Activation on input 0, weight on 1, bias on 2. The weight's output channels are on axis 0 for `Conv`
//! (OIHW) and on axis 1 for `ConvTranspose` (IOHW). ONNX Runtime fuses a quantized `Conv` into `QLinearConv`;
//! `ConvTranspose` stays a float op over dequantized values, and its kernel is not modelled by the saturation
//! analysis. NNCF's `first_layer` overflow fix halves the first `Conv`s only.

use aquant_onnx::NodeProto;

use super::{weighted, Inputs, IntegerKernel, OpNode, QuantizedOp, Reduction};
use crate::quantize::QuantizationParams;

/// `Conv`.
pub(super) struct Conv;

impl QuantizedOp for Conv {
    fn place(&self, node: &OpNode<'_>, _params: &QuantizationParams) -> Option<Inputs> {
        weighted(node, 1, Some(2), |_| 0)
    }

    fn first_layer(&self) -> bool {
        true
    }

    fn integer_kernel(&self, _node: &NodeProto) -> Option<IntegerKernel> {
        Some(IntegerKernel::QLinearConv)
    }

    fn reduction(&self, _node: &NodeProto) -> Option<Reduction> {
        Some(Reduction::Convolution)
    }
}

/// `ConvTranspose`.
pub(super) struct ConvTranspose;

impl QuantizedOp for ConvTranspose {
    fn place(&self, node: &OpNode<'_>, _params: &QuantizationParams) -> Option<Inputs> {
        weighted(node, 1, Some(2), |_| 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::lookup;
    use crate::ops::tests::{only_node, weighted_model};

    #[test]
    fn conv_is_weighted_per_output_channel_with_its_bias() {
        let node = only_node(
            weighted_model("Conv", &[4, 2, 3, 3], true),
            &Default::default(),
        );
        assert_eq!(node.activations, vec![(0, "x".to_string())]);
        assert_eq!(node.weight.unwrap().input, 1);
        assert_eq!(node.weight_axis, Some(0));
        assert_eq!(node.bias.unwrap().input, 2);
        let conv = lookup("Conv").unwrap();
        assert!(conv.first_layer());
        assert_eq!(
            conv.integer_kernel(&NodeProto::default()),
            Some(IntegerKernel::QLinearConv)
        );
        assert_eq!(
            conv.reduction(&NodeProto::default()),
            Some(Reduction::Convolution)
        );
    }

    #[test]
    fn conv_transpose_has_its_output_channels_on_axis_1_and_no_integer_kernel() {
        let node = only_node(
            weighted_model("ConvTranspose", &[2, 4, 3, 3], false),
            &Default::default(),
        );
        assert_eq!(node.weight_axis, Some(1));
        assert!(node.bias.is_none(), "no bias input");
        let op = lookup("ConvTranspose").unwrap();
        assert!(!op.first_layer());
        assert_eq!(op.integer_kernel(&NodeProto::default()), None);
        assert_eq!(op.reduction(&NodeProto::default()), None);
    }
}
