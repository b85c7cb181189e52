//! Datasets: what the engine is fed and what the metric is scored against.
//!
//! A [`Dataset`] is indexable and streams: `get(i)` builds one sample on demand, so memory never grows with the
//! size of the set. Every sample's tensors keep a leading batch axis of length 1; the evaluator batches samples
//! by concatenating along that axis. Loaders are described by a small JSON data spec (see [`DataSpec`]).

use std::collections::BTreeMap;

use crate::error::Result;
use crate::tensor::Tensor;

/// What a sample is scored against.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Annotation {
    /// No label (calibration data, or metrics that compare with the FP32 model).
    None,
    /// A class index.
    Label(i64),
    /// The objects a detector should find in the sample (data spec key `boxes`); may be empty.
    Boxes(Vec<GroundTruthBox>),
    /// Ground truth the dataset's owner keeps itself (a Python object, say), found by the sample's index: the
    /// metric that owner supplies resolves it. Built-in metrics reject it.
    External(usize),
}

/// One ground-truth object of a detection sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroundTruthBox {
    /// Class index (non-negative).
    pub class: i64,
    /// Corners `[x1, y1, x2, y2]`, `x1 <= x2` and `y1 <= y2`, in the units of the model's output boxes.
    pub bbox: [f32; 4],
}

/// One item of a dataset.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Model inputs by ONNX input name, each with a leading batch axis of length 1.
    pub inputs: Vec<(String, Tensor)>,
    /// The ground truth.
    pub annotation: Annotation,
    /// Free-form facts about the sample (file name, view…), carried into reports.
    pub metadata: BTreeMap<String, String>,
}

/// An indexable, streaming collection of samples.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Builds sample `index` (`index < len()`).
    fn get(&self, index: usize) -> Result<Sample>;

    /// Sample `index`'s class label when the dataset knows it without building the sample (a labels array, a
    /// folder name), so that a held-out split can be stratified by class; `None`: not known that cheaply.
    fn label(&self, _index: usize) -> Option<i64> {
        None
    }

    /// True when the dataset holds no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The input name a data spec gives when it does not name the model input: the evaluator binds it to the
/// model's only input (and reports an error for models with several).
pub const SOLE_INPUT: &str = "";

mod boxes;
mod images;
mod npy;
mod resample;
mod spec;
mod subset;

pub use images::ImageFolderDataset;
pub use npy::npy_bytes;
pub use spec::{open_dataset, DataSpec, NpyDataset, PerChannel, Preprocess};
pub use subset::Subset;
