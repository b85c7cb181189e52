//! Python metrics as [`aquant::Metric`]s: a per-sample callable, a POT `Metric` subclass, and NNCF's
//! `validation_fn`.
//!
//! Per-sample metrics keep everything the library does with them — caching, ranking subsets, early stop. A
//! POT `Metric` is stateful, so each sample is `reset`, `update`d and read through `value` (per-sample values,
//! as POT's own accuracy-aware algorithm reads them) under a lock; a POT metric without `value` is
//! dataset-level (`reset`, `update` every sample, `avg_value`). A `validation_fn` is dataset-level: it gets the
//! model ([`crate::model::Model`]) and the raw data items of the evaluated samples, and may return per-sample
//! values beside its value, which the search then uses as a per-sample metric's.

use std::sync::Mutex;

use aquant::data::Annotation;
use aquant::metric::{RunnableModel, SampleMetric, SampleOutputs, Scoring, SetMetric, SetValue};
use aquant::{Direction, Error, Metric, Result, Tensor};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert;
use crate::dataset::Fingerprints;
use crate::errors::Causes;
use crate::model::{self, Replay};

/// What every Python metric needs besides its callable.
pub struct Common {
    /// Name in reports.
    pub name: String,
    /// Whether higher is better.
    pub direction: Direction,
    /// The validation source (`annotation(i)`, `data(indices)`).
    pub source: Py<PyAny>,
    /// Where callback exceptions are kept.
    pub causes: Causes,
    /// Bounds of one sample's value the caller declared (`metric_bounds`): they let the ranking stop a
    /// candidate early, as a built-in metric's do; a value outside them is an error, never clamped.
    pub bounds: Option<(f64, f64)>,
}

impl Common {
    /// Runs Python code, turning its exception into this metric's error.
    fn call<T>(&self, what: &str, f: impl FnOnce(Python<'_>) -> PyResult<T>) -> Result<T> {
        Python::attach(|py| {
            f(py).map_err(|e| Error::Metric {
                name: self.name.clone(),
                message: format!("{what} raised {}", self.causes.keep(py, e)),
            })
        })
    }

    /// `value`, checked against the declared bounds: ranking with wrong bounds could prune the group that
    /// should have been chosen, so a value outside them stops the run.
    fn within_bounds(&self, value: f64) -> Result<f64> {
        match self.bounds {
            Some((low, high)) if !(low..=high).contains(&value) => Err(Error::Metric {
                name: self.name.clone(),
                message: format!("returned {value}, outside metric_bounds ({low}, {high})"),
            }),
            _ => Ok(value),
        }
    }

    /// The Python annotation of a sample.
    fn annotation<'py>(
        &self,
        py: Python<'py>,
        annotation: &Annotation,
    ) -> PyResult<Bound<'py, PyAny>> {
        match annotation {
            Annotation::External(index) => {
                self.source.bind(py).call_method1("annotation", (*index,))
            }
            Annotation::Label(label) => Ok(label.into_pyobject(py)?.into_any()),
            Annotation::None => Ok(py.None().into_bound(py)),
            Annotation::Boxes(boxes) => {
                let boxes = boxes
                    .iter()
                    .map(|b| {
                        let object = pyo3::types::PyDict::new(py);
                        object.set_item("class", b.class)?;
                        object.set_item("box", b.bbox.to_vec())?;
                        Ok(object)
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(pyo3::types::PyList::new(py, boxes)?.into_any())
            }
        }
    }
}

/// A number returned by Python, as `f64`.
fn number(value: &Bound<'_, PyAny>) -> PyResult<f64> {
    value.call_method0("__float__")?.extract()
}

/// `metric(outputs, annotation) -> float`, per sample.
pub struct CallableMetric {
    /// Name, direction, source.
    pub common: Common,
    /// The callable.
    pub function: Py<PyAny>,
}

impl Metric for CallableMetric {
    fn name(&self) -> &str {
        &self.common.name
    }

    fn direction(&self) -> Direction {
        self.common.direction
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for CallableMetric {
    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        _: Option<&[Tensor]>,
    ) -> Result<f64> {
        self.common
            .call("the metric", |py| {
                let annotation = self.common.annotation(py, annotation)?;
                let outputs = convert::arrays(py, outputs)?;
                number(&self.function.bind(py).call1((outputs, annotation))?)
            })
            .and_then(|value| self.common.within_bounds(value))
    }

    fn sample_bounds(&self) -> Option<(f64, f64)> {
        self.common.bounds
    }
}

/// A POT `Metric` subclass instance.
pub struct PotMetric {
    /// Name (the key of its `avg_value`), direction (from `get_attributes()`), source.
    pub common: Common,
    /// POT's metric `type` attribute.
    pub kind: String,
    /// The instance.
    pub object: Py<PyAny>,
    /// Whether it gives per-sample values through `value`.
    pub per_sample: bool,
    /// `reset`/`update`/`value` must not interleave between threads (Python switches threads between
    /// bytecodes): taken before the GIL, always, so the two locks cannot deadlock.
    pub lock: Mutex<()>,
}

impl PotMetric {
    fn update(&self, py: Python<'_>, outputs: &[Tensor], annotation: &Annotation) -> PyResult<()> {
        let annotation = self.common.annotation(py, annotation)?;
        let outputs = convert::arrays(py, outputs)?;
        let batch = PyList::new(py, [annotation])?;
        self.object
            .bind(py)
            .call_method1("update", (outputs, batch))?;
        Ok(())
    }

    /// This metric's entry in a POT `{name: value or [values]}` dict; the last value of a list.
    fn entry(&self, values: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
        let value = values.get_item(&self.common.name).map_err(|_| {
            pyo3::exceptions::PyKeyError::new_err(format!(
                "{what} has no entry '{}'",
                self.common.name
            ))
        })?;
        match value.cast::<PyList>() {
            Ok(list) => number(&list.get_item(list.len().saturating_sub(1))?),
            Err(_) => number(&value),
        }
    }
}

impl Metric for PotMetric {
    fn name(&self) -> &str {
        &self.common.name
    }

    fn direction(&self) -> Direction {
        self.common.direction
    }

    fn kind(&self) -> &str {
        &self.kind
    }

    fn scoring(&self) -> Scoring<'_> {
        if self.per_sample {
            Scoring::PerSample(self)
        } else {
            Scoring::WholeSet(self)
        }
    }
}

impl SampleMetric for PotMetric {
    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        _: Option<&[Tensor]>,
    ) -> Result<f64> {
        let _turn = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.common
            .call("the POT metric", |py| {
                self.object.bind(py).call_method0("reset")?;
                self.update(py, outputs, annotation)?;
                self.entry(&self.object.bind(py).getattr("value")?, "value")
            })
            .and_then(|value| self.common.within_bounds(value))
    }

    fn sample_bounds(&self) -> Option<(f64, f64)> {
        self.common.bounds
    }
}

impl SetMetric for PotMetric {
    fn set_value(&self, samples: &[&SampleOutputs], _: &dyn RunnableModel) -> Result<SetValue> {
        let _turn = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.common.call("the POT metric", |py| {
            self.object.bind(py).call_method0("reset")?;
            for sample in samples {
                self.update(py, &sample.outputs, &sample.annotation)?;
            }
            Ok(SetValue::from(self.entry(
                &self.object.bind(py).getattr("avg_value")?,
                "avg_value",
            )?))
        })
    }

    /// A POT metric's `update` is Python, called per sample: scoring thousands of resamples would cost more
    /// than the search.
    fn bootstrappable(&self) -> bool {
        false
    }
}

/// NNCF's `validation_fn(model, data) -> float | (float, per-sample values)`.
pub struct ValidationFn {
    /// Name, direction, source.
    pub common: Common,
    /// The function.
    pub function: Py<PyAny>,
    /// The model's input names.
    pub names: Vec<String>,
    /// Input fingerprints of the samples the validation set gave.
    pub fingerprints: Fingerprints,
}

impl ValidationFn {
    /// The outputs of `samples` by their inputs' fingerprint.
    fn replay(&self, samples: &[&SampleOutputs]) -> Replay {
        let known = self.fingerprints.lock().unwrap_or_else(|p| p.into_inner());
        samples
            .iter()
            .filter_map(|s| known.get(&s.index).map(|&key| (key, s.outputs.clone())))
            .collect()
    }

    fn result(&self, returned: &Bound<'_, PyAny>) -> PyResult<SetValue> {
        let pair = returned
            .cast::<pyo3::types::PyTuple>()
            .ok()
            .filter(|t| t.len() == 2);
        let Some(pair) = pair else {
            return Ok(SetValue::from(number(returned)?));
        };
        let value = number(&pair.get_item(0)?)?;
        let values = pair.get_item(1)?;
        if values.is_none() {
            return Ok(SetValue::from(value));
        }
        let per_sample = values
            .try_iter()?
            .map(|v| number(&v?))
            .collect::<PyResult<Vec<f64>>>()
            .map_err(|_| {
                pyo3::exceptions::PyValueError::new_err(
                    "the second value returned must be a list of per-sample numbers (or None)",
                )
            })?;
        Ok(SetValue {
            value,
            per_sample: Some(per_sample),
        })
    }
}

impl Metric for ValidationFn {
    fn name(&self) -> &str {
        &self.common.name
    }

    fn direction(&self) -> Direction {
        self.common.direction
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::WholeSet(self)
    }
}

impl SetMetric for ValidationFn {
    fn set_value(&self, samples: &[&SampleOutputs], model: &dyn RunnableModel) -> Result<SetValue> {
        let indices: Vec<usize> = samples.iter().map(|s| s.index).collect();
        let served = model::serve(model, self.replay(samples), self.names.clone(), |lent| {
            self.common.call("validation_fn", |py| {
                let data = self
                    .common
                    .source
                    .bind(py)
                    .call_method1("data", (indices,))?;
                let returned = self.function.bind(py).call1((lent, data))?;
                self.result(&returned)
            })
        });
        served.map_err(|_| Error::Metric {
            name: self.common.name.clone(),
            message: "validation_fn's thread panicked".into(),
        })?
    }

    /// It runs the model itself over the data it is given: once per resample would be a search's worth of
    /// inference.
    fn bootstrappable(&self) -> bool {
        false
    }
}
