//! aquant: accuracy-aware post-training INT8 quantization of ONNX models.
#![deny(missing_docs)]

mod error;
mod tensor;

pub mod data;

pub use error::{Error, Result};
pub use tensor::Tensor;
