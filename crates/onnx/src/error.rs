//! Errors of ONNX I/O, each naming the file or tensor concerned.

use std::path::PathBuf;

/// What can go wrong reading or writing ONNX.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// "reading" or "writing".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX model (truncated, corrupt, or another format).
    #[error("'{}' is not a valid ONNX model (truncated or corrupt?): {message}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the protobuf decoder said.
        message: String,
    },
    /// The model declares an opset aquant does not handle.
    #[error("unsupported opset: {domain} version {version} (supported: {supported})")]
    UnsupportedOpset {
        /// Operator-set domain ("ai.onnx" for the default one).
        domain: String,
        /// Declared version.
        version: i64,
        /// Supported range, for the message.
        supported: String,
    },
    /// The model's opset cannot be raised faithfully (an op whose meaning changed and cannot be rewritten).
    #[error("cannot raise the model's opset from {from} to {to}: {message}")]
    OpsetUpgrade {
        /// The model's default-domain opset.
        from: i64,
        /// The opset asked for.
        to: i64,
        /// Which node, and why.
        message: String,
    },
    /// A tensor stored in an external file could not be resolved.
    #[error("external data of tensor '{tensor}' ({}): {message}", path.display())]
    ExternalData {
        /// Tensor name.
        tensor: String,
        /// External file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A tensor's contents do not match its declared type or shape.
    #[error("tensor '{name}': {message}")]
    InvalidTensor {
        /// Tensor name.
        name: String,
        /// What was wrong.
        message: String,
    },
}
