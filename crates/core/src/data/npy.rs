//! `.npy` arrays read row by row, and `.npz` members.
//!
//! A hand-written header parser rather than a crate: the format is a magic string and a Python-literal dict,
//! and what aquant needs — random access to row `i` with one `pread`, from several threads, without loading the
//! array — is not what the npy crates offer (they stream whole arrays). `.npz` members stored uncompressed are
//! read the same way at their offset inside the archive; deflated members are decompressed once on open, the
//! one case where an array is held in memory.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// `|u1`
    U8,
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `<i4`
    I32,
    /// `<i8`
    I64,
}

impl DType {
    fn parse(descr: &str) -> Option<DType> {
        Some(match descr {
            "|u1" | "<u1" | "u1" => DType::U8,
            "<f4" => DType::F32,
            "<f8" => DType::F64,
            "<i4" => DType::I32,
            "<i8" => DType::I64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::I32 | DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }
}

/// Where an array's bytes are.
#[derive(Debug)]
enum Storage {
    /// In a file at a byte offset (plain `.npy`, or a stored `.npz` member).
    File { file: File, offset: u64 },
    /// Decompressed in memory (a deflated `.npz` member).
    Memory(Vec<u8>),
}

/// An array opened for row access.
#[derive(Debug)]
pub struct NpyArray {
    /// The file (and member) it came from, for messages.
    pub origin: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; `shape[0]` is the number of rows.
    pub shape: Vec<usize>,
    /// Bytes of one row, checked on open: `rows × row_bytes` fits in memory arithmetic.
    row_bytes: usize,
    storage: Storage,
}

impl NpyArray {
    /// Opens `path`, or member `key` of an `.npz` when `path` is `archive.npz:key`.
    pub fn open(spec: &str, base_dir: &Path) -> Result<NpyArray> {
        match spec.rsplit_once(':') {
            Some((archive, key)) if archive.ends_with(".npz") => {
                open_npz(&base_dir.join(archive), key)
            }
            _ => open_npy(&base_dir.join(spec)),
        }
    }

    /// Number of rows (axis 0).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }

    /// The raw little-endian bytes of row `index`.
    pub fn row(&self, index: usize) -> Result<Vec<u8>> {
        if index >= self.rows() {
            return Err(Error::data(format!(
                "{}: row {index} is out of range ({} rows)",
                self.origin,
                self.rows()
            )));
        }
        let len = self.row_bytes();
        let start = index * len;
        match &self.storage {
            Storage::Memory(bytes) => Ok(bytes[start..start + len].to_vec()),
            Storage::File { file, offset } => {
                let mut buffer = vec![0u8; len];
                file.read_exact_at(&mut buffer, offset + start as u64)
                    .map_err(|e| {
                        Error::data(format!("{}: reading row {index}: {e}", self.origin))
                    })?;
                Ok(buffer)
            }
        }
    }

    /// Row `index` converted to f32.
    pub fn row_f32(&self, index: usize) -> Result<Vec<f32>> {
        let bytes = self.row(index)?;
        Ok(match self.dtype {
            DType::U8 => bytes.iter().map(|&b| b as f32).collect(),
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            DType::I32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
            DType::I64 => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                .collect(),
        })
    }

    /// Row `index` converted to i64 (integer arrays only).
    pub fn row_i64(&self, index: usize) -> Result<Vec<i64>> {
        let bytes = self.row(index)?;
        match self.dtype {
            DType::I64 => Ok(bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect()),
            DType::I32 => Ok(bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect()),
            DType::U8 => Ok(bytes.iter().map(|&b| b as i64).collect()),
            _ => Err(Error::data(format!(
                "{}: expected integers, found floats",
                self.origin
            ))),
        }
    }
}

fn open_npy(path: &Path) -> Result<NpyArray> {
    let mut file = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let origin = path.display().to_string();
    let header = read_header(&mut file, &origin)?;
    check_size(NpyArray {
        origin,
        dtype: header.dtype,
        shape: header.shape,
        row_bytes: header.row_bytes,
        storage: Storage::File {
            file,
            offset: header.data_offset as u64,
        },
    })
}

fn check_size(array: NpyArray) -> Result<NpyArray> {
    // read_header checked that rows × row bytes does not overflow.
    let needed = (array.rows() * array.row_bytes()) as u64;
    let available = match &array.storage {
        Storage::Memory(bytes) => bytes.len() as u64,
        Storage::File { file, offset } => file
            .metadata()
            .map(|m| m.len().saturating_sub(*offset))
            .unwrap_or(0),
    };
    if available < needed {
        return Err(Error::data(format!(
            "{}: truncated ({available} data bytes, shape {:?} needs {needed})",
            array.origin, array.shape
        )));
    }
    Ok(array)
}

fn open_npz(archive: &Path, key: &str) -> Result<NpyArray> {
    let file = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    let origin = format!("{}:{key}", archive.display());
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| Error::data(format!("{}: {e}", archive.display())))?;
    let member = format!("{key}.npy");
    let mut entry = zip.by_name(&member).map_err(|_| {
        Error::data(format!(
            "{}: no array '{key}' in the archive",
            archive.display()
        ))
    })?;
    if entry.compression() == zip::CompressionMethod::Stored {
        let member_offset = entry.data_start();
        let header = read_header(&mut entry, &origin)?;
        drop(entry);
        let file = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
        return check_size(NpyArray {
            origin,
            dtype: header.dtype,
            shape: header.shape,
            row_bytes: header.row_bytes,
            storage: Storage::File {
                file,
                offset: member_offset + header.data_offset as u64,
            },
        });
    }
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::data(format!("{origin}: {e}")))?;
    let header = read_header(&mut bytes.as_slice(), &origin)?;
    check_size(NpyArray {
        origin,
        dtype: header.dtype,
        shape: header.shape,
        row_bytes: header.row_bytes,
        storage: Storage::Memory(bytes[header.data_offset..].to_vec()),
    })
}

struct Header {
    dtype: DType,
    shape: Vec<usize>,
    row_bytes: usize,
    data_offset: usize,
}

fn read_header(reader: &mut impl Read, origin: &str) -> Result<Header> {
    let bad = |what: &str| Error::data(format!("{origin}: not a valid .npy file ({what})"));
    let mut preamble = [0u8; 8];
    reader
        .read_exact(&mut preamble)
        .map_err(|_| bad("too short"))?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err(bad("bad magic"));
    }
    let (len, prefix) = match preamble[6] {
        1 => {
            let mut l = [0u8; 2];
            reader.read_exact(&mut l).map_err(|_| bad("too short"))?;
            (u16::from_le_bytes(l) as usize, 10)
        }
        2 | 3 => {
            let mut l = [0u8; 4];
            reader.read_exact(&mut l).map_err(|_| bad("too short"))?;
            (u32::from_le_bytes(l) as usize, 12)
        }
        v => return Err(bad(&format!("unsupported version {v}"))),
    };
    if len > 1 << 20 {
        return Err(bad("header too long"));
    }
    let mut text = vec![0u8; len];
    reader
        .read_exact(&mut text)
        .map_err(|_| bad("truncated header"))?;
    let text = String::from_utf8_lossy(&text);
    let field = |name: &str| -> Option<String> {
        let start = text.find(&format!("'{name}'"))? + name.len() + 2;
        let rest = text[start..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest.to_string())
    };
    let descr = field("descr").ok_or_else(|| bad("no descr"))?;
    let descr = descr.trim_start_matches(['\'', '"']);
    let descr = &descr[..descr.find(['\'', '"']).ok_or_else(|| bad("bad descr"))?];
    let dtype = DType::parse(descr).ok_or_else(|| {
        Error::data(format!(
            "{origin}: unsupported dtype '{descr}' (uint8, float32, float64, int32, int64)"
        ))
    })?;
    let fortran = field("fortran_order").ok_or_else(|| bad("no fortran_order"))?;
    if fortran.starts_with("True") {
        return Err(Error::data(format!(
            "{origin}: Fortran-ordered arrays are not supported; save it C-ordered"
        )));
    }
    let shape_text = field("shape").ok_or_else(|| bad("no shape"))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("bad shape"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("bad shape")))
        .collect::<Result<Vec<_>>>()?;
    if shape.is_empty() {
        return Err(Error::data(format!(
            "{origin}: a scalar array has no samples"
        )));
    }
    let row_bytes = shape[1..]
        .iter()
        .try_fold(dtype.size(), |bytes, &d| bytes.checked_mul(d))
        .filter(|&row| shape[0].checked_mul(row).is_some())
        .ok_or_else(|| Error::data(format!("{origin}: shape {shape:?} is too large to address")))?;
    Ok(Header {
        dtype,
        shape,
        row_bytes,
        data_offset: prefix + len,
    })
}

/// The bytes of an `.npy` file (version 1).
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens an `.npy` file with `shape` in its header and no data.
    fn open_header_only(shape: &[usize]) -> Result<NpyArray> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.npy"), npy_bytes("<f4", shape, &[])).unwrap();
        NpyArray::open("a.npy", dir.path())
    }

    /// Found through the `data_spec` fuzz target (`fuzz/regressions/data_spec/npy_rows_times_row_bytes_overflow`):
    /// rows × row bytes overflowed, a panic in debug builds; in release the size check wrapped to 0 and passed.
    #[test]
    fn npy_rows_times_row_bytes_overflow() {
        let err = open_header_only(&[1 << 62, 4]).unwrap_err();
        assert!(err.to_string().contains("is too large to address"), "{err}");
    }

    /// Found through the `data_spec` fuzz target (`fuzz/regressions/data_spec/npy_row_bytes_overflow`): the
    /// bytes of one row overflowed.
    #[test]
    fn npy_row_bytes_overflow() {
        let err = open_header_only(&[1, 1 << 62, 8]).unwrap_err();
        assert!(err.to_string().contains("is too large to address"), "{err}");
        // With zero rows too: the row size is still computed (and was the overflow).
        let err = open_header_only(&[0, 1 << 62, 8]).unwrap_err();
        assert!(err.to_string().contains("is too large to address"), "{err}");
    }

    #[test]
    fn truncated_data_is_an_error() {
        let err = open_header_only(&[2, 4]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
