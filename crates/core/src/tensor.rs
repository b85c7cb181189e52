//! Engine-neutral tensors.
//!
//! The library never names an engine's tensor type: datasets produce, backends consume and produce, and metrics
//! read these. Only the element types real models feed and return are supported; anything else is a clear
//! error at the boundary where it appears.

use ndarray::{ArrayD, Axis};

use crate::error::{Error, Result};

/// A dense tensor with one of the supported element types.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// 32-bit floats: activations, images, logits.
    F32(ArrayD<f32>),
    /// 64-bit integers: token ids, labels, indices.
    I64(ArrayD<i64>),
    /// Unsigned 8-bit quantized values: what a QDQ model's `QuantizeLinear` writes, read where a ranking
    /// candidate's suffix starts (engines hand a model's own integer outputs over widened to f32).
    U8(ArrayD<u8>),
    /// Signed 8-bit quantized values, as [`Tensor::U8`].
    I8(ArrayD<i8>),
}

/// `$body` with `$a` bound to the array of whichever variant `$tensor` is.
macro_rules! each_array {
    ($tensor:expr, $a:ident => $body:expr) => {
        match $tensor {
            Tensor::F32($a) => $body,
            Tensor::I64($a) => $body,
            Tensor::U8($a) => $body,
            Tensor::I8($a) => $body,
        }
    };
}

impl Tensor {
    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        each_array!(self, a => a.shape())
    }

    /// The ONNX name of the element type, for messages.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "float32",
            Tensor::I64(_) => "int64",
            Tensor::U8(_) => "uint8",
            Tensor::I8(_) => "int8",
        }
    }

    /// The ONNX element type (`TensorProto.DataType`): what a model declares an input holding it as.
    pub fn onnx_elem_type(&self) -> i32 {
        match self {
            Tensor::F32(_) => 1,
            Tensor::U8(_) => 2,
            Tensor::I8(_) => 3,
            Tensor::I64(_) => 7,
        }
    }

    /// The float data, or an error naming `what` when the tensor holds another type.
    pub fn as_f32(&self, what: &str) -> Result<&ArrayD<f32>> {
        match self {
            Tensor::F32(a) => Ok(a),
            other => Err(Error::data(format!(
                "{what}: expected float32, got {}",
                other.dtype_name()
            ))),
        }
    }

    /// Number of rows along the batch axis (axis 0); 1 for scalars.
    pub fn batch_len(&self) -> usize {
        self.shape().first().copied().unwrap_or(1)
    }

    /// Row `index` along axis 0, keeping the axis (length 1).
    pub fn row(&self, index: usize) -> Tensor {
        self.rows(index..index + 1)
    }

    /// Rows `range` along axis 0.
    pub fn rows(&self, range: std::ops::Range<usize>) -> Tensor {
        match self {
            Tensor::F32(a) => Tensor::F32(a.slice_axis(Axis(0), range.into()).to_owned()),
            Tensor::I64(a) => Tensor::I64(a.slice_axis(Axis(0), range.into()).to_owned()),
            Tensor::U8(a) => Tensor::U8(a.slice_axis(Axis(0), range.into()).to_owned()),
            Tensor::I8(a) => Tensor::I8(a.slice_axis(Axis(0), range.into()).to_owned()),
        }
    }

    /// Concatenates tensors of one type along axis 0 (the batch axis).
    pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::data("cannot batch zero tensors"))?;
        let mismatch = |e: ndarray::ShapeError| Error::data(format!("cannot batch samples: {e}"));
        macro_rules! concat {
            ($variant:ident) => {{
                let views = parts
                    .iter()
                    .map(|t| match t {
                        Tensor::$variant(a) => Ok(a.view()),
                        other => Err(Error::data(format!(
                            "cannot batch {} with {}",
                            first.dtype_name(),
                            other.dtype_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::$variant(
                    ndarray::concatenate(Axis(0), &views).map_err(mismatch)?,
                ))
            }};
        }
        match first {
            Tensor::F32(_) => concat!(F32),
            Tensor::I64(_) => concat!(I64),
            Tensor::U8(_) => concat!(U8),
            Tensor::I8(_) => concat!(I8),
        }
    }

    /// Bytes of element data held.
    pub fn byte_len(&self) -> usize {
        fn bytes<T>(a: &ArrayD<T>) -> usize {
            a.len() * std::mem::size_of::<T>()
        }
        each_array!(self, a => bytes(a))
    }

    /// True when every element is finite (always true for integers).
    pub fn all_finite(&self) -> bool {
        match self {
            Tensor::F32(a) => a.iter().all(|v| v.is_finite()),
            Tensor::I64(_) | Tensor::U8(_) | Tensor::I8(_) => true,
        }
    }
}

impl From<ArrayD<f32>> for Tensor {
    fn from(a: ArrayD<f32>) -> Self {
        Tensor::F32(a)
    }
}

impl From<ArrayD<i64>> for Tensor {
    fn from(a: ArrayD<i64>) -> Self {
        Tensor::I64(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn rows_and_concat_round_trip() {
        let t = Tensor::F32(ArrayD::from_shape_fn(IxDyn(&[3, 2]), |i| {
            (i[0] * 2 + i[1]) as f32
        }));
        let rows: Vec<Tensor> = (0..3).map(|i| t.row(i)).collect();
        assert_eq!(rows[1].shape(), &[1, 2]);
        let refs: Vec<&Tensor> = rows.iter().collect();
        assert_eq!(Tensor::concat_rows(&refs).unwrap(), t);
    }

    #[test]
    fn quantized_rows_concat_and_declare_their_onnx_type() {
        let t = Tensor::U8(ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| {
            (i[0] * 3 + i[1]) as u8
        }));
        let rows = [t.row(0), t.row(1)];
        assert_eq!(Tensor::concat_rows(&[&rows[0], &rows[1]]).unwrap(), t);
        assert_eq!((t.onnx_elem_type(), t.byte_len()), (2, 6));
        let signed = Tensor::I8(ArrayD::zeros(IxDyn(&[2, 3])));
        assert_eq!((signed.onnx_elem_type(), signed.dtype_name()), (3, "int8"));
        assert!(Tensor::concat_rows(&[&t, &signed]).is_err());
    }

    #[test]
    fn concat_rejects_mixed_types() {
        let a = Tensor::F32(ArrayD::zeros(IxDyn(&[1, 2])));
        let b = Tensor::I64(ArrayD::zeros(IxDyn(&[1, 2])));
        assert!(Tensor::concat_rows(&[&a, &b]).is_err());
    }
}
