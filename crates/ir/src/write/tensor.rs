//! ONNX tensors as the IR stores them: element type names, dimensions and little-endian bytes.

use aquant_onnx::proto::tensor_proto::DataType;
use aquant_onnx::proto::tensor_shape_proto::dimension;
use aquant_onnx::proto::type_proto::Value as TypeValue;
use aquant_onnx::{tensor, TensorProto, ValueInfoProto};

use super::unwritable;
use crate::IrError;

/// The element type and dimensions (None: dynamic) of a graph input.
pub fn value_type(value: &ValueInfoProto) -> Result<(&'static str, Vec<Option<i64>>), IrError> {
    let name = value.name.as_deref().unwrap_or_default();
    let Some(TypeValue::TensorType(t)) = value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Err(unwritable(&format!("input '{name}' is not a tensor")));
    };
    let element = element(t.elem_type.unwrap_or(0), name)?;
    let dims = t
        .shape
        .as_ref()
        .ok_or_else(|| unwritable(&format!("input '{name}' has no shape")))?
        .dim
        .iter()
        .map(|d| match d.value {
            Some(dimension::Value::DimValue(v)) if v >= 0 => Some(v),
            _ => None,
        })
        .collect();
    Ok((element, dims))
}

/// The IR element type of ONNX data type `code` (of tensor `name`).
fn element(code: i32, name: &str) -> Result<&'static str, IrError> {
    Ok(match DataType::try_from(code) {
        Ok(DataType::Float) => "f32",
        Ok(DataType::Float16) => "f16",
        Ok(DataType::Int64) => "i64",
        Ok(DataType::Int32) => "i32",
        Ok(DataType::Int8) => "i8",
        Ok(DataType::Uint8) => "u8",
        Ok(DataType::Bool) => "boolean",
        _ => {
            return Err(unwritable(&format!(
                "'{name}' has element type {code}, which IR output does not write"
            )))
        }
    })
}

/// An ONNX error met while writing, as the writer's error.
pub fn onnx_error(e: aquant_onnx::OnnxError) -> IrError {
    unwritable(&e.to_string())
}

/// A tensor's IR element type, dimensions and little-endian bytes.
pub fn tensor_bytes(t: &TensorProto) -> Result<(&'static str, Vec<usize>, Vec<u8>), IrError> {
    let name = t.name.as_deref().unwrap_or_default();
    let element = element(t.data_type.unwrap_or(0), name)?;
    let dims = tensor::dims(t).map_err(onnx_error)?;
    let bytes = match element {
        "f32" => tensor::to_f32(t)
            .map_err(onnx_error)?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        "i64" => tensor::to_i64(t)
            .map_err(onnx_error)?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        "i32" => tensor::to_i64(t)
            .map_err(onnx_error)?
            .iter()
            .flat_map(|&v| (v as i32).to_le_bytes())
            .collect(),
        "i8" | "u8" => tensor::to_i64(t)
            .map_err(onnx_error)?
            .iter()
            .map(|&v| v as u8)
            .collect(),
        _ => t
            .raw_data
            .as_ref()
            .map(|raw| raw.to_vec())
            .ok_or_else(|| unwritable(&format!("'{name}' has no raw data")))?,
    };
    Ok((element, dims, bytes))
}
