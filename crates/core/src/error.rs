//! The one error type of the library.
//!
//! Every variant carries enough context for a one-line message a user can act on: node errors name the node
//! and its op type, data errors name the sample and the input, I/O errors name the path. The binary maps
//! these to exit status 2; nothing in the library panics on bad input.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in aquant.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, decoding or writing an ONNX file failed.
    #[error(transparent)]
    Onnx(#[from] aquant_onnx::OnnxError),
    /// Reading an OpenVINO IR (.xml + .bin) failed.
    #[error(transparent)]
    Ir(#[from] aquant_ir::IrError),
    /// The model is structurally wrong (cycle, dangling input, missing shape…).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// A node uses an op or attribute aquant (or its engine) cannot handle.
    #[error("unsupported op: node '{node}' ({op_type}): {reason}")]
    UnsupportedOp {
        /// Node name.
        node: String,
        /// ONNX op type.
        op_type: String,
        /// Why it is unsupported.
        reason: String,
    },
    /// The inference engine failed to prepare or run a model.
    #[error("{backend} backend: {message}")]
    Backend {
        /// Engine name.
        backend: String,
        /// Engine message, flattened to one line.
        message: String,
    },
    /// The dataset or its spec is wrong (missing file, wrong shape, NaN, label count…).
    #[error("data: {0}")]
    Data(String),
    /// A metric failed or produced a non-finite value.
    #[error("metric '{name}': {message}")]
    Metric {
        /// Metric name.
        name: String,
        /// What went wrong.
        message: String,
    },
    /// A configuration value is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A report could not be read or drawn (a malformed `report.json`, say).
    #[error("report: {0}")]
    Report(String),
    /// An executor's worker failed (it names the node), or the executor itself did.
    #[error("executor: {0}")]
    Executor(String),
    /// The run was interrupted (Ctrl-C) before it had a result to save.
    #[error("interrupted")]
    Interrupted,
    /// A file-system operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done ("reading", "writing"…).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::Data`].
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(message.into())
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
