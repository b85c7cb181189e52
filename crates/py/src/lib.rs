//! `aquant._aquant`: the Rust half of the `aquant` Python package.
//!
//! The pure-Python half (`python/aquant`) gives the NNCF and POT APIs — signatures, defaults, dataclasses,
//! duck typing of `nncf.Dataset` and POT classes — and normalises datasets and metrics; this half turns them
//! into the library's [`aquant::Dataset`] and [`aquant::Metric`] (`dataset`, `metric`, `model`), runs the job
//! as the command line does (`job`) and maps errors to Python exceptions (`errors`). Parameters arrive as
//! POT's `{"name", "params"}` algorithm entry in JSON, read by the library's config schema, so every parameter
//! is checked, and misspelt ones suggested, exactly as in a config file.

mod convert;
mod dataset;
mod errors;
mod job;
mod metric;
mod model;
mod progress;
mod remote;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aquant::graph::Sources;
use aquant::output::{ExternalData, OutputFormat};
use aquant::{Backend, ChosenBackend, Direction, Graph};
use aquant_engines::EngineName;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use dataset::{Annotations, Fingerprints, PyDataset};
use errors::Causes;
use job::{OpenedJob, Settings};

/// The model: read from `path` (external data resolved there; an OpenVINO IR `.xml` with its `weights`, by
/// default the `.bin` beside it) or decoded from `bytes`, checked and indexed; with the files it was read from.
fn load_model(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    weights: Option<&Path>,
    causes: &Causes,
) -> PyResult<(Graph, Option<Sources>)> {
    let to_py = |e| errors::to_py(py, e, causes);
    if let Ok(bytes) = model.cast::<PyBytes>() {
        if weights.is_some() {
            return Err(PyValueError::new_err(
                "weights are for an OpenVINO IR given by its .xml path, not for model bytes",
            ));
        }
        let proto = aquant_onnx::decode_model(bytes.as_bytes(), "<model bytes>".as_ref())
            .map_err(|e| to_py(e.into()))?;
        return Ok((Graph::new(proto).map_err(to_py)?, None));
    }
    let path: PathBuf = model.extract()?;
    let (graph, sources) = Graph::open(&path, weights).map_err(to_py)?;
    Ok((graph, Some(sources)))
}

/// The engine called `name` (`auto`: the one a model saved as `format` is deployed on, when it is found) on
/// `device` (POT's `engine.device`; only OpenVINO has devices besides the CPU), and why it is that one.
fn backend(name: &str, format: OutputFormat, device: Option<&str>) -> PyResult<ChosenBackend> {
    let engine: EngineName = name
        .parse()
        .map_err(|e: aquant::Error| PyValueError::new_err(e.to_string()))?;
    engine.choose(format, device).map_err(|e| match e {
        aquant::Error::Config(message) => PyValueError::new_err(message),
        other => pyo3::exceptions::PyRuntimeError::new_err(other.to_string()),
    })
}

/// The format a quantized model will be saved in: `"onnx"` or `"ir"`.
fn output_format(name: &str) -> PyResult<OutputFormat> {
    match name {
        "onnx" => Ok(OutputFormat::Onnx),
        "ir" => Ok(OutputFormat::Ir),
        other => Err(PyValueError::new_err(format!(
            "output_format must be 'onnx' or 'ir', not {other:?}"
        ))),
    }
}

/// Whether the saved model keeps its weights in external data: `"auto"`, `"always"` or `"never"`, checked
/// against the output format.
/// `memory_limit` in bytes: an int, or a size as `--memory-limit` takes it ("8G", "512M").
fn memory_limit(value: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(bytes) = value.extract::<u64>() {
        return Ok(bytes);
    }
    let text: String = value.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "memory_limit must be bytes (an int) or a size such as \"8G\", not {value}"
        ))
    })?;
    aquant::job::parse_bytes(&text).map_err(|e| PyValueError::new_err(format!("memory_limit: {e}")))
}

fn external_data(name: &str, format: OutputFormat) -> PyResult<ExternalData> {
    ExternalData::parse(name)
        .and_then(|chosen| chosen.check(format).map(|()| chosen))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

fn direction(name: &str) -> PyResult<Direction> {
    match name {
        "higher-better" => Ok(Direction::HigherBetter),
        "higher-worse" => Ok(Direction::HigherWorse),
        other => Err(PyValueError::new_err(format!(
            "metric direction must be 'higher-better' or 'higher-worse', not {other:?}"
        ))),
    }
}

/// A metric as the Python side describes it: `(kind, object, name, direction, type, bounds)`, kind one of
/// `builtin` (object: the name), `callable`, `pot`, `pot_set`, `validation_fn`; bounds `None` or the
/// declared `(low, high)` of one sample's value.
pub(crate) type MetricSpec<'py> = (
    String,
    Bound<'py, PyAny>,
    String,
    String,
    String,
    Option<(f64, f64)>,
);

/// How the validation set's annotations are read for a metric of `kind`.
fn annotations(kind: &str) -> Annotations {
    match kind {
        "builtin" => Annotations::Labels,
        _ => Annotations::External,
    }
}

pub(crate) fn build_metric(
    spec: &MetricSpec<'_>,
    source: &Bound<'_, PyAny>,
    names: &[String],
    fingerprints: &Fingerprints,
    causes: &Causes,
) -> PyResult<Box<dyn aquant::Metric>> {
    let (kind, object, name, dir, pot_type, bounds) = spec;
    if let Some((low, high)) = *bounds {
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(PyValueError::new_err(format!(
                "metric_bounds ({low}, {high}) must be two finite numbers, low < high"
            )));
        }
        if kind == "builtin" {
            return Err(PyValueError::new_err(
                "metric_bounds is for Python metrics: a built-in metric knows its own",
            ));
        }
    }
    let common = || -> PyResult<metric::Common> {
        Ok(metric::Common {
            name: name.clone(),
            direction: direction(dir)?,
            source: source.clone().unbind(),
            causes: causes.clone(),
            bounds: *bounds,
        })
    };
    Ok(match kind.as_str() {
        "builtin" => aquant::metric::builtin(&object.extract::<String>()?)
            .map_err(|e| errors::to_py(source.py(), e, causes))?,
        "callable" => Box::new(metric::CallableMetric {
            common: common()?,
            function: object.clone().unbind(),
        }),
        "pot" | "pot_set" => Box::new(metric::PotMetric {
            common: common()?,
            kind: pot_type.clone(),
            object: object.clone().unbind(),
            per_sample: kind == "pot",
            lock: Mutex::new(()),
        }),
        "validation_fn" => Box::new(metric::ValidationFn {
            common: common()?,
            function: object.clone().unbind(),
            names: names.to_vec(),
            fingerprints: fingerprints.clone(),
        }),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown metric kind {other:?}"
            )))
        }
    })
}

/// The quantized model, report.json's text, the summary line, whether the run was interrupted, and the model
/// with the other weight storage when asked for.
type RunResult = (Py<PyBytes>, String, String, bool, Option<Py<PyBytes>>);

/// POT's `{"name", "params"}` entry (JSON) read through the config schema, with `target_device` and the
/// ranking workers checked, placed for `format`'s engine unless the parameters name one.
fn read_algorithm(
    algorithm: &str,
    target_device: Option<&str>,
    workers: Option<usize>,
    format: OutputFormat,
) -> PyResult<aquant::pipeline::Algorithm> {
    let entry: serde_json::Value = serde_json::from_str(algorithm)
        .map_err(|e| PyValueError::new_err(format!("algorithm: {e}")))?;
    let target = target_device.map(|d| serde_json::Value::String(d.to_owned()));
    let mut algorithm = aquant::config::read_algorithm(entry, target)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    algorithm.deploy_as(format);
    if workers == Some(0) {
        return Err(PyValueError::new_err(
            "num_ranking_workers must be at least 1",
        ));
    }
    Ok(algorithm)
}

/// The calibration set and, when it is another object, the validation set, each annotated for the metric
/// `kind`; the sets the metric reads share one fingerprint table, so that inputs aquant has already run are
/// answered from their outputs.
fn open_datasets(
    calibration: &Bound<'_, PyAny>,
    validation: Option<&Bound<'_, PyAny>>,
    names: &[String],
    kind: &str,
    fingerprints: &Fingerprints,
    causes: &Causes,
) -> PyResult<(PyDataset, Option<PyDataset>)> {
    let same = validation.is_some_and(|v| v.is(calibration));
    let calibration_annotations = if same {
        annotations(kind)
    } else {
        Annotations::Unused
    };
    let mut calibration_set = PyDataset::new(
        calibration,
        names.to_vec(),
        calibration_annotations,
        causes.clone(),
    )?;
    if same {
        calibration_set = calibration_set.with_fingerprints(fingerprints.clone());
    }
    let other_validation = match validation.filter(|_| !same) {
        Some(v) => Some(
            PyDataset::new(v, names.to_vec(), annotations(kind), causes.clone())?
                .with_fingerprints(fingerprints.clone()),
        ),
        None => None,
    };
    Ok((calibration_set, other_validation))
}

/// The metric, read from the validation set it scores (a metric without one is an error, not ignored).
fn open_metric(
    spec: Option<&MetricSpec<'_>>,
    validation: Option<&Bound<'_, PyAny>>,
    names: &[String],
    fingerprints: &Fingerprints,
    causes: &Causes,
) -> PyResult<Option<Box<dyn aquant::Metric>>> {
    match (spec, validation) {
        (Some(spec), Some(source)) => Ok(Some(build_metric(
            spec,
            source,
            names,
            fingerprints,
            causes,
        )?)),
        (Some(_), None) => Err(PyValueError::new_err("a metric needs a validation dataset")),
        (None, _) => Ok(None),
    }
}

/// Runs one algorithm (`algorithm`: POT's `{"name", "params"}` entry as JSON) on `model` (bytes or a path);
/// returns the quantized model's bytes, report.json's text and whether the run was interrupted.
#[pyfunction]
#[pyo3(signature = (model, algorithm, calibration, validation, metric, *, target_device=None, backend="auto",
    deployed_check=true, batch_size=1, deployed_batch=1, compress_weights=true, progress=true, output_dir=None,
    intermediate_dir=None, resume=false, workers=None, both_forms=false, weights=None, device=None,
    output_format="onnx", external_data="auto", executor=None, memory_limit=None))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    algorithm: &str,
    calibration: &Bound<'_, PyAny>,
    validation: Option<&Bound<'_, PyAny>>,
    metric: Option<MetricSpec<'_>>,
    target_device: Option<&str>,
    backend: &str,
    deployed_check: bool,
    batch_size: usize,
    deployed_batch: usize,
    compress_weights: bool,
    progress: bool,
    output_dir: Option<PathBuf>,
    intermediate_dir: Option<PathBuf>,
    resume: bool,
    workers: Option<usize>,
    both_forms: bool,
    weights: Option<PathBuf>,
    device: Option<&str>,
    output_format: &str,
    external_data: &str,
    executor: Option<&Bound<'_, PyAny>>,
    memory_limit: Option<&Bound<'_, PyAny>>,
) -> PyResult<RunResult> {
    let causes = Causes::default();
    let format = self::output_format(output_format)?;
    let external_data = self::external_data(external_data, format)?;
    let (graph, sources) = load_model(py, model, weights.as_deref(), &causes)?;
    // Every op must have a form in the output format: known now, not after the search.
    format
        .check(graph.model())
        .map_err(|e| errors::to_py(py, e, &causes))?;
    let names: Vec<String> = graph.inputs().into_iter().map(|p| p.name).collect();
    let algorithm = read_algorithm(algorithm, target_device, workers, format)?;
    let fingerprints = Fingerprints::default();
    let (calibration_set, other_validation) = open_datasets(
        calibration,
        validation,
        &names,
        metric.as_ref().map_or("builtin", |m| m.0.as_str()),
        &fingerprints,
        &causes,
    )?;
    let metric = open_metric(metric.as_ref(), validation, &names, &fingerprints, &causes)?;
    let job = OpenedJob {
        model: graph.into_model(),
        external_data: external_data.for_input(sources.as_ref()),
        sources,
        algorithm,
        calibration: calibration_set,
        other_validation,
        has_validation: validation.is_some(),
        metric,
        backend: self::backend(backend, format, device)?,
        deployed: deployed_engine(deployed_check, format, device),
        settings: Settings {
            format,
            batch_size: batch_size.max(1),
            deployed_batch: deployed_batch.max(1),
            compress_weights,
            progress,
            output_dir,
            intermediate_dir,
            resume,
            workers,
            both_forms,
            executor: remote::PyExecutor::optional(executor, &causes)?,
            memory_limit: memory_limit.map(self::memory_limit).transpose()?,
        },
        causes,
    };
    Ok(returned(py, job.run(py)?))
}

/// What a finished job hands back, as Python receives it.
fn returned(py: Python<'_>, finished: job::Returned) -> RunResult {
    let other = finished.other_form.map(|b| PyBytes::new(py, &b).unbind());
    (
        PyBytes::new(py, &finished.model).unbind(),
        finished.report,
        finished.summary,
        finished.interrupted,
        other,
    )
}

/// The engine the saved model is checked on, as the command line's (`aquant_engines::deployed_engine`): judged
/// there with a validation set, timed there in any case; none unless `check`. A missing engine is a warning.
fn deployed_engine(
    check: bool,
    format: OutputFormat,
    device: Option<&str>,
) -> Option<Box<dyn Backend>> {
    if !check {
        return None;
    }
    match aquant_engines::deployed_engine(format, device) {
        Ok(engine) => Some(engine),
        Err(missing) => {
            eprintln!("aquant: warning: {missing}; deployed_check=False silences this");
            None
        }
    }
}

/// The OpenVINO IR of an ONNX model aquant quantized, in NNCF's form: `(xml text, bin bytes)` (POT's
/// `save_model` of a model loaded from an IR).
#[pyfunction]
fn to_ir(py: Python<'_>, model: &[u8]) -> PyResult<(String, Py<PyBytes>)> {
    let causes = Causes::default();
    let proto = aquant_onnx::decode_model(model, "<model bytes>".as_ref())
        .map_err(|e| errors::to_py(py, e.into(), &causes))?;
    let ir = aquant_ir::write_ir(&proto).map_err(|e| errors::to_py(py, e.into(), &causes))?;
    Ok((ir.xml, PyBytes::new(py, &ir.bin).unbind()))
}

/// Evaluates `model` on `data` with `metric` (POT's `pipeline.evaluate`): `(name, value)`.
#[pyfunction]
#[pyo3(signature = (model, data, metric, *, backend="tract", batch_size=1, progress=true, weights=None,
    device=None))]
#[allow(clippy::too_many_arguments)]
fn evaluate(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    metric: MetricSpec<'_>,
    backend: &str,
    batch_size: usize,
    progress: bool,
    weights: Option<PathBuf>,
    device: Option<&str>,
) -> PyResult<(String, f64)> {
    let causes = Causes::default();
    let (graph, _) = load_model(py, model, weights.as_deref(), &causes)?;
    let names: Vec<String> = graph.inputs().into_iter().map(|p| p.name).collect();
    let fingerprints = Fingerprints::default();
    let dataset = PyDataset::new(data, names.clone(), annotations(&metric.0), causes.clone())?
        .with_fingerprints(fingerprints.clone());
    let metric = build_metric(&metric, data, &names, &fingerprints, &causes)?;
    let engine = self::backend(backend, OutputFormat::Onnx, device)?.engine;
    let model = graph.into_model();
    let lines = progress::Lines::default();
    let shown: &dyn aquant::Progress = if progress {
        &lines
    } else {
        &aquant::NoProgress
    };
    let result = py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let evaluator = aquant::Evaluator::new(
                engine.as_ref(),
                &dataset,
                vec![metric.as_ref()],
                None,
                batch_size,
                shown,
            )?;
            evaluator.evaluate(&model, &evaluator.all_indices(), "evaluating")
        }))
    });
    match result {
        Ok(Ok(evaluation)) => Ok((evaluation.metrics[0].name.clone(), evaluation.value())),
        Ok(Err(error)) => Err(errors::to_py(py, error, &causes)),
        Err(panic) => Err(errors::panicked(panic)),
    }
}

/// Runs the command line `argv` (the program's name first), as the `aquant` binary does, with `--executor ray`
/// besides (the wheel's `aquant` console script); returns the exit status. The GIL is released meanwhile.
#[pyfunction]
fn cli(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| aquant_cli::main(argv, &remote::RayExecutors))
}

/// The Python module.
#[pymodule]
fn _aquant(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(run, module)?)?;
    module.add_function(wrap_pyfunction!(evaluate, module)?)?;
    module.add_function(wrap_pyfunction!(to_ir, module)?)?;
    module.add_function(wrap_pyfunction!(cli, module)?)?;
    module.add_class::<model::Model>()?;
    module.add_class::<remote::PyWorker>()?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
