//! What the saved model is made of: its ops by precision and its size against the FP32 model's, for the
//! report (a person reading it wants to see what quantization bought, not only what it cost).

use aquant_onnx::ModelProto;
use serde::Serialize;

use super::{Precision, Precisions, QuantizedModel};

/// The FP32 model's ops by the precision they run in, in the saved model (Q/DQ nodes not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpsByPrecision {
    /// Quantized ops still in int8.
    pub int8: usize,
    /// Quantized ops with a 16-bit quantizer (weights or inputs): the precision ladder's 16-bit steps, GNA,
    /// or a model quantized to 16 bits.
    pub int16: usize,
    /// Quantized ops the search returned to FP32.
    pub fp32_reverted: usize,
    /// Ops never quantized (activations, reshapes, pooling...), which run in FP32.
    pub fp32_other: usize,
}

impl OpsByPrecision {
    /// The ops of `quantized`'s FP32 graph, its placed ops at `precisions` (absent: as quantized).
    pub fn of(quantized: &QuantizedModel, precisions: &Precisions) -> Self {
        let placement = quantized.placement();
        let mut ops = OpsByPrecision {
            int8: 0,
            int16: 0,
            fp32_reverted: 0,
            fp32_other: quantized
                .fp32()
                .nodes()
                .len()
                .saturating_sub(placement.nodes.len()),
        };
        for node in &placement.nodes {
            let precision = precisions
                .get(&node.name)
                .copied()
                .unwrap_or(Precision::Base);
            let quantized_16 = quantized
                .weight_params(&node.name)
                .is_some_and(|q| q.bits == 16)
                || node
                    .activations
                    .iter()
                    .any(|(_, t)| quantized.activation_params(t).is_some_and(|q| q.bits == 16));
            match precision {
                Precision::Fp32 => ops.fp32_reverted += 1,
                p if p.is_sixteen_bit() || quantized_16 => ops.int16 += 1,
                _ => ops.int8 += 1,
            }
        }
        ops
    }
}

/// Encoded sizes, in bytes, with every weight inline (the saved model's is its file size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelBytes {
    /// The FP32 model.
    pub fp32: usize,
    /// The saved quantized model.
    pub int8: usize,
}

impl ModelBytes {
    /// The sizes of `fp32` and `saved` as ONNX files.
    pub fn of(fp32: &ModelProto, saved: &ModelProto) -> Self {
        ModelBytes {
            fp32: aquant_onnx::encoded_len(fp32),
            int8: aquant_onnx::encoded_len(saved),
        }
    }
}
