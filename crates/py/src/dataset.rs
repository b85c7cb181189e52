//! A Python dataset as an [`aquant::Dataset`].
//!
//! The Python side (`aquant._data.Source`) normalises every kind of dataset — `aquant.Dataset`, an
//! `nncf.Dataset`, a POT `DataLoader` — to four methods: `__len__`, `inputs(i)` (what `transform_func` makes of
//! item `i`), `annotation(i)` and `data(indices)` (the raw items, as NNCF hands them to `validation_fn`). This
//! side converts the inputs to tensors under the GIL, when the library's worker threads ask for a sample.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aquant::data::Annotation;
use aquant::{Dataset, Error, Result, Sample, Tensor};
use pyo3::prelude::*;

use crate::convert;
use crate::errors::Causes;

/// What the samples' annotations are, for the metric in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Annotations {
    /// None (calibration data).
    Unused,
    /// Class indices, for the built-in metrics: `annotation(i)` must be an integer (or None).
    Labels,
    /// Python objects, resolved by a Python metric through the sample's index.
    External,
}

/// The input fingerprints of the samples read so far (index → [`convert::inputs_fingerprint`]), so that a
/// `validation_fn` calling the model on inputs aquant has already run gets the outputs back without inference.
pub type Fingerprints = Arc<Mutex<HashMap<usize, u64>>>;

/// A Python data source as a dataset.
pub struct PyDataset {
    source: Py<PyAny>,
    len: usize,
    names: Vec<String>,
    annotations: Annotations,
    fingerprints: Option<Fingerprints>,
    causes: Causes,
}

impl PyDataset {
    /// Wraps `source`; `names` are the model's input names, in order.
    pub fn new(
        source: &Bound<'_, PyAny>,
        names: Vec<String>,
        annotations: Annotations,
        causes: Causes,
    ) -> PyResult<Self> {
        Ok(PyDataset {
            len: source.len()?,
            source: source.clone().unbind(),
            names,
            annotations,
            fingerprints: None,
            causes,
        })
    }

    /// Records the fingerprint of every sample read, in `fingerprints`.
    pub fn with_fingerprints(mut self, fingerprints: Fingerprints) -> Self {
        self.fingerprints = Some(fingerprints);
        self
    }

    fn sample(&self, py: Python<'_>, index: usize) -> PyResult<Sample> {
        let source = self.source.bind(py);
        let given = source.call_method1("inputs", (index,))?;
        let inputs = convert::inputs(&given, &self.names)?;
        check_batch_axis(&inputs, index)?;
        check_finite(&inputs, index)?;
        let annotation = match self.annotations {
            Annotations::Unused => Annotation::None,
            Annotations::External => Annotation::External(index),
            Annotations::Labels => label(&source.call_method1("annotation", (index,))?, index)?,
        };
        Ok(Sample {
            inputs,
            annotation,
            metadata: Default::default(),
        })
    }
}

impl Dataset for PyDataset {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let sample = Python::attach(|py| {
            self.sample(py, index)
                .map_err(|e| Error::data(format!("sample {index}: {}", self.causes.keep(py, e))))
        })?;
        if let Some(fingerprints) = &self.fingerprints {
            let hash = convert::inputs_fingerprint(&sample.inputs, &self.names);
            fingerprints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(index, hash);
        }
        Ok(sample)
    }
}

/// Inputs must be finite: a NaN would silently poison calibration ranges and every comparison.
fn check_finite(inputs: &[(String, Tensor)], index: usize) -> PyResult<()> {
    match inputs.iter().find(|(_, t)| !t.all_finite()) {
        Some((name, _)) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "sample {index}: input '{name}' holds NaN or infinite values"
        ))),
        None => Ok(()),
    }
}

/// A sample is one row: every array must lead with a batch axis of length 1 (NNCF's `transform_func` returns
/// batched arrays; a POT `DataLoader`'s unbatched data gets its axis on the Python side, as POT's engine does).
fn check_batch_axis(inputs: &[(String, Tensor)], index: usize) -> PyResult<()> {
    for (name, tensor) in inputs {
        if tensor.shape().first() != Some(&1) {
            let name = if name.is_empty() { "the input" } else { name };
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "sample {index}: {name} has shape {:?}; a sample must be one batch row (leading axis of length 1)",
                tensor.shape()
            )));
        }
    }
    Ok(())
}

/// A built-in metric's annotation: an integer class index (or None: unlabelled).
fn label(value: &Bound<'_, PyAny>, index: usize) -> PyResult<Annotation> {
    if value.is_none() {
        return Ok(Annotation::None);
    }
    let numpy = value.py().import("numpy")?;
    let array = numpy.call_method1("asarray", (value,))?;
    let kind: String = array.getattr("dtype")?.getattr("kind")?.extract()?;
    let size: usize = array.getattr("size")?.extract()?;
    if !matches!(kind.as_str(), "i" | "u") || size != 1 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "sample {index}: built-in metrics need an integer class index as annotation, got {}",
            value.repr()?
        )));
    }
    Ok(Annotation::Label(array.call_method0("item")?.extract()?))
}
