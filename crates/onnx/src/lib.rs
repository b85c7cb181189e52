//! ONNX model I/O for aquant.
//!
//! The protobuf types are generated once from the vendored `proto/onnx.proto` (proto2) by
//! `tools/gen-onnx-proto` and checked in, so building needs only `prost`, never `protoc`. proto2 makes every
//! scalar an `Option`; [`tensor`] and [`attr`] hide that for the few fields aquant reads and writes.
//!
//! Loading is lossless: a decode → encode round trip keeps the graph and initializers byte-identical, because
//! prost keeps every known field and aquant only ever edits what it means to. External data is resolved on
//! load (the in-memory model is self-contained; its tensors are slices of the memory-mapped files) and written
//! inline, or in ONNX's external-data layout, on save.
#![deny(missing_docs)]

mod error;
mod external;
mod fs;
mod io;

pub mod attr;
pub mod opset;
pub mod tensor;

/// The generated ONNX protobuf types (package `onnx`).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    include!("generated/onnx.rs");
}

pub use error::OnnxError;
pub use external::{
    external_data_path, map_file, save_model_external, INLINE_BELOW, PROTOBUF_LIMIT,
};
pub use fs::{write_atomic, write_atomic_with};
pub use io::{
    decode_model, default_opset, encode_model, encoded_len, load, load_model, save_model,
    LoadedModel, SUPPORTED_OPSETS,
};
/// The shared byte buffer tensors' `raw_data` is: a slice of a mapped file or of an owned buffer.
pub use prost::bytes::Bytes;
pub use proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
};
