//! Where candidate evaluations run: the seam between the search, which decides, and the workers that
//! evaluate — on this machine or on a cluster (`aquant.ray`).
//!
//! The search asks an [`Executor`] for one thing only: the per-sample values of a candidate (the ops it
//! reverts, over the quantized model a setup key names) on some samples, as [`WorkUnit`]s that are plain data
//! (serde), answered by [`UnitValues`] in any order. Branch and bound, the order of the ranking, the journal
//! and every decision stay with the caller; an executor holds no state of the search.
//!
//! What a worker needs besides a work unit travels as [`Blob`]s, each named by a key that fingerprints its
//! content: the FP32 model's bytes, the setup (quantizer parameters, engine, metrics), the validation samples
//! by shard. An executor sends each blob to a worker at most once (a worker that restarts fetches it again); a
//! unit lists the keys it needs. The executor moves bytes and never reads them: the library encodes them here
//! and decodes them in [`search::worker`](crate::search::worker) on the other side.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::data::{Annotation, Sample};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// "The per-sample values of candidate `reverted` over the quantized model of setup `setup`, by the metrics
/// `metrics`, on samples `samples`".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkUnit {
    /// The caller's id of the unit, returned with its values.
    pub id: usize,
    /// The key of the setup blob: the quantized model (its calibration fingerprint), engine and metrics.
    pub setup: String,
    /// The ladder entries of the candidate (a bare op name is FP32, `op@w8a16` a 16-bit step).
    pub reverted: BTreeSet<String>,
    /// Positions of the metrics in the setup's metric list; each gets one value per sample.
    pub metrics: Vec<usize>,
    /// Dataset indices, in the order the values come back.
    pub samples: Vec<usize>,
    /// The keys of every blob the unit reads (setup, model, sample shards).
    pub blobs: Vec<String>,
}

/// A unit's answer: per metric of the unit, one value per sample, in the unit's order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitValues {
    /// The unit's id.
    pub id: usize,
    /// `values[m][s]`: metric `m` of the unit on its sample `s`.
    pub values: Vec<Vec<f64>>,
}

/// What a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobKind {
    /// An ONNX model's bytes (the FP32 model).
    Model,
    /// A setup: quantizer parameters, engine, batch and metrics (JSON).
    Setup,
    /// Validation samples ([`encode_samples`]).
    Samples,
}

/// Bytes a worker needs, named by a key that fingerprints them.
#[derive(Debug, Clone)]
pub struct Blob {
    /// What the bytes are.
    pub kind: BlobKind,
    /// Their key: the same key is the same bytes.
    pub key: String,
    /// The bytes.
    pub bytes: Arc<Vec<u8>>,
}

/// Runs work units somewhere: worker threads, processes or machines.
pub trait Executor: Sync {
    /// How many units run at once: the search keeps about this many candidates in flight.
    fn workers(&self) -> usize;

    /// Samples per work unit: the granularity of sharding and of branch and bound's early stop.
    fn shard_size(&self) -> usize;

    /// Makes `blobs` available to the workers (sent to each one at most once, when a unit first needs them).
    fn publish(&self, blobs: &[Blob]) -> Result<()>;

    /// Evaluates `units`; answers come back in any order, one per unit.
    fn run(&self, units: Vec<WorkUnit>) -> Result<Vec<UnitValues>>;
}

/// A stable fingerprint of `bytes` (FNV-1a), as a blob key.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How one input tensor is laid out in an encoded shard.
#[derive(serde::Serialize, serde::Deserialize)]
struct TensorHeader {
    name: String,
    /// "f32" or "i64".
    dtype: String,
    shape: Vec<usize>,
    /// Byte offset in the data section.
    offset: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SampleHeader {
    index: usize,
    annotation: Annotation,
    inputs: Vec<TensorHeader>,
}

/// Encodes samples (dataset index, sample) for the wire: a JSON header (length-prefixed, little-endian u64)
/// describing each sample, then every tensor's raw little-endian data. Metadata is not carried.
pub fn encode_samples(samples: &[(usize, Sample)]) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut headers = Vec::with_capacity(samples.len());
    for (index, sample) in samples {
        let mut inputs = Vec::with_capacity(sample.inputs.len());
        for (name, tensor) in &sample.inputs {
            let offset = data.len();
            let dtype = match tensor {
                Tensor::F32(a) => {
                    a.iter().for_each(|v| data.extend(v.to_le_bytes()));
                    "f32"
                }
                Tensor::I64(a) => {
                    a.iter().for_each(|v| data.extend(v.to_le_bytes()));
                    "i64"
                }
                // Datasets give float32 and int64 samples; 8-bit tensors are only ever an engine's output.
                other => {
                    return Err(Error::data(format!(
                        "sample {index}, input '{name}': {} samples are not sent to workers",
                        other.dtype_name()
                    )))
                }
            };
            inputs.push(TensorHeader {
                name: name.clone(),
                dtype: dtype.into(),
                shape: tensor.shape().to_vec(),
                offset,
            });
        }
        headers.push(SampleHeader {
            index: *index,
            annotation: sample.annotation.clone(),
            inputs,
        });
    }
    let header =
        serde_json::to_vec(&headers).map_err(|e| Error::data(format!("encoding samples: {e}")))?;
    let mut bytes = Vec::with_capacity(8 + header.len() + data.len());
    bytes.extend((header.len() as u64).to_le_bytes());
    bytes.extend(header);
    bytes.extend(data);
    Ok(bytes)
}

/// Decodes what [`encode_samples`] wrote.
pub fn decode_samples(bytes: &[u8]) -> Result<Vec<(usize, Sample)>> {
    let bad = |what: &str| Error::data(format!("encoded samples: {what}"));
    let length: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("truncated header"))?;
    let end = 8usize.saturating_add(u64::from_le_bytes(length) as usize);
    let header = bytes.get(8..end).ok_or_else(|| bad("truncated header"))?;
    let headers: Vec<SampleHeader> =
        serde_json::from_slice(header).map_err(|e| bad(&e.to_string()))?;
    let data = &bytes[end..];
    headers
        .into_iter()
        .map(|h| {
            let inputs = h
                .inputs
                .into_iter()
                .map(|t| {
                    let tensor = decode_tensor(&t, data).ok_or_else(|| bad("truncated data"))??;
                    Ok((t.name, tensor))
                })
                .collect::<Result<_>>()?;
            let sample = Sample {
                inputs,
                annotation: h.annotation,
                metadata: Default::default(),
            };
            Ok((h.index, sample))
        })
        .collect()
}

/// One tensor of the data section (`None`: the data is too short).
fn decode_tensor(header: &TensorHeader, data: &[u8]) -> Option<Result<Tensor>> {
    let width = match header.dtype.as_str() {
        "f32" => 4,
        "i64" => 8,
        other => {
            return Some(Err(Error::data(format!(
                "encoded samples: unknown dtype {other:?}"
            ))))
        }
    };
    let count: usize = header.shape.iter().product();
    let end = header.offset.checked_add(count.checked_mul(width)?)?;
    let raw = data.get(header.offset..end)?;
    let shape = ndarray::IxDyn(&header.shape);
    let tensor = match width {
        4 => {
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")));
            ndarray::ArrayD::from_shape_vec(shape, values.collect()).map(Tensor::F32)
        }
        _ => {
            let values = raw
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")));
            ndarray::ArrayD::from_shape_vec(shape, values.collect()).map(Tensor::I64)
        }
    };
    Some(tensor.map_err(|e| Error::data(format!("encoded samples: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_survive_encoding_bit_for_bit() {
        let image =
            ndarray::ArrayD::from_shape_fn(vec![1, 2, 3], |d| d[1] as f32 - 0.25 * d[2] as f32);
        let ids = ndarray::ArrayD::from_shape_vec(vec![1, 2], vec![7i64, -3]).unwrap();
        let samples = vec![
            (
                4,
                Sample {
                    inputs: vec![
                        ("x".into(), Tensor::F32(image)),
                        ("ids".into(), Tensor::I64(ids)),
                    ],
                    annotation: Annotation::Label(9),
                    metadata: Default::default(),
                },
            ),
            (
                11,
                Sample {
                    inputs: vec![("x".into(), Tensor::F32(ndarray::ArrayD::zeros(vec![1, 1])))],
                    annotation: Annotation::External(11),
                    metadata: Default::default(),
                },
            ),
        ];
        let bytes = encode_samples(&samples).unwrap();
        let decoded = decode_samples(&bytes).unwrap();
        assert_eq!(decoded.len(), 2);
        for ((i, a), (j, b)) in samples.iter().zip(&decoded) {
            assert_eq!(i, j);
            assert_eq!(a.inputs, b.inputs);
            assert_eq!(a.annotation, b.annotation);
        }
        assert!(decode_samples(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_samples(&bytes[..5]).is_err());
    }
}
