//! Reads an OpenVINO IR (the `.xml` graph and its `.bin` weights) into aquant's ONNX graph, without
//! OpenVINO.
//!
//! The reference tool (POT) and NNCF take IR models; aquant quantizes ONNX graphs. An IR is a graph of
//! OpenVINO opset operations whose Const layers point at byte ranges of the `.bin`: each layer becomes the
//! ONNX node(s) computing the same thing (see `ops` for the op set), each Const an initializer, each
//! Parameter and Result a graph input and output, tensors keep the names the IR gives them. f16 weights behind
//! a Convert (IRs saved with `compress_to_fp16`) are widened at read time, so aquant quantizes f32 weights as
//! it would from ONNX. IR versions 10 and 11 are read. Every malformed input — bad XML, an op outside the op
//! set, a `.bin` too short for the Consts that point into it — is one [`IrError`], never a panic.
#![deny(missing_docs)]

mod consts;
mod graph;
mod ops;
mod write;
mod xml;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use aquant_onnx::{Bytes, ModelProto};

pub use graph::OPSET;
pub use write::{write_ir, WrittenIr};
pub use xml::VERSIONS;

/// Why an IR could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IrError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The `.xml` is not well-formed XML.
    #[error("the IR .xml is not well-formed XML: {0}")]
    Xml(String),
    /// The XML is not an IR aquant understands.
    #[error("malformed IR: {0}")]
    Malformed(String),
    /// An IR version other than 10 or 11.
    #[error("IR version {0} is not supported (versions 10 and 11 are)")]
    Version(u32),
    /// An operation outside the supported op set.
    #[error("IR operation '{op}' (layer '{layer}') is not supported")]
    UnknownOp {
        /// The op type.
        op: String,
        /// The layer's name.
        layer: String,
    },
    /// The `.bin` is longer than the `.xml`'s Consts read.
    #[error(
        "the IR .bin does not belong to this .xml: its Consts read {used} bytes, the .bin has {bin}"
    )]
    Mismatch {
        /// Bytes the Consts read (the end of the furthest).
        used: usize,
        /// The `.bin`'s size.
        bin: usize,
    },
    /// A model with something IR output does not write.
    #[error("cannot write the model as an OpenVINO IR: {0}")]
    Unwritable(String),
    /// A Const points past the end of the `.bin`.
    #[error(
        "the IR .bin is truncated or does not belong to this .xml: Const '{layer}' needs bytes \
         {offset}..{} but the .bin has {bin}", offset + size
    )]
    Truncated {
        /// The Const layer.
        layer: String,
        /// Its offset.
        offset: usize,
        /// Its size.
        size: usize,
        /// The `.bin`'s size.
        bin: usize,
    },
}

/// Whether `path` names an IR graph (`.xml`), which [`load_ir`] reads, rather than an ONNX model.
pub fn is_ir(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
}

/// The weights file of IR graph `xml` when none is given: the `.bin` beside it, as OpenVINO looks for it.
pub fn weights_beside(xml: &Path) -> PathBuf {
    xml.with_extension("bin")
}

/// Converts an IR given as its XML text and its weights (copied once: the model's initializers are slices of
/// that copy).
pub fn read_ir(xml: &str, bin: &[u8]) -> Result<ModelProto, IrError> {
    graph::onnx_model(&xml::parse(xml)?, &Bytes::copy_from_slice(bin))
}

/// Reads the IR graph at `xml` with its weights `bin` (default: [`weights_beside`]).
pub fn load_ir(xml: &Path, bin: Option<&Path>) -> Result<ModelProto, IrError> {
    let bin = bin.map_or_else(|| weights_beside(xml), Path::to_path_buf);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IrError::Io { path, source }
    };
    let text = std::fs::read_to_string(xml).map_err(io(xml))?;
    // Mapped, not read: every initializer of the model is a slice of the mapping, so the weights are never
    // copied on the way in, and pages are read only when a stage touches them.
    let weights = aquant_onnx::map_file(&bin).map_err(io(&bin))?;
    graph::onnx_model(&xml::parse(&text)?, &weights)
}
