//! POT-compatible JSON configs: one file names the model, the data, the metric and the algorithm.
//!
//! The layout is OpenVINO POT's, so a POT config for an ONNX model needs at most its paths changed:
//!
//! ```json
//! {"model": {"model_name": "mnist", "model": "mnist.onnx"},
//!  "engine": {"device": "CPU", "calibration": "calib.json", "validation": "val.json", "metric": "top1"},
//!  "compression": {"target_device": "ANY",
//!                  "algorithms": [{"name": "AccuracyAwareQuantization", "params": {"maximal_drop": 0.01}}]}}
//! ```
//!
//! `calibration` and `validation` are data-spec files or inline [`DataSpec`] objects; without `calibration`
//! the validation set is also the calibration set (POT's single `data_source`). The parameters are read
//! straight into [`QuantizationParams`] and [`AccuracyControlParams`], whose serde names are POT's keys (and
//! whose aliases are NNCF's): those structs are the schema (`schema`).
//!
//! Relative paths (the model, data-spec files, and the files inline specs name) resolve against the directory
//! of the config file, so a config and its data move together; [`parse`] keeps them as written and [`load`]
//! resolves them.
//!
//! Every key is checked: an unknown one is an error naming its JSON path and the nearest known key, because
//! a misspelt `maximal_drp` silently falling back to its default would quantize with the wrong target. The
//! known keys of the parameters are the structs' own serde field lists, never a list kept beside them.

mod algorithm;
mod error;
mod schema;
mod suggest;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

pub use algorithm::{ACCURACY_AWARE_QUANTIZATION, DEFAULT_QUANTIZATION};
pub use error::ConfigError;

use crate::data::{open_dataset, DataSpec, Dataset};
use crate::job::Algorithm;
#[cfg(doc)]
use crate::{quantize::QuantizationParams, search::AccuracyControlParams};

/// Where a dataset comes from: a data-spec file or a spec written inline in the config.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// A data-spec file (its relative paths resolve against its own directory).
    File(PathBuf),
    /// An inline spec; its relative paths resolve against `base_dir` (the config's directory).
    Inline {
        /// The spec.
        spec: DataSpec,
        /// Directory relative paths start from.
        base_dir: PathBuf,
    },
}

impl DataSource {
    /// Opens the dataset.
    pub fn open(&self) -> crate::Result<Box<dyn Dataset>> {
        match self {
            DataSource::File(path) => open_dataset(path),
            DataSource::Inline { spec, base_dir } => spec.open(base_dir),
        }
    }

    fn rebase(self, dir: &Path) -> DataSource {
        match self {
            DataSource::File(path) => DataSource::File(dir.join(path)),
            DataSource::Inline { spec, base_dir } => DataSource::Inline {
                spec,
                base_dir: dir.join(base_dir),
            },
        }
    }
}

/// A parsed config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `model.model_name`, informative.
    pub model_name: Option<String>,
    /// The FP32 model: ONNX, or an OpenVINO IR `.xml`.
    pub model: PathBuf,
    /// `model.weights`: the `.bin` of an IR model (default: beside the `.xml`).
    pub weights: Option<PathBuf>,
    /// `engine.device`: the device the OpenVINO backend evaluates on ("CPU", "GPU"…); the embedded engines
    /// run on the CPU only, which the front end checks against the backend it opens.
    pub device: Option<String>,
    /// The calibration set (`engine.calibration`, else the validation set).
    pub calibration: DataSource,
    /// The validation set; required by AccuracyAwareQuantization.
    pub validation: Option<DataSource>,
    /// Metric names (`engine.metric`, default `top1`).
    pub metrics: Vec<String>,
    /// The algorithm with its parameters.
    pub algorithm: Algorithm,
}

/// Reads and parses the config file at `path`, resolving relative paths against its directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    Ok(parse(&text)?.rebase(dir))
}

/// A config file's layout, POT's: the sections and their keys (the algorithm's `params` are read by
/// `algorithm`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Layout {
    model: ModelSection,
    engine: EngineSection,
    compression: CompressionSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    #[serde(default)]
    model_name: Option<String>,
    model: PathBuf,
    #[serde(default)]
    weights: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineSection {
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    calibration: Option<Value>,
    #[serde(default)]
    validation: Option<Value>,
    #[serde(default)]
    metric: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompressionSection {
    #[serde(default)]
    target_device: Option<Value>,
    #[serde(default)]
    algorithms: Vec<Value>,
}

/// Parses a config's text; paths stay as written. Never panics, whatever the input.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let root: Value = serde_json::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    let Layout {
        model,
        engine,
        compression,
    } = schema::from_value(root, "")?;
    let weights = model.weights.filter(|w| !w.is_empty()).map(PathBuf::from);
    if weights.is_some() && !aquant_ir::is_ir(&model.model) {
        return Err(ConfigError::invalid(
            "model.weights",
            "an ONNX model carries its weights: leave this empty (weights are for an OpenVINO IR .xml model)",
        ));
    }
    if engine.device.as_ref().is_some_and(|d| d.trim().is_empty()) {
        return Err(ConfigError::invalid("engine.device", "empty device name"));
    }
    let calibration = data_source(engine.calibration, "engine.calibration")?;
    let validation = data_source(engine.validation, "engine.validation")?;
    let metrics = metric_names(engine.metric, "engine.metric")?;

    let target_device = compression
        .target_device
        .map(|v| algorithm::target_device(v, "compression.target_device"))
        .transpose()?;
    let [value] = <[Value; 1]>::try_from(compression.algorithms).map_err(|algorithms| {
        ConfigError::invalid(
            "compression.algorithms",
            format!(
                "must hold exactly one algorithm ({DEFAULT_QUANTIZATION} or {ACCURACY_AWARE_QUANTIZATION}), not {}",
                algorithms.len()
            ),
        )
    })?;
    let path = "compression.algorithms[0]";
    let algorithm = algorithm::read(value, path, target_device)?;

    if algorithm.control().is_some() && validation.is_none() {
        return Err(ConfigError::invalid(
            "engine.validation",
            format!("{ACCURACY_AWARE_QUANTIZATION} needs a validation dataset"),
        ));
    }
    if let Some(control) = algorithm.control() {
        if let Some(t) = control.metrics.iter().find(|t| !metrics.contains(&t.name)) {
            return Err(ConfigError::invalid(
                &format!("{path}.params.metrics"),
                format!("metric '{}' is not one of engine.metric", t.name),
            ));
        }
    }
    let calibration = calibration
        .or_else(|| validation.clone())
        .ok_or_else(|| ConfigError::Missing("engine.calibration".into()))?;
    Ok(Config {
        model_name: model.model_name,
        model: model.model,
        weights,
        device: engine.device,
        calibration,
        validation,
        metrics,
        algorithm,
    })
}

impl Config {
    /// The config with relative paths resolved against `dir`.
    fn rebase(self, dir: &Path) -> Config {
        Config {
            model: dir.join(&self.model),
            weights: self.weights.map(|w| dir.join(w)),
            calibration: self.calibration.rebase(dir),
            validation: self.validation.map(|v| v.rebase(dir)),
            ..self
        }
    }
}

/// A data source at `path`: a data-spec path or an inline spec object.
fn data_source(value: Option<Value>, path: &str) -> Result<Option<DataSource>, ConfigError> {
    Ok(match value {
        None => None,
        Some(Value::String(file)) => Some(DataSource::File(file.into())),
        Some(object @ Value::Object(_)) => Some(DataSource::Inline {
            spec: schema::from_value(object, path)?,
            base_dir: PathBuf::new(),
        }),
        Some(_) => {
            return Err(ConfigError::WrongType {
                path: path.to_string(),
                message: "expected a data-spec path or an inline data spec object".into(),
            })
        }
    })
}

/// `engine.metric`: one name or a list of names.
fn metric_names(value: Option<Value>, path: &str) -> Result<Vec<String>, ConfigError> {
    let names = match value {
        None => vec!["top1".to_string()],
        Some(Value::String(name)) => vec![name],
        Some(list) => schema::from_value(list, path)?,
    };
    if names.is_empty() {
        return Err(ConfigError::invalid(path, "names no metric"));
    }
    for name in &names {
        crate::metric::builtin(name).map_err(|e| ConfigError::rejected(path, e))?;
    }
    Ok(names)
}

/// Reads one algorithm entry, `{"name": ..., "params": {...}}` (POT's `compression.algorithms[i]`, POT's and
/// NNCF's parameter names), with the errors a config file gets: for front ends that take the algorithm
/// without a config file (the Python package). `target_device` is the compression section's, if any.
pub fn read_algorithm(
    value: Value,
    target_device: Option<Value>,
) -> Result<Algorithm, ConfigError> {
    let device = target_device
        .map(|v| algorithm::target_device(v, "target_device"))
        .transpose()?;
    algorithm::read(value, "algorithm", device)
}
