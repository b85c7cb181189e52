//! Loading and saving models.
//!
//! Invariants: [`load_model`] returns a self-contained model (external data inlined into `raw_data`) whose
//! default-domain opset is within [`SUPPORTED_OPSETS`]; [`save_model`] writes atomically and never in place of
//! a file it was not asked to replace.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::OnnxError;
use crate::fs::write_atomic;
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{ModelProto, TensorProto};

/// Default-domain (`ai.onnx`) opset versions aquant reads and writes. 10 is the first with
/// `QuantizeLinear`; 21 is the first with 16-bit `QuantizeLinear`, and the newest tract executes.
pub const SUPPORTED_OPSETS: RangeInclusive<i64> = 7..=21;

/// Reads, decodes and checks the model at `path`, inlining external data found next to it.
pub fn load_model(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut model = decode_model(&bytes, path)?;
    inline_external_data(&mut model, base_dir)?;
    Ok(model)
}

/// Decodes and checks a model from memory; `origin` only names it in errors. External data is left as is.
pub fn decode_model(bytes: &[u8], origin: &Path) -> Result<ModelProto, OnnxError> {
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

fn inline_external_data(model: &mut ModelProto, base_dir: &Path) -> Result<(), OnnxError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    for tensor in graph.initializer.iter_mut() {
        if tensor.data_location == Some(DataLocation::External as i32) {
            inline_tensor(tensor, base_dir)?;
        }
    }
    Ok(())
}

fn inline_tensor(tensor: &mut TensorProto, base_dir: &Path) -> Result<(), OnnxError> {
    let name = tensor.name.clone().unwrap_or_default();
    let entry = |key: &str| {
        tensor
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.clone())
    };
    let location = entry("location").ok_or_else(|| OnnxError::ExternalData {
        tensor: name.clone(),
        path: base_dir.to_path_buf(),
        message: "no 'location' key".into(),
    })?;
    let path: PathBuf = base_dir.join(&location);
    let fail = |message: String| OnnxError::ExternalData {
        tensor: name.clone(),
        path: path.clone(),
        message,
    };
    let parse = |key: &str| -> Result<Option<usize>, OnnxError> {
        entry(key)
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| fail(format!("bad '{key}' value '{v}'")))
            })
            .transpose()
    };
    let offset = parse("offset")?.unwrap_or(0);
    let length = parse("length")?;
    if Path::new(&location).is_absolute() || location.contains("..") {
        return Err(fail(
            "location must be a relative path inside the model's directory".into(),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| fail(e.to_string()))?;
    let end = match length {
        Some(len) => offset
            .checked_add(len)
            .ok_or_else(|| fail("offset + length overflows".into()))?,
        None => bytes.len(),
    };
    if offset > end || end > bytes.len() {
        return Err(fail(format!(
            "range {offset}..{end} is outside the file ({} bytes)",
            bytes.len()
        )));
    }
    tensor.raw_data = Some(bytes[offset..end].to_vec());
    tensor.external_data.clear();
    tensor.data_location = Some(DataLocation::Default as i32);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, OperatorSetIdProto, StringStringEntryProto};
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

    #[test]
    fn external_data_is_inlined_and_missing_file_reported() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = [0.5f32, 1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(
            dir.path().join("w.bin"),
            [vec![9u8; 4], payload.clone()].concat(),
        )
        .unwrap();
        let mut t = tensor::from_f32("w", &[2], &[0.0, 0.0]);
        t.raw_data = None;
        t.data_location = Some(DataLocation::External as i32);
        let kv = |k: &str, v: &str| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v.into()),
        };
        t.external_data = vec![
            kv("location", "w.bin"),
            kv("offset", "4"),
            kv("length", "8"),
        ];
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, encode_model(&model_with(t.clone(), 13))).unwrap();
        let loaded = load_model(&path).unwrap();
        let w = &loaded.graph.unwrap().initializer[0];
        assert_eq!(tensor::to_f32(w).unwrap(), vec![0.5, 1.5]);

        std::fs::remove_file(dir.path().join("w.bin")).unwrap();
        let err = load_model(&path).unwrap_err();
        assert!(matches!(err, OnnxError::ExternalData { .. }), "{err}");
    }
}
