//! Average pooling: `AveragePool` and `GlobalAveragePool`.
//!
//! Unlike max pooling, which commutes with quantization and needs no quantizer, averaging computes new
//! values: CPU plugins run it in INT8 on a quantized input, so it is quantized for the CPU target, and for
//! ONNX Runtime, which runs it as `QLinearAveragePool` / `QLinearGlobalAveragePool` and otherwise leaves the
//! Conv before it in float (its output would have a float reader).

use super::{Inputs, OpNode, QuantizedOp};
use crate::quantize::{Deploy, QuantizationParams, TargetDevice};

/// `AveragePool` and `GlobalAveragePool`.
pub(super) struct AveragePool;

impl QuantizedOp for AveragePool {
    fn place(&self, node: &OpNode<'_>, params: &QuantizationParams) -> Option<Inputs> {
        let integer =
            params.target_device == TargetDevice::Cpu || params.deploy_engine() == Deploy::Ort;
        (integer && node.is_activation(0)).then(|| Inputs::activations(vec![0]))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{all_params, binary_model, placed};
    use crate::quantize::{Deploy, TargetDevice};

    #[test]
    fn average_pooling_is_quantized_on_its_input_for_cpu_and_onnx_runtime_only() {
        for op_type in ["AveragePool", "GlobalAveragePool"] {
            let graph = binary_model(op_type, false);
            for params in all_params() {
                let node = placed(&graph, &params);
                assert_eq!(
                    node.is_some(),
                    params.target_device == TargetDevice::Cpu
                        || params.deploy_engine() == Deploy::Ort,
                    "{op_type} {params:?}"
                );
                if let Some(node) = node {
                    assert_eq!(node.activations, vec![(0, "x".to_string())]);
                }
            }
        }
    }
}
