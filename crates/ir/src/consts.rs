//! Const layers: element types and the bytes of the .bin they point at.

use aquant_onnx::proto::tensor_proto::DataType;
use aquant_onnx::{Bytes, TensorProto};

use crate::xml::Layer;
use crate::IrError;

/// An IR element type aquant reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// f32
    F32,
    /// f16 (weights of IRs saved with `compress_to_fp16`)
    F16,
    /// i64
    I64,
    /// i32
    I32,
    /// i8
    I8,
    /// u8
    U8,
    /// boolean, one byte each
    Boolean,
}

impl Element {
    /// The element type named `name` in an IR ("f32", "i64", …).
    pub fn parse(name: &str) -> Option<Element> {
        Some(match name {
            "f32" => Element::F32,
            "f16" => Element::F16,
            "i64" => Element::I64,
            "i32" => Element::I32,
            "i8" => Element::I8,
            "u8" => Element::U8,
            "boolean" => Element::Boolean,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Element::F32 | Element::I32 => 4,
            Element::F16 => 2,
            Element::I64 => 8,
            Element::I8 | Element::U8 | Element::Boolean => 1,
        }
    }

    /// The ONNX data type.
    pub fn onnx(self) -> DataType {
        match self {
            Element::F32 => DataType::Float,
            Element::F16 => DataType::Float16,
            Element::I64 => DataType::Int64,
            Element::I32 => DataType::Int32,
            Element::I8 => DataType::Int8,
            Element::U8 => DataType::Uint8,
            Element::Boolean => DataType::Bool,
        }
    }
}

/// The value of a Const layer.
#[derive(Debug, Clone)]
pub struct Constant {
    /// Element type.
    pub element: Element,
    /// Shape.
    pub dims: Vec<usize>,
    /// Little-endian elements, `dims` product × element size bytes: for a Const of the `.bin`, a slice of
    /// the `.bin` itself (mapped by [`crate::load_ir`]), never a copy.
    pub bytes: Bytes,
}

/// Reads Const `layer`'s value from `bin`, checking that its bytes lie inside the file and match its shape;
/// returns it with the end of its bytes in the file.
pub fn read(layer: &Layer, bin: &Bytes) -> Result<(Constant, usize), IrError> {
    let type_name = layer.attr("element_type")?;
    let element = Element::parse(type_name)
        .ok_or_else(|| layer.malformed(&format!("element type '{type_name}' is not supported")))?;
    let dims: Vec<usize> = layer
        .ints("shape")?
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| layer.malformed("a negative dimension in shape")))
        .collect::<Result<_, _>>()?;
    let offset =
        usize::try_from(layer.int("offset")?).map_err(|_| layer.malformed("negative offset"))?;
    let size = usize::try_from(layer.int("size")?).map_err(|_| layer.malformed("negative size"))?;
    let expected = dims
        .iter()
        .try_fold(element.size(), |n, &d| n.checked_mul(d))
        .ok_or_else(|| layer.malformed("the shape overflows"))?;
    if size != expected {
        return Err(layer.malformed(&format!(
            "size {size} bytes, but shape {dims:?} of {type_name} holds {expected}"
        )));
    }
    let end = offset
        .checked_add(size)
        .filter(|&end| end <= bin.len())
        .ok_or_else(|| IrError::Truncated {
            layer: layer.name.clone(),
            offset,
            size,
            bin: bin.len(),
        })?;
    let value = Constant {
        element,
        dims,
        bytes: bin.slice(offset..end),
    };
    Ok((value, end))
}

impl Constant {
    /// The ONNX initializer `name`.
    pub fn tensor(&self, name: &str) -> TensorProto {
        TensorProto {
            name: Some(name.to_owned()),
            dims: self.dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(self.element.onnx() as i32),
            raw_data: Some(self.bytes.clone()),
            ..Default::default()
        }
    }

    /// The values as f64, whatever the element type.
    pub fn values(&self) -> Vec<f64> {
        let chunks = self.bytes.chunks_exact(self.element.size());
        match self.element {
            Element::F32 => chunks
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Element::F16 => chunks
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])) as f64)
                .collect(),
            Element::I64 => chunks
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Element::I32 => chunks
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect(),
            Element::I8 => chunks.map(|c| c[0] as i8 as f64).collect(),
            Element::U8 | Element::Boolean => chunks.map(|c| c[0] as f64).collect(),
        }
    }

    /// The values as integers (axes, shapes, orders).
    pub fn ints(&self) -> Vec<i64> {
        self.values().into_iter().map(|v| v as i64).collect()
    }

    /// The same values as `element` (a Convert folded at read time: f16 weights become f32 initializers that
    /// aquant can quantize); `None` for a conversion to f16, which stays a Cast.
    pub fn converted(&self, element: Element) -> Option<Constant> {
        let values = self.values();
        let bytes: Vec<u8> = match element {
            Element::F32 => values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect(),
            Element::F16 => return None,
            Element::I64 => values
                .iter()
                .flat_map(|&v| (v as i64).to_le_bytes())
                .collect(),
            Element::I32 => values
                .iter()
                .flat_map(|&v| (v as i32).to_le_bytes())
                .collect(),
            Element::I8 => values.iter().map(|&v| v as i8 as u8).collect(),
            Element::U8 => values.iter().map(|&v| v as u8).collect(),
            Element::Boolean => values.iter().map(|&v| u8::from(v != 0.0)).collect(),
        };
        Some(Constant {
            element,
            dims: self.dims.clone(),
            bytes: bytes.into(),
        })
    }

    /// An i64 constant of `values` shaped `[len]`.
    pub fn i64s(values: &[i64]) -> Constant {
        Constant {
            element: Element::I64,
            dims: vec![values.len()],
            bytes: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        }
    }

    /// An f32 constant of `values` shaped `dims`.
    pub fn f32s(dims: &[usize], values: &[f32]) -> Constant {
        Constant {
            element: Element::F32,
            dims: dims.to_vec(),
            bytes: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        }
    }
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise.
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_widens_exactly() {
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc100), -2.5);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0400), 6.1035156e-5);
        assert_eq!(f16_to_f32(0x0001), 5.9604645e-8);
        assert_eq!(f16_to_f32(0x0200), 2.0f32.powi(-15));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
