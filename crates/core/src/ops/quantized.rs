//! Ops of an already-quantized model.
//!
//! aquant quantizes FP32 models: a model holding any of these was quantized before, and quantizing it again
//! would stack a second set of quantizers on the first. Placement refuses it with a clear error.

/// Ops that mean the model is already quantized.
const ALREADY_QUANTIZED: &[&str] = &[
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "DynamicQuantizeLinear",
];

/// Whether an op of type `op_type` means the model is already quantized.
pub fn is_already_quantized(op_type: &str) -> bool {
    ALREADY_QUANTIZED.contains(&op_type)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::weighted_model;
    use crate::quantize::place;
    use crate::Error;

    #[test]
    fn integer_ops_mean_the_model_is_already_quantized() {
        assert!(is_already_quantized("QLinearConv"));
        assert!(!is_already_quantized("Conv"));
        let graph = weighted_model("MatMulInteger", &[4, 8], false);
        assert!(matches!(
            place(&graph, &Default::default()),
            Err(Error::UnsupportedOp { op_type, .. }) if op_type == "MatMulInteger"
        ));
    }
}
