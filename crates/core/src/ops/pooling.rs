//! Average pooling: `AveragePool` and `GlobalAveragePool`.
//!
//! Unlike max pooling, which commutes with quantization and needs no quantizer, averaging computes new
//! values: CPU plugins run it in INT8 on a quantized input, so it is quantized for the CPU target only.

use super::{Inputs, OpNode, QuantizedOp};
use crate::quantize::{QuantizationParams, TargetDevice};

/// `AveragePool` and `GlobalAveragePool`.
pub(super) struct AveragePool;

impl QuantizedOp for AveragePool {
    fn place(&self, node: &OpNode<'_>, params: &QuantizationParams) -> Option<Inputs> {
        (params.target_device == TargetDevice::Cpu && node.is_activation(0))
            .then(|| Inputs::activations(vec![0]))
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::tests::{all_params, binary_model, placed};
    use crate::quantize::TargetDevice;

    #[test]
    fn average_pooling_is_quantized_on_its_input_for_cpu_only() {
        for op_type in ["AveragePool", "GlobalAveragePool"] {
            let graph = binary_model(op_type, false);
            for params in all_params() {
                let node = placed(&graph, &params);
                assert_eq!(
                    node.is_some(),
                    params.target_device == TargetDevice::Cpu,
                    "{op_type} {params:?}"
                );
                if let Some(node) = node {
                    assert_eq!(node.activations, vec![(0, "x".to_string())]);
                }
            }
        }
    }
}
