//! ONNX external data: tensors whose bytes live in files beside the model, read in place and written out.
//!
//! Reading maps each external file once (`memmap2`) and gives every tensor a [`Bytes`] slice of its mapping,
//! found by the tensor's `offset` and `length`: no file is read whole, no tensor is copied, and every stage that
//! clones the model shares the same pages. The mapping lives as long as the last tensor that points into it.
//! A mapped file must not be changed while aquant runs (the usual contract of a memory map, which ONNX Runtime
//! keeps too); aquant never writes to its inputs.
//!
//! Writing follows ONNX's layout (`onnx.save_model(..., save_as_external_data=True)`): `model.onnx` holds the
//! graph, `model.onnx.data` the payload of every main-graph initializer of at least [`INLINE_BELOW`] bytes of
//! `raw_data`, each at an aligned offset (see [`aligned`]). Smaller tensors, and tensors kept in typed fields,
//! stay inline, as ONNX's `size_threshold` does. The data file is written first and both atomically, so a
//! `model.onnx` is never seen beside a data file that is not its own.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use prost::bytes::Bytes;
use prost::Message;

use crate::error::OnnxError;
use crate::fs::{write_atomic, write_atomic_with};
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{ModelProto, StringStringEntryProto, TensorProto};

/// Tensors of fewer `raw_data` bytes stay inline when saving with external data (ONNX's default
/// `size_threshold`).
pub const INLINE_BELOW: usize = 1024;

/// Every external tensor starts at a multiple of this: aligned for any element type and SIMD load.
const ALIGN: u64 = 64;
/// Tensors of at least [`LARGE`] bytes start at a multiple of this instead: ONNX Runtime's allocation
/// granularity, so that it can map them where they lie rather than copy them.
const ALIGN_LARGE: u64 = 64 * 1024;
/// See [`ALIGN_LARGE`] (ONNX Runtime's `align_threshold`).
const LARGE: usize = 1 << 20;

/// The largest protobuf message: a model whose encoding is larger cannot be saved inline.
pub const PROTOBUF_LIMIT: usize = i32::MAX as usize;

/// The data file of a model saved with external data at `model`: `model.onnx` → `model.onnx.data`.
pub fn external_data_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".data");
    model.with_file_name(name)
}

/// Maps a whole file as shared bytes (an empty file is empty bytes: a zero-length map is refused by the OS).
pub fn map_file(path: &Path) -> std::io::Result<Bytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the map is read-only and aquant never writes to its input files; a file changed by another
    // process while mapped is outside the contract, as for any memory-mapped model (module doc).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

/// Points every main-graph initializer stored externally at its bytes in its (mapped) file, relative to
/// `base_dir`; returns the files read, each once.
pub(crate) fn resolve(model: &mut ModelProto, base_dir: &Path) -> Result<Vec<PathBuf>, OnnxError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(Vec::new());
    };
    let mut files: HashMap<String, Bytes> = HashMap::new();
    let mut read = Vec::new();
    for tensor in graph.initializer.iter_mut() {
        if tensor.data_location != Some(DataLocation::External as i32) {
            continue;
        }
        let entry = Entry::of(tensor, base_dir)?;
        let file = match files.get(&entry.location) {
            Some(file) => file.clone(),
            None => {
                let file = map_file(&entry.path).map_err(|e| entry.fail(e.to_string()))?;
                files.insert(entry.location.clone(), file.clone());
                read.push(entry.path.clone());
                file
            }
        };
        tensor.raw_data = Some(entry.slice(&file)?);
        tensor.external_data.clear();
        // Absent means DEFAULT: the model is then the same as one that never had external data.
        tensor.data_location = None;
    }
    Ok(read)
}

/// One tensor's `external_data` entries, checked.
struct Entry {
    tensor: String,
    location: String,
    path: PathBuf,
    offset: usize,
    length: Option<usize>,
}

impl Entry {
    fn of(tensor: &TensorProto, base_dir: &Path) -> Result<Entry, OnnxError> {
        let name = tensor.name.clone().unwrap_or_default();
        let value = |key: &str| {
            tensor
                .external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.clone())
        };
        let location = value("location").ok_or_else(|| OnnxError::ExternalData {
            tensor: name.clone(),
            path: base_dir.to_path_buf(),
            message: "no 'location' key".into(),
        })?;
        let mut entry = Entry {
            tensor: name,
            path: base_dir.join(&location),
            location,
            offset: 0,
            length: None,
        };
        if Path::new(&entry.location).is_absolute() || entry.location.contains("..") {
            return Err(
                entry.fail("location must be a relative path inside the model's directory".into())
            );
        }
        let parse = |key: &str| -> Result<Option<usize>, OnnxError> {
            value(key)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| entry.fail(format!("bad '{key}' value '{v}'")))
                })
                .transpose()
        };
        let (offset, length) = (parse("offset")?.unwrap_or(0), parse("length")?);
        (entry.offset, entry.length) = (offset, length);
        Ok(entry)
    }

    /// The tensor's bytes within `file` (to its end when no length is given).
    fn slice(&self, file: &Bytes) -> Result<Bytes, OnnxError> {
        let end = match self.length {
            Some(length) => self
                .offset
                .checked_add(length)
                .ok_or_else(|| self.fail("offset + length overflows".into()))?,
            None => file.len(),
        };
        if self.offset > end || end > file.len() {
            return Err(self.fail(format!(
                "bytes {}..{end} are past the end of the file ({} bytes): truncated?",
                self.offset,
                file.len()
            )));
        }
        Ok(file.slice(self.offset..end))
    }

    fn fail(&self, message: String) -> OnnxError {
        OnnxError::ExternalData {
            tensor: self.tensor.clone(),
            path: self.path.clone(),
            message,
        }
    }
}

/// `offset` rounded up to the alignment of a tensor of `len` bytes.
fn aligned(offset: u64, len: usize) -> u64 {
    let align = if len >= LARGE { ALIGN_LARGE } else { ALIGN };
    offset.div_ceil(align) * align
}

/// Saves `model` at `path` with its large initializers in [`external_data_path`]`(path)` (module doc); the
/// model itself is not changed.
pub fn save_model_external(model: &ModelProto, path: &Path) -> Result<(), OnnxError> {
    let data_path = external_data_path(path);
    let location = data_path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    // A clone shares every payload (`Bytes`); the skeleton's external tensors then drop theirs.
    let mut skeleton = model.clone();
    let mut payloads: Vec<(u64, Bytes)> = Vec::new();
    let mut end = 0u64;
    let initializers = skeleton.graph.iter_mut().flat_map(|g| &mut g.initializer);
    for tensor in initializers {
        let Some(raw) = tensor.raw_data.take_if(|raw| raw.len() >= INLINE_BELOW) else {
            continue;
        };
        let offset = aligned(end, raw.len());
        end = offset + raw.len() as u64;
        point_at(tensor, &location, offset, raw.len());
        payloads.push((offset, raw));
    }
    let io = |source| OnnxError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    };
    write_atomic_with(&data_path, |out| write_payloads(out, &payloads)).map_err(io)?;
    write_atomic(path, &skeleton.encode_to_vec()).map_err(io)
}

/// Marks `tensor` as stored at `offset` in `location`, `length` bytes.
fn point_at(tensor: &mut TensorProto, location: &str, offset: u64, length: usize) {
    let entry = |key: &str, value: String| StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value),
    };
    tensor.data_location = Some(DataLocation::External as i32);
    tensor.external_data = vec![
        entry("location", location.into()),
        entry("offset", offset.to_string()),
        entry("length", length.to_string()),
    ];
}

/// Streams the payloads at their offsets, zeros between them.
fn write_payloads(out: &mut dyn Write, payloads: &[(u64, Bytes)]) -> std::io::Result<()> {
    let mut at = 0u64;
    for (offset, raw) in payloads {
        let gap = offset - at;
        std::io::copy(&mut std::io::repeat(0).take(gap), out)?;
        out.write_all(raw)?;
        at = offset + raw.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, OperatorSetIdProto};
    use crate::{load, load_model, tensor};

    fn model_of(initializer: Vec<TensorProto>) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(13),
            }],
            graph: Some(GraphProto {
                name: Some("g".into()),
                initializer,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A float tensor of `values` stored in `location` at `offset`, `length` bytes (None: no such key).
    fn external(
        name: &str,
        values: usize,
        location: &str,
        offset: u64,
        length: Option<usize>,
    ) -> TensorProto {
        let mut t = tensor::from_f32(name, &[values], &vec![0.0; values]);
        point_at(&mut t, location, offset, length.unwrap_or(0));
        if length.is_none() {
            t.external_data
                .retain(|e| e.key.as_deref() != Some("length"));
        }
        t.raw_data = None;
        t
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn initializers(model: &ModelProto) -> &[TensorProto] {
        &model.graph.as_ref().unwrap().initializer
    }

    #[test]
    fn several_tensors_of_one_file_are_slices_of_one_mapping_read_by_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (f32_bytes(&[1.0, 2.0]), f32_bytes(&[3.0, 4.0, 5.0]));
        std::fs::write(
            dir.path().join("w.bin"),
            [&[7u8; 3][..], &a, &[9u8; 5], &b].concat(),
        )
        .unwrap();
        let model = model_of(vec![
            external("a", 2, "w.bin", 3, Some(8)),
            external("b", 3, "w.bin", 16, Some(12)),
        ]);
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.external_files, [dir.path().join("w.bin")]);
        let [ta, tb] = initializers(&loaded.model) else {
            panic!("two initializers")
        };
        assert_eq!(tensor::to_f32(ta).unwrap(), [1.0, 2.0]);
        assert_eq!(tensor::to_f32(tb).unwrap(), [3.0, 4.0, 5.0]);
        assert!(ta.external_data.is_empty() && ta.data_location.is_none());
        // One mapping, no copies: the two slices are as far apart in memory as in the file.
        let (pa, pb) = (
            ta.raw_data.as_ref().unwrap().as_ptr(),
            tb.raw_data.as_ref().unwrap().as_ptr(),
        );
        assert_eq!(pb as usize - pa as usize, 13);
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), f32_bytes(&[1.0, 2.0, 3.0])).unwrap();
        let model = model_of(vec![
            external("fits", 1, "w.bin", 0, Some(4)),
            external("cut", 4, "w.bin", 4, Some(16)),
        ]);
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let err = load_model(&path).unwrap_err().to_string();
        assert!(
            err.contains("'cut'") && err.contains("4..20") && err.contains("12 bytes"),
            "{err}"
        );
    }

    #[test]
    fn bad_entries_are_errors_naming_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), [0u8; 8]).unwrap();
        let path = dir.path().join("m.onnx");
        let mut bad_offset = external("w", 2, "w.bin", 0, Some(8));
        bad_offset.external_data[1].value = Some("-4".into());
        let cases = [
            (external("w", 2, "missing.bin", 0, Some(8)), "missing.bin"),
            (external("w", 2, "../w.bin", 0, Some(8)), "relative path"),
            (external("w", 2, "w.bin", u64::MAX, Some(8)), "overflows"),
            (bad_offset, "bad 'offset' value '-4'"),
        ];
        for (tensor, expected) in cases {
            std::fs::write(&path, model_of(vec![tensor]).encode_to_vec()).unwrap();
            let err = load_model(&path).unwrap_err().to_string();
            assert!(
                err.contains("tensor 'w'") && err.contains(expected),
                "{err}"
            );
        }
    }

    /// Past protobuf's 2 GiB the model can only have been saved with external data; such an input loads, and
    /// cheaply: the data file is sparse and mapped, so only the pages read are ever in memory.
    #[test]
    fn an_input_with_more_than_2_gib_of_external_data_loads() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("model.onnx.data");
        let length = PROTOBUF_LIMIT + 4096;
        let mut file = File::create(&data).unwrap();
        file.set_len(length as u64).unwrap();
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap();
        file.write_all(&f32_bytes(&[1.5, -2.5])).unwrap();
        let model = model_of(vec![
            external("huge", length / 4, "model.onnx.data", 0, Some(length)),
            external("tail", 2, "model.onnx.data", length as u64, Some(8)),
        ]);
        let path = dir.path().join("model.onnx");
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let loaded = load_model(&path).unwrap();
        let [huge, tail] = initializers(&loaded) else {
            panic!("two initializers")
        };
        assert_eq!(huge.raw_data.as_ref().unwrap().len(), length);
        assert_eq!(tensor::to_f32(tail).unwrap(), [1.5, -2.5]);
    }

    #[test]
    fn no_length_reads_to_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("w.bin"),
            [&[0u8; 4][..], &f32_bytes(&[6.0])].concat(),
        )
        .unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(
            &path,
            model_of(vec![external("w", 1, "w.bin", 4, None)]).encode_to_vec(),
        )
        .unwrap();
        let model = load_model(&path).unwrap();
        assert_eq!(tensor::to_f32(&initializers(&model)[0]).unwrap(), [6.0]);
    }

    #[test]
    fn saved_external_data_round_trips_bit_for_bit_with_aligned_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<f32> = (0..(LARGE / 4 + 3)).map(|i| i as f32 * 0.5).collect();
        let model = model_of(vec![
            tensor::from_f32("small", &[3], &[1.0, 2.0, 3.0]),
            tensor::from_f32("mid", &[301], &[0.25; 301]),
            tensor::from_f32("big", &[big.len()], &big),
            tensor::from_f32("mid2", &[257], &[-1.5; 257]),
        ]);
        let path = dir.path().join("model.onnx");
        save_model_external(&model, &path).unwrap();
        let data = dir.path().join("model.onnx.data");
        assert_eq!(external_data_path(&path), data);

        let skeleton = ModelProto::decode(&std::fs::read(&path).unwrap()[..]).unwrap();
        let offsets: Vec<Option<u64>> = initializers(&skeleton)
            .iter()
            .map(|t| {
                let value = t
                    .external_data
                    .iter()
                    .find(|e| e.key.as_deref() == Some("offset"));
                value.map(|e| e.value.clone().unwrap().parse().unwrap())
            })
            .collect();
        // The small tensor stays inline; the 1 MiB tensor starts at a multiple of 64 KiB, the others of 64 bytes.
        let after_big = 65536 + 4 * big.len() as u64;
        assert_eq!(after_big % 64, 12);
        assert_eq!(offsets, [None, Some(0), Some(65536), Some(after_big + 52)]);
        assert!(initializers(&skeleton)[0].raw_data.is_some());
        assert!(std::fs::metadata(&path).unwrap().len() < 1024);

        let loaded = load(&path).unwrap();
        assert_eq!(loaded.external_files, [data]);
        assert!(
            loaded.model.encode_to_vec() == model.encode_to_vec(),
            "not bit for bit"
        );
        // The saved model is untouched: its tensors keep their bytes.
        assert!(initializers(&model)
            .iter()
            .all(|t| t.external_data.is_empty()));
    }
}
