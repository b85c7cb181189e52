//! The JSON data spec and the loaders it describes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;

use crate::data::boxes::read_boxes;
use crate::data::images::ImageFolderDataset;
use crate::data::npy::{DType, NpyArray};
use crate::data::{Annotation, Dataset, GroundTruthBox, Sample};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A number or one number per channel.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerChannel {
    /// The same value for every channel.
    One(f32),
    /// One value per channel.
    Many(Vec<f32>),
}

impl PerChannel {
    fn get(&self, channel: usize) -> f32 {
        match self {
            PerChannel::One(v) => *v,
            PerChannel::Many(v) => v[channel],
        }
    }

    fn check(&self, what: &str, channels: usize) -> Result<()> {
        match self {
            PerChannel::Many(v) if v.len() != channels => Err(Error::data(format!(
                "preprocess.{what} has {} values but the data has {channels} channels",
                v.len()
            ))),
            _ => Ok(()),
        }
    }
}

/// `x = (x * scale - mean[c]) / std[c]`, `c` the index along `channel_axis` (of the full `[N, ...]` array).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Multiplier applied first (1/255 for uint8 images).
    #[serde(default)]
    pub scale: Option<f32>,
    /// Subtracted after scaling.
    #[serde(default)]
    pub mean: Option<PerChannel>,
    /// Divides after subtracting the mean.
    #[serde(default)]
    pub std: Option<PerChannel>,
    /// Channel axis of the full array (default 1, NCHW).
    #[serde(default)]
    pub channel_axis: Option<usize>,
}

/// A dataset description, as found in a data-spec JSON file (or inline in a config).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataSpec {
    /// NumPy arrays, axis 0 = samples.
    Npy {
        /// Model input name → `.npy` path (or `archive.npz:key`).
        inputs: BTreeMap<String, String>,
        /// Labels (`[N]` integers).
        #[serde(default)]
        labels: Option<String>,
        /// Ground-truth boxes for detection metrics instead of labels: a JSON-lines file, one line per
        /// sample, each a JSON array of `{"class": c, "box": [x1, y1, x2, y2]}`.
        #[serde(default)]
        boxes: Option<String>,
        /// Normalisation of float/uint8 inputs.
        #[serde(default)]
        preprocess: Option<Preprocess>,
    },
    /// A folder of JPEG/PNG images with the ImageNet evaluation transform.
    Images {
        /// The folder.
        root: String,
        /// Text file of `<file name> <label>` lines.
        #[serde(default)]
        labels: Option<String>,
        /// Regex whose first capture group in the file name is the label.
        #[serde(default)]
        label_regex: Option<String>,
        /// Model input name (default: the model's only input).
        #[serde(default)]
        input: Option<String>,
        /// Shorter side after resizing.
        #[serde(default)]
        resize: Option<u32>,
        /// Side of the centre crop.
        #[serde(default)]
        center_crop: Option<u32>,
        /// Multiplier applied to pixel values first (default 1/255).
        #[serde(default)]
        scale: Option<f32>,
        /// Per-channel mean.
        #[serde(default)]
        mean: Option<Vec<f32>>,
        /// Per-channel standard deviation.
        #[serde(default)]
        std: Option<Vec<f32>>,
        /// "NCHW" (default) or "NHWC".
        #[serde(default)]
        layout: Option<String>,
    },
}

impl DataSpec {
    /// Reads a data-spec file.
    pub fn from_file(path: &Path) -> Result<DataSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Config(format!("data spec '{}': {e}", path.display())))
    }

    /// Opens the dataset; relative paths are resolved against `base_dir`.
    pub fn open(&self, base_dir: &Path) -> Result<Box<dyn Dataset>> {
        let dataset: Box<dyn Dataset> = match self {
            DataSpec::Npy {
                inputs,
                labels,
                boxes,
                preprocess,
            } => {
                if labels.is_some() && boxes.is_some() {
                    return Err(Error::data(
                        "the data spec gives both \"labels\" and \"boxes\": a sample has one kind of ground truth",
                    ));
                }
                let dataset =
                    NpyDataset::open(inputs, labels.as_deref(), preprocess.clone(), base_dir)?;
                Box::new(match boxes {
                    Some(boxes) => dataset.with_boxes(boxes, base_dir)?,
                    None => dataset,
                })
            }
            DataSpec::Images { .. } => Box::new(ImageFolderDataset::open(self, base_dir)?),
        };
        if dataset.is_empty() {
            return Err(Error::data("the dataset is empty"));
        }
        Ok(dataset)
    }
}

/// Opens the dataset a data-spec file describes.
pub fn open_dataset(spec_path: &Path) -> Result<Box<dyn Dataset>> {
    let base_dir: PathBuf = spec_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    DataSpec::from_file(spec_path)?.open(&base_dir)
}

/// Samples from `.npy` arrays, read one row at a time.
#[derive(Debug)]
pub struct NpyDataset {
    inputs: Vec<(String, NpyArray)>,
    labels: Option<NpyArray>,
    boxes: Option<Vec<Vec<GroundTruthBox>>>,
    preprocess: Option<Preprocess>,
    len: usize,
}

impl NpyDataset {
    /// Opens the arrays and checks they agree.
    pub fn open(
        inputs: &BTreeMap<String, String>,
        labels: Option<&str>,
        preprocess: Option<Preprocess>,
        base_dir: &Path,
    ) -> Result<NpyDataset> {
        if inputs.is_empty() {
            return Err(Error::data("the data spec names no input"));
        }
        let arrays = inputs
            .iter()
            .map(|(name, path)| Ok((name.clone(), NpyArray::open(path, base_dir)?)))
            .collect::<Result<Vec<_>>>()?;
        let len = arrays[0].1.rows();
        if let Some((_, a)) = arrays.iter().find(|(_, a)| a.rows() != len) {
            return Err(Error::data(format!(
                "inputs disagree on the sample count: '{}' has {} rows, '{}' has {len}",
                a.origin,
                a.rows(),
                arrays[0].1.origin
            )));
        }
        if len == 0 {
            return Err(Error::data(format!(
                "the dataset is empty ('{}' has no rows)",
                arrays[0].1.origin
            )));
        }
        let labels = labels.map(|l| NpyArray::open(l, base_dir)).transpose()?;
        if let Some(l) = &labels {
            if l.shape.len() != 1 || l.rows() != len || matches!(l.dtype, DType::F32 | DType::F64) {
                return Err(Error::data(format!(
                    "labels '{}' must be {len} integers (shape [{len}]); found shape {:?}",
                    l.origin, l.shape
                )));
            }
        }
        if let Some(p) = &preprocess {
            for (_, array) in &arrays {
                let axis = p.channel_axis.unwrap_or(1);
                let channels = *array.shape.get(axis).ok_or_else(|| {
                    Error::data(format!(
                        "preprocess.channel_axis {axis} is outside '{}' of shape {:?}",
                        array.origin, array.shape
                    ))
                })?;
                for (what, v) in [("mean", &p.mean), ("std", &p.std)] {
                    if let Some(v) = v {
                        v.check(what, channels)?;
                    }
                }
            }
        }
        Ok(NpyDataset {
            inputs: arrays,
            labels,
            boxes: None,
            preprocess,
            len,
        })
    }

    /// The same samples annotated with the ground-truth boxes of the JSON-lines file `path` (relative to
    /// `base_dir`; see [`DataSpec::Npy`]) instead of labels.
    pub fn with_boxes(self, path: &str, base_dir: &Path) -> Result<NpyDataset> {
        let boxes = read_boxes(path, base_dir, self.len)?;
        Ok(NpyDataset {
            labels: None,
            boxes: Some(boxes),
            ..self
        })
    }

    fn input(&self, name: &str, array: &NpyArray, index: usize) -> Result<Tensor> {
        let mut shape = array.shape.clone();
        shape[0] = 1;
        if matches!(array.dtype, DType::I64 | DType::I32) && self.preprocess.is_none() {
            let values = array.row_i64(index)?;
            return Ok(Tensor::I64(
                ArrayD::from_shape_vec(IxDyn(&shape), values).expect("row matches shape"),
            ));
        }
        let mut values = array.row_f32(index)?;
        if let Some(p) = &self.preprocess {
            let axis = p.channel_axis.unwrap_or(1);
            let inner: usize = shape[axis + 1..].iter().product();
            let channels = shape[axis];
            let scale = p.scale.unwrap_or(1.0);
            // One channel's run of `inner` values at a time: its mean and std are looked up once, and the
            // inner loop is plain arithmetic the compiler vectorizes (every candidate reads every sample).
            for (run, block) in values.chunks_mut(inner.max(1)).enumerate() {
                let c = run % channels;
                let mean = p.mean.as_ref().map_or(0.0, |m| m.get(c));
                let std = p.std.as_ref().map_or(1.0, |s| s.get(c));
                for v in block {
                    *v = (*v * scale - mean) / std;
                }
            }
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(Error::data(format!(
                "sample {index}, input '{name}': NaN or Inf in data"
            )));
        }
        Ok(Tensor::F32(
            ArrayD::from_shape_vec(IxDyn(&shape), values).expect("row matches shape"),
        ))
    }
}

impl Dataset for NpyDataset {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        if index >= self.len {
            return Err(Error::data(format!(
                "sample {index} is out of range ({} samples)",
                self.len
            )));
        }
        let inputs = self
            .inputs
            .iter()
            .map(|(name, array)| Ok((name.clone(), self.input(name, array, index)?)))
            .collect::<Result<Vec<_>>>()?;
        let annotation = match (&self.labels, &self.boxes) {
            (Some(l), _) => Annotation::Label(l.row_i64(index)?[0]),
            (None, Some(boxes)) => Annotation::Boxes(boxes[index].clone()),
            (None, None) => Annotation::None,
        };
        Ok(Sample {
            inputs,
            annotation,
            metadata: BTreeMap::new(),
        })
    }

    fn label(&self, index: usize) -> Option<i64> {
        let row = self.labels.as_ref()?.row_i64(index).ok()?;
        row.first().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::npy::npy_bytes;

    /// Per-channel preprocessing gives each value `(x * scale - mean[c]) / std[c]` with `c` its index along
    /// the channel axis, for every sample.
    #[test]
    fn preprocess_applies_each_channel_s_mean_and_std() {
        let dir = tempfile::tempdir().unwrap();
        let shape = [2, 3, 2, 2];
        let raw: Vec<u8> = (0..24).collect();
        std::fs::write(dir.path().join("x.npy"), npy_bytes("|u1", &shape, &raw)).unwrap();
        let spec = r#"{"format": "npy", "inputs": {"x": "x.npy"},
            "preprocess": {"scale": 0.5, "mean": [1, 2, 3], "std": [2, 4, 8], "channel_axis": 1}}"#;
        let data = serde_json::from_str::<DataSpec>(spec)
            .unwrap()
            .open(dir.path())
            .unwrap();
        let (mean, std) = ([1.0f32, 2.0, 3.0], [2.0f32, 4.0, 8.0]);
        for sample in 0..2 {
            let Tensor::F32(x) = &data.get(sample).unwrap().inputs[0].1 else {
                panic!("f32 input");
            };
            assert_eq!(x.shape(), [1, 3, 2, 2]);
            for (k, &value) in x.iter().enumerate() {
                let c = k / 4;
                let expected = (f32::from(raw[sample * 12 + k]) * 0.5 - mean[c]) / std[c];
                assert_eq!(value, expected, "sample {sample}, value {k}");
            }
        }
    }
}
