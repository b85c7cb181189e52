//! Both ends of an executor written in Python (`aquant.ray.RayExecutor`).
//!
//! [`PyExecutor`] is the search's end: it hands work units (JSON) and blobs (bytes) to the Python object's
//! `_publish` and `_run`, which move them (Ray's object store, actor calls) and never read them. [`PyWorker`] is
//! the other end, the object a Ray actor holds: the library's [`aquant::search::worker::Worker`] with engines
//! opened by name on the worker's machine and the user's per-sample metric (shipped by Ray with cloudpickle)
//! beside the built-in ones. Work runs without the GIL except where the metric is Python.

use std::collections::BTreeMap;

use aquant::output::OutputFormat;
use aquant::search::worker;
use aquant::{Blob, BlobKind, Error, Executor, Result, UnitValues, WorkUnit};
use aquant_engines::EngineName;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::dataset::Fingerprints;
use crate::errors::{self, Causes};
use crate::MetricSpec;

/// The search's end of a Python executor.
pub struct PyExecutor {
    object: Py<PyAny>,
    workers: usize,
    shard_size: usize,
    causes: Causes,
}

impl PyExecutor {
    /// [`PyExecutor::new`] of the executor given, if any.
    pub fn optional(object: Option<&Bound<'_, PyAny>>, causes: &Causes) -> PyResult<Option<Self>> {
        object
            .map(|o| PyExecutor::new(o, causes.clone()))
            .transpose()
    }

    /// Wraps `object` (its `workers` and `shard_size` read now); its exceptions are kept in `causes`.
    pub fn new(object: &Bound<'_, PyAny>, causes: Causes) -> PyResult<Self> {
        Ok(PyExecutor {
            workers: object.getattr("workers")?.extract()?,
            shard_size: object.getattr("shard_size")?.extract()?,
            object: object.clone().unbind(),
            causes,
        })
    }

    /// Calls `method`, turning its exception into an executor error.
    fn call<T>(&self, method: &str, f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>) -> Result<T> {
        Python::attach(|py| {
            f(self.object.bind(py))
                .map_err(|e| Error::Executor(format!("{method}: {}", self.causes.keep(py, e))))
        })
    }
}

impl Executor for PyExecutor {
    fn workers(&self) -> usize {
        self.workers.max(1)
    }

    fn shard_size(&self) -> usize {
        self.shard_size.max(1)
    }

    fn publish(&self, blobs: &[Blob]) -> Result<()> {
        self.call("publish", |object| {
            let py = object.py();
            let blobs: Vec<(&str, &str, Bound<'_, PyBytes>)> = blobs
                .iter()
                .map(|b| {
                    (
                        kind_name(b.kind),
                        b.key.as_str(),
                        PyBytes::new(py, &b.bytes),
                    )
                })
                .collect();
            object.call_method1("_publish", (blobs,))?;
            Ok(())
        })
    }

    fn run(&self, units: Vec<WorkUnit>) -> Result<Vec<UnitValues>> {
        let units: Vec<String> = units
            .iter()
            .map(|u| serde_json::to_string(u).map_err(|e| Error::Executor(format!("unit: {e}"))))
            .collect::<Result<_>>()?;
        let answers: Vec<String> = self.call("run", |object| {
            object.call_method1("_run", (units,))?.extract()
        })?;
        answers
            .iter()
            .map(|a| serde_json::from_str(a).map_err(|e| Error::Executor(format!("answer: {e}"))))
            .collect()
    }
}

/// The console script's executors: `--executor ray[:ADDRESS]` is an `aquant.ray.RayExecutor` at that address.
pub struct RayExecutors;

impl aquant_cli::Executors for RayExecutors {
    fn open(&self, spec: &aquant_cli::ExecutorSpec) -> anyhow::Result<Box<dyn Executor>> {
        let opened = Python::attach(|py| -> PyResult<PyExecutor> {
            let class = py.import("aquant.ray")?.getattr("RayExecutor")?;
            let executor = class.call1((spec.address.as_deref(),))?;
            // The command line's metrics are built-ins: nothing to ship with the workers.
            executor.call_method1("_bind", (py.None(), py.None()))?;
            PyExecutor::new(&executor, Causes::default())
        });
        opened
            .map(|e| Box::new(e) as Box<dyn Executor>)
            .map_err(|e| {
                let message = Python::attach(|py| errors::describe(py, &e));
                anyhow::anyhow!("--executor ray: {message}")
            })
    }
}

fn kind_name(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Model => "model",
        BlobKind::Setup => "setup",
        BlobKind::Samples => "samples",
    }
}

fn kind_of(name: &str) -> PyResult<BlobKind> {
    match name {
        "model" => Ok(BlobKind::Model),
        "setup" => Ok(BlobKind::Setup),
        "samples" => Ok(BlobKind::Samples),
        other => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "unknown blob kind {other:?}"
        ))),
    }
}

/// Evaluates work units on the machine it runs on: what a Ray actor of `aquant.ray` holds.
#[pyclass(module = "aquant._aquant", name = "Worker")]
pub struct PyWorker {
    inner: worker::Worker,
    causes: Causes,
}

#[pymethods]
impl PyWorker {
    /// A worker that opens engines by name here and metrics by name: `metric` (the run's Python per-sample
    /// metric, as `aquant._api.metric_spec` describes it) under its own name, the built-ins otherwise;
    /// `annotations` (`annotation(i)`) is what that metric scores sample `i` against.
    #[new]
    #[pyo3(signature = (metric=None, annotations=None))]
    fn new(
        metric: Option<MetricSpec<'_>>,
        annotations: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let causes = Causes::default();
        let python = match (metric, annotations) {
            (Some(spec), Some(source)) => {
                let built =
                    crate::build_metric(&spec, source, &[], &Fingerprints::default(), &causes)?;
                Some((
                    spec.2.clone(),
                    std::sync::Arc::<dyn aquant::Metric>::from(built),
                ))
            }
            (Some(_), None) => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "a Python metric needs its annotations",
                ))
            }
            (None, _) => None,
        };
        let open_metric: worker::OpenMetric = Box::new(move |name| match &python {
            Some((own, metric)) if own == name => {
                Ok(Box::new(Shared(metric.clone())) as Box<dyn aquant::Metric>)
            }
            _ => aquant::metric::builtin(name),
        });
        Ok(PyWorker {
            inner: worker::Worker::new(Box::new(open_engine), open_metric),
            causes,
        })
    }

    /// Whether blob `key` was received.
    fn has(&self, key: &str) -> bool {
        self.inner.has(key)
    }

    /// Takes in blob `key` of `kind` (`model`, `setup` or `samples`).
    fn receive(&mut self, py: Python<'_>, kind: &str, key: &str, data: &[u8]) -> PyResult<()> {
        let kind = kind_of(kind)?;
        let result = py.detach(|| self.inner.receive(kind, key, data));
        result.map_err(|e| errors::to_py(py, e, &self.causes))
    }

    /// The values of the work unit `unit` (JSON), as JSON.
    fn run(&mut self, py: Python<'_>, unit: &str) -> PyResult<String> {
        let unit: WorkUnit = serde_json::from_str(unit)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("work unit: {e}")))?;
        let result = py.detach(|| self.inner.run(&unit));
        let values = result.map_err(|e| errors::to_py(py, e, &self.causes))?;
        serde_json::to_string(&values)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// How many blobs of each kind reached this worker.
    fn received(&self) -> BTreeMap<String, usize> {
        self.inner.received()
    }
}

/// The engine called `name`, opened on this machine (an ONNX model's engine; OpenVINO on the CPU).
fn open_engine(name: &str) -> Result<Box<dyn aquant::Backend>> {
    let engine: EngineName = name.parse()?;
    Ok(engine.choose(OutputFormat::Onnx, None)?.engine)
}

/// The worker's Python metric, opened once and shared by every setup that names it.
struct Shared(std::sync::Arc<dyn aquant::Metric>);

impl aquant::Metric for Shared {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn direction(&self) -> aquant::Direction {
        self.0.direction()
    }

    fn kind(&self) -> &str {
        self.0.kind()
    }

    fn scoring(&self) -> aquant::metric::Scoring<'_> {
        self.0.scoring()
    }
}
