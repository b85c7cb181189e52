//! Elementwise ops between activations: `Add`.
//!
//! A residual `Add` of two different activations runs in INT8 when both inputs are quantized: CPU plugins
//! (and transformer models' runtimes) add in integers, other devices in float, where a quantizer would only
//! cost accuracy. ONNX Runtime adds in integers (`QLinearAdd`) on every device, and needs to: a Conv whose
//! output also feeds a float Add cannot become a `QLinearConv`, so deployed there the Add is always quantized.

use super::{Inputs, OpNode, QuantizedOp};
use crate::quantize::{Deploy, ModelType, QuantizationParams, TargetDevice};

/// `Add`.
pub(super) struct Add;

impl QuantizedOp for Add {
    fn place(&self, node: &OpNode<'_>, params: &QuantizationParams) -> Option<Inputs> {
        let transformer = params.model_type == Some(ModelType::Transformer);
        let ort = params.deploy_engine() == Deploy::Ort;
        if !(transformer || ort || params.target_device == TargetDevice::Cpu) {
            return None;
        }
        let distinct = node.input(0) != node.input(1);
        (node.is_activation(0) && node.is_activation(1) && distinct)
            .then(|| Inputs::activations(vec![0, 1]))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{all_params, binary_model, placed};
    use crate::quantize::{Deploy, ModelType, TargetDevice};

    #[test]
    fn add_of_two_activations_is_quantized_on_cpu_in_transformers_and_for_onnx_runtime() {
        let graph = binary_model("Add", false);
        for params in all_params() {
            let expected = params.target_device == TargetDevice::Cpu
                || params.model_type == Some(ModelType::Transformer)
                || params.deploy_engine() == Deploy::Ort;
            let node = placed(&graph, &params);
            assert_eq!(node.is_some(), expected, "{params:?}");
            if let Some(node) = node {
                let inputs: Vec<usize> = node.activations.iter().map(|(i, _)| *i).collect();
                assert_eq!(inputs, vec![0, 1]);
                assert!(node.weight.is_none() && node.bias.is_none());
            }
        }
    }

    #[test]
    fn add_of_a_tensor_to_itself_stays_in_float() {
        let graph = binary_model("Add", true);
        assert!(all_params().iter().all(|p| placed(&graph, p).is_none()));
    }
}
