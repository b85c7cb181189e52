//! Quantization math and calibration statistics, independent of graphs and engines.
//!
//! [`params`] holds the arithmetic, which must match ONNX `QuantizeLinear`/`DequantizeLinear` bit for bit
//! (round half to even, saturation), because the evaluation model (fake-quantized FP32 weights) and the exported
//! model (int8 weights behind `DequantizeLinear`) must give identical numbers. [`stats`] reduces calibration
//! activations to ranges with POT's range estimators while keeping only a few numbers per sample.

mod params;
mod stats;

pub use params::{Granularity, Mode, QuantSpec, Quantizer};
pub use stats::{weight_range, Aggregator, Estimator, RangeEstimator, Statistic, TensorStats};
