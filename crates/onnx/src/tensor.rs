//! Reading and building `TensorProto`s.
//!
//! ONNX stores a tensor either in `raw_data` (little-endian bytes) or in a typed repeated field; readers accept
//! both, writers always produce `raw_data`, the compact form runtimes prefer.

use crate::error::OnnxError;
use crate::proto::tensor_proto::DataType;
use crate::proto::TensorProto;
use crate::Bytes;

/// The tensor's dimensions as `usize`, rejecting negative ones.
pub fn dims(tensor: &TensorProto) -> Result<Vec<usize>, OnnxError> {
    tensor
        .dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| invalid(tensor, format!("negative dimension {d}")))
        })
        .collect()
}

/// The element type, or an error for unknown codes.
pub fn data_type(tensor: &TensorProto) -> Result<DataType, OnnxError> {
    let code = tensor.data_type.unwrap_or(0);
    DataType::try_from(code).map_err(|_| invalid(tensor, format!("unknown data type {code}")))
}

fn element_count(tensor: &TensorProto) -> Result<usize, OnnxError> {
    dims(tensor)?
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(tensor, "element count overflows".into()))
}

fn invalid(tensor: &TensorProto, message: String) -> OnnxError {
    OnnxError::InvalidTensor {
        name: tensor.name.clone().unwrap_or_default(),
        message,
    }
}

fn from_raw<const N: usize, T>(
    tensor: &TensorProto,
    raw: &[u8],
    decode: fn([u8; N]) -> T,
) -> Result<Vec<T>, OnnxError> {
    let count = element_count(tensor)?;
    let needed = count
        .checked_mul(N)
        .ok_or_else(|| invalid(tensor, "byte size overflows".into()))?;
    if raw.len() != needed {
        return Err(invalid(
            tensor,
            format!("raw_data has {} bytes, shape needs {needed}", raw.len()),
        ));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| decode(c.try_into().expect("chunks_exact yields N bytes")))
        .collect())
}

fn checked_len<T>(tensor: &TensorProto, values: Vec<T>) -> Result<Vec<T>, OnnxError> {
    let count = element_count(tensor)?;
    if values.len() != count {
        return Err(invalid(
            tensor,
            format!("holds {} values, shape needs {count}", values.len()),
        ));
    }
    Ok(values)
}

/// The values of a float32 tensor.
pub fn to_f32(tensor: &TensorProto) -> Result<Vec<f32>, OnnxError> {
    match data_type(tensor)? {
        DataType::Float => match &tensor.raw_data {
            Some(raw) => from_raw(tensor, raw, f32::from_le_bytes),
            None => checked_len(tensor, tensor.float_data.clone()),
        },
        other => Err(invalid(
            tensor,
            format!("expected FLOAT, found {}", other.as_str_name()),
        )),
    }
}

/// The values of an integer tensor (int8/uint8/int16/uint16/int32/int64), widened to i64.
pub fn to_i64(tensor: &TensorProto) -> Result<Vec<i64>, OnnxError> {
    let raw = tensor.raw_data.as_deref();
    let ty = data_type(tensor)?;
    let values = match (ty, raw) {
        (DataType::Int64, Some(r)) => from_raw(tensor, r, i64::from_le_bytes)?,
        (DataType::Int64, None) => checked_len(tensor, tensor.int64_data.clone())?,
        (DataType::Int32, Some(r)) => {
            from_raw(tensor, r, |b: [u8; 4]| i32::from_le_bytes(b) as i64)?
        }
        (DataType::Int16, Some(r)) => {
            from_raw(tensor, r, |b: [u8; 2]| i16::from_le_bytes(b) as i64)?
        }
        (DataType::Uint16, Some(r)) => {
            from_raw(tensor, r, |b: [u8; 2]| u16::from_le_bytes(b) as i64)?
        }
        (DataType::Int8, Some(r)) => from_raw(tensor, r, |b: [u8; 1]| b[0] as i8 as i64)?,
        (DataType::Uint8, Some(r)) => from_raw(tensor, r, |b: [u8; 1]| b[0] as i64)?,
        // int32_data carries every integer type of 32 bits or less when raw_data is absent.
        (
            DataType::Int32 | DataType::Int16 | DataType::Uint16 | DataType::Int8 | DataType::Uint8,
            None,
        ) => checked_len(
            tensor,
            tensor.int32_data.iter().map(|&v| v as i64).collect(),
        )?,
        (other, _) => {
            return Err(invalid(
                tensor,
                format!("expected an integer type, found {}", other.as_str_name()),
            ))
        }
    };
    Ok(values)
}

/// A float32 tensor.
pub fn from_f32(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    from_bytes(
        name,
        dims,
        DataType::Float,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// An int64 tensor.
pub fn from_i64(name: &str, dims: &[usize], values: &[i64]) -> TensorProto {
    from_bytes(
        name,
        dims,
        DataType::Int64,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// An int32 tensor.
pub fn from_i32(name: &str, dims: &[usize], values: &[i32]) -> TensorProto {
    from_bytes(
        name,
        dims,
        DataType::Int32,
        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )
}

/// An integer tensor of a quantized type (INT8, UINT8, INT16 or UINT16); values must already be in range.
pub fn from_quantized(
    name: &str,
    dims: &[usize],
    data_type: DataType,
    values: &[i32],
) -> TensorProto {
    from_bytes(name, dims, data_type, quantized_bytes(data_type, values))
}

/// The raw (little-endian) bytes of `values` stored as the quantized type `data_type` (INT8, UINT8, INT16 or
/// UINT16); values must already be in range.
pub fn quantized_bytes(data_type: DataType, values: &[i32]) -> Bytes {
    let raw: Vec<u8> = match data_type {
        DataType::Int8 => values.iter().map(|&v| v as i8 as u8).collect(),
        DataType::Uint8 => values.iter().map(|&v| v as u8).collect(),
        DataType::Int16 => values
            .iter()
            .flat_map(|&v| (v as i16).to_le_bytes())
            .collect(),
        DataType::Uint16 => values
            .iter()
            .flat_map(|&v| (v as u16).to_le_bytes())
            .collect(),
        other => panic!(
            "quantized_bytes called with non-quantized type {}",
            other.as_str_name()
        ),
    };
    raw.into()
}

/// A tensor whose raw data is `raw`, shared with whoever else holds it (a reference count, not a copy).
pub fn from_bytes(name: &str, dims: &[usize], data_type: DataType, raw: Bytes) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type as i32),
        raw_data: Some(raw),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_round_trip_and_typed_field() {
        let t = from_f32("a", &[2], &[1.5, -2.0]);
        assert_eq!(to_f32(&t).unwrap(), vec![1.5, -2.0]);
        let typed = TensorProto {
            name: Some("b".into()),
            dims: vec![2],
            data_type: Some(DataType::Float as i32),
            float_data: vec![3.0, 4.0],
            ..Default::default()
        };
        assert_eq!(to_f32(&typed).unwrap(), vec![3.0, 4.0]);
    }

    #[test]
    fn quantized_round_trip() {
        for (ty, vals) in [
            (DataType::Int8, vec![-128, 0, 127]),
            (DataType::Uint8, vec![0, 128, 255]),
            (DataType::Int16, vec![-32768, 1, 32767]),
            (DataType::Uint16, vec![0, 1, 65535]),
        ] {
            let t = from_quantized("q", &[3], ty, &vals);
            let back: Vec<i32> = to_i64(&t).unwrap().into_iter().map(|v| v as i32).collect();
            assert_eq!(back, vals);
        }
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let mut t = from_f32("a", &[3], &[1.0, 2.0, 3.0]);
        t.dims = vec![4];
        assert!(to_f32(&t)
            .unwrap_err()
            .to_string()
            .contains("raw_data has 12 bytes"));
    }

    /// Found through the `onnx_load` fuzz target (input `fuzz/regressions/onnx_load/raw_data_byte_size_overflow.onnx`):
    /// dims of 2^62 elements made `elements × 4` overflow, a panic in debug builds; in release it wrapped to 0
    /// and an empty raw_data passed for a 2^62-element tensor.
    #[test]
    fn raw_data_byte_size_overflow() {
        let mut t = from_f32("w", &[0], &[]);
        t.dims = vec![1 << 62, 1];
        let err = to_f32(&t).unwrap_err();
        assert!(
            err.to_string().contains("tensor 'w': byte size overflows"),
            "{err}"
        );
    }
}
