//! What the saved model is made of: its ops by precision and its size against the FP32 model's, for the
//! report (a person reading it wants to see what quantization bought, not only what it cost).

use aquant_onnx::ModelProto;
use serde::Serialize;

use super::QuantizedModel;

/// The FP32 model's ops by the precision they run in, in the saved model (Q/DQ nodes not counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpsByPrecision {
    /// Quantized ops still in int8.
    pub int8: usize,
    /// Quantized ops the search returned to FP32.
    pub fp32_reverted: usize,
    /// Ops never quantized (activations, reshapes, pooling...), which run in FP32.
    pub fp32_other: usize,
}

impl OpsByPrecision {
    /// The ops of `quantized`'s FP32 graph, `reverted` of its placed ops left in FP32.
    pub fn of(quantized: &QuantizedModel, reverted: usize) -> Self {
        let placed = quantized.placement().nodes.len();
        let reverted = reverted.min(placed);
        OpsByPrecision {
            int8: placed - reverted,
            fp32_reverted: reverted,
            fp32_other: quantized.fp32().nodes().len().saturating_sub(placed),
        }
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
            fp32: aquant_onnx::encode_model(fp32).len(),
            int8: aquant_onnx::encode_model(saved).len(),
        }
    }
}
