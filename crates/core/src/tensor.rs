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
}

impl Tensor {
    /// The dimensions.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(a) => a.shape(),
            Tensor::I64(a) => a.shape(),
        }
    }

    /// The ONNX name of the element type, for messages.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            Tensor::F32(_) => "float32",
            Tensor::I64(_) => "int64",
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
        }
    }

    /// Concatenates tensors of one type along axis 0 (the batch axis).
    pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor> {
        let first = parts
            .first()
            .ok_or_else(|| Error::data("cannot batch zero tensors"))?;
        let mismatch = |e: ndarray::ShapeError| Error::data(format!("cannot batch samples: {e}"));
        match first {
            Tensor::F32(_) => {
                let views = parts
                    .iter()
                    .map(|t| match t {
                        Tensor::F32(a) => Ok(a.view()),
                        other => Err(Error::data(format!(
                            "cannot batch float32 with {}",
                            other.dtype_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::F32(
                    ndarray::concatenate(Axis(0), &views).map_err(mismatch)?,
                ))
            }
            Tensor::I64(_) => {
                let views = parts
                    .iter()
                    .map(|t| match t {
                        Tensor::I64(a) => Ok(a.view()),
                        other => Err(Error::data(format!(
                            "cannot batch int64 with {}",
                            other.dtype_name()
                        ))),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::I64(
                    ndarray::concatenate(Axis(0), &views).map_err(mismatch)?,
                ))
            }
        }
    }

    /// Bytes of element data held.
    pub fn byte_len(&self) -> usize {
        match self {
            Tensor::F32(a) => a.len() * std::mem::size_of::<f32>(),
            Tensor::I64(a) => a.len() * std::mem::size_of::<i64>(),
        }
    }

    /// True when every element is finite (always true for integers).
    pub fn all_finite(&self) -> bool {
        match self {
            Tensor::F32(a) => a.iter().all(|v| v.is_finite()),
            Tensor::I64(_) => true,
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
    fn concat_rejects_mixed_types() {
        let a = Tensor::F32(ArrayD::zeros(IxDyn(&[1, 2])));
        let b = Tensor::I64(ArrayD::zeros(IxDyn(&[1, 2])));
        assert!(Tensor::concat_rows(&[&a, &b]).is_err());
    }
}
