//! Loading and saving models.
//!
//! Invariants: [`load_model`] returns a self-contained model (external data resolved into `raw_data`) whose
//! default-domain opset is within [`SUPPORTED_OPSETS`]; [`save_model`] and [`save_model_external`] write
//! atomically and never in place of a file they were not asked to replace.
//!
//! A model file is memory-mapped, not read: decoding from the mapping leaves every tensor's `raw_data` a slice
//! of it (prost decodes `Bytes` fields without copying), so a model's weights are in memory once, as pages of
//! its files, however many stages hold the model.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use prost::bytes::Buf;
use prost::Message;

use crate::error::OnnxError;
use crate::external;
use crate::fs::write_atomic;
use crate::proto::ModelProto;

/// Default-domain (`ai.onnx`) opset versions aquant reads and writes. 10 is the first with
/// `QuantizeLinear`; 21 is the first with 16-bit `QuantizeLinear`, and the newest tract executes.
pub const SUPPORTED_OPSETS: RangeInclusive<i64> = 7..=21;

/// A model read from a file, with the external data files it read.
#[derive(Debug)]
pub struct LoadedModel {
    /// The model, self-contained.
    pub model: ModelProto,
    /// The external data files its tensors point into (empty: every tensor was inline).
    pub external_files: Vec<PathBuf>,
}

/// Maps, decodes and checks the model at `path`, resolving external data found next to it.
pub fn load(path: &Path) -> Result<LoadedModel, OnnxError> {
    let bytes = external::map_file(path).map_err(|source| OnnxError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut model = decode(bytes, path)?;
    let external_files = external::resolve(&mut model, base_dir)?;
    Ok(LoadedModel {
        model,
        external_files,
    })
}

/// [`load`]'s model.
pub fn load_model(path: &Path) -> Result<ModelProto, OnnxError> {
    load(path).map(|loaded| loaded.model)
}

/// Decodes and checks a model from memory; `origin` only names it in errors. External data is left as is.
pub fn decode_model(bytes: &[u8], origin: &Path) -> Result<ModelProto, OnnxError> {
    decode(bytes, origin)
}

/// Decodes from any buffer: from `Bytes`, tensors' `raw_data` are slices of it, not copies.
fn decode(bytes: impl Buf, origin: &Path) -> Result<ModelProto, OnnxError> {
    let decode_error = |message: String| OnnxError::Decode {
        path: origin.to_path_buf(),
        message,
    };
    let model = ModelProto::decode(bytes).map_err(|e| decode_error(e.to_string()))?;
    if model.graph.is_none() {
        return Err(decode_error("no graph".into()));
    }
    if model.ir_version.is_none() {
        return Err(decode_error("no ir_version".into()));
    }
    check_opsets(&model)?;
    Ok(model)
}

/// Encodes a model to protobuf bytes.
pub fn encode_model(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// The size of a model's encoding, without encoding it (more than [`crate::PROTOBUF_LIMIT`]: it cannot be
/// saved inline).
pub fn encoded_len(model: &ModelProto) -> usize {
    model.encoded_len()
}

/// Encodes and writes a model atomically (temp file, fsync, rename, directory fsync).
pub fn save_model(model: &ModelProto, path: &Path) -> Result<(), OnnxError> {
    write_atomic(path, &encode_model(model)).map_err(|source| OnnxError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// The default-domain opset version the model imports (1 when it imports none, as the ONNX spec says).
pub fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
        .unwrap_or(1)
}

fn check_opsets(model: &ModelProto) -> Result<(), OnnxError> {
    let version = default_opset(model);
    if !SUPPORTED_OPSETS.contains(&version) {
        return Err(OnnxError::UnsupportedOpset {
            domain: "ai.onnx".into(),
            version,
            supported: format!("{}..={}", SUPPORTED_OPSETS.start(), SUPPORTED_OPSETS.end()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, OperatorSetIdProto, TensorProto};
    use crate::tensor;

    fn model_with(initializer: TensorProto, opset: i64) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                initializer: vec![initializer],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_is_byte_identical() {
        let model = model_with(tensor::from_f32("w", &[2, 2], &[1.0, -2.0, 3.5, 0.0]), 13);
        let bytes = encode_model(&model);
        let back = decode_model(&bytes, Path::new("m.onnx")).unwrap();
        assert_eq!(encode_model(&back), bytes);
    }

    #[test]
    fn truncated_bytes_are_a_decode_error() {
        let model = model_with(tensor::from_f32("w", &[4], &[1.0; 4]), 13);
        let bytes = encode_model(&model);
        let err = decode_model(&bytes[..bytes.len() - 3], Path::new("m.onnx")).unwrap_err();
        assert!(matches!(err, OnnxError::Decode { .. }), "{err}");
    }

    #[test]
    fn unsupported_opset_is_rejected() {
        let model = model_with(tensor::from_f32("w", &[1], &[1.0]), 99);
        let err = decode_model(&encode_model(&model), Path::new("m.onnx")).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }
}
