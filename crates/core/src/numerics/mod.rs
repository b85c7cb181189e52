//! Quantization math and calibration statistics, independent of graphs and engines.
//!
//! `quantizer` holds the arithmetic, which must match ONNX `QuantizeLinear`/`DequantizeLinear` bit for bit
//! (round half to even, saturation), because the evaluation model (fake-quantized FP32 weights) and the exported
//! model (int8 weights behind `DequantizeLinear`) must give identical numbers. `stats` reduces calibration
//! activations to ranges with POT's range estimators while keeping only a few numbers per sample.

mod quantizer;
mod random;
mod stats;

pub use quantizer::{
    half_range, is_half_range, QuantSpec, Quantizer, HALF_RANGE_HIGH, HALF_RANGE_LOW,
};
pub use random::SplitMix64;
pub use stats::{weight_range, TensorStats};

/// The schema's kinds the math is parameterised by, at the paths the math's users know them under.
pub use crate::params::{Aggregator, Estimator, Granularity, Mode, RangeEstimator, Statistic};
