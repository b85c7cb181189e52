//! POT's Python flow, in Rust: `load_model`, `create_pipeline(algorithms, engine)`, `pipeline.run(model)`,
//! `pipeline.evaluate(model)`, `compress_model_weights(model)`, `save_model(model, save_path, model_name)`.
//!
//! A POT user's script translates line by line; the steps call the same library functions the CLI does, so a
//! pipeline and `aquant quantize` give the same model for the same parameters.
//!
//! ```ignore
//! let model = pipeline::load_model("mnist.onnx".as_ref())?;
//! let engine = pipeline::Engine::new(&backend, &validation, vec![&my_metric]).with_calibration(&calibration);
//! let pipeline = pipeline::create_pipeline(vec![Algorithm::AccuracyAware(q, control)], engine)?;
//! let mut quantized = pipeline.run(&model)?;
//! pipeline::compress_model_weights(&mut quantized)?;
//! pipeline::save_model(&quantized, "out".as_ref(), "mnist_int8")?;
//! let values = pipeline.evaluate(&quantized)?;
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aquant_onnx::ModelProto;

use crate::config::Config;
use crate::eval::MetricValue;
use crate::quantize::{self, ModelForm, QuantizationParams, QuantizedModel, RestoreMode};
use crate::search::{self, AccuracyControlParams, Report, RunOptions};
use crate::{Backend, Dataset, Error, Evaluator, Graph, Metric, NoProgress, Result};

/// A model as the pipeline passes it around: the ONNX model, and for a pipeline's output what is needed to
/// rebuild it with int8 weights ([`compress_model_weights`]) and what the run did.
pub struct Model {
    onnx: ModelProto,
    /// The FP32 model that reference metrics (agreement, mse, nmse) compare with; `None`: this model is FP32.
    fp32: Option<ModelProto>,
    quantized: Option<QuantizedState>,
    report: Option<Report>,
}

/// The quantization state behind a pipeline's output.
struct QuantizedState {
    model: QuantizedModel,
    reverted: BTreeSet<String>,
    restore_mode: RestoreMode,
}

impl Model {
    /// The ONNX model.
    pub fn onnx(&self) -> &ModelProto {
        &self.onnx
    }

    /// What accuracy control did (`None` for a loaded model or DefaultQuantization).
    pub fn report(&self) -> Option<&Report> {
        self.report.as_ref()
    }
}

/// One of POT's algorithms with its parameters.
#[derive(Debug, Clone)]
pub enum Algorithm {
    /// DefaultQuantization: quantize every op that can be.
    Default(QuantizationParams),
    /// AccuracyAwareQuantization: DefaultQuantization, then revert groups until the drop is within bounds.
    AccuracyAware(QuantizationParams, AccuracyControlParams),
}

impl Algorithm {
    /// The algorithm a config describes.
    pub fn from_config(config: &Config) -> Algorithm {
        match &config.accuracy_control {
            Some(control) => Algorithm::AccuracyAware(config.quantization.clone(), control.clone()),
            None => Algorithm::Default(config.quantization.clone()),
        }
    }
}

/// POT's engine: how models run (the backend) and on what (data and metrics).
pub struct Engine<'a> {
    backend: &'a dyn Backend,
    validation: &'a dyn Dataset,
    calibration: Option<&'a dyn Dataset>,
    metrics: Vec<&'a dyn Metric>,
    batch_size: usize,
}

impl<'a> Engine<'a> {
    /// An engine evaluating on `validation` with `metrics`; it also calibrates on `validation` unless
    /// [`Engine::with_calibration`] names another set (POT's single data loader).
    pub fn new(
        backend: &'a dyn Backend,
        validation: &'a dyn Dataset,
        metrics: Vec<&'a dyn Metric>,
    ) -> Engine<'a> {
        Engine {
            backend,
            validation,
            calibration: None,
            metrics,
            batch_size: 1,
        }
    }

    /// Calibrates on `calibration` instead of the validation set.
    pub fn with_calibration(self, calibration: &'a dyn Dataset) -> Engine<'a> {
        Engine {
            calibration: Some(calibration),
            ..self
        }
    }

    /// Samples per inference batch (default 1).
    pub fn with_batch_size(self, batch_size: usize) -> Engine<'a> {
        Engine { batch_size, ..self }
    }
}

/// An algorithm bound to an engine.
pub struct Pipeline<'a> {
    algorithm: Algorithm,
    engine: Engine<'a>,
}

/// Loads an FP32 ONNX model.
pub fn load_model(path: &Path) -> Result<Model> {
    Ok(Model {
        onnx: Graph::load(path)?.into_model(),
        fp32: None,
        quantized: None,
        report: None,
    })
}

/// A pipeline running `algorithms` (exactly one: aquant has no algorithm to chain after another) on `engine`.
pub fn create_pipeline(algorithms: Vec<Algorithm>, engine: Engine<'_>) -> Result<Pipeline<'_>> {
    let [algorithm]: [Algorithm; 1] = algorithms.try_into().map_err(|list: Vec<Algorithm>| {
        Error::Config(format!(
            "a pipeline runs exactly one algorithm, not {}",
            list.len()
        ))
    })?;
    if engine.metrics.is_empty() {
        return Err(Error::Config("the engine has no metric".into()));
    }
    Ok(Pipeline { algorithm, engine })
}

impl Pipeline<'_> {
    /// Quantizes `model`. Weights stay FP32 behind QuantizeLinear/DequantizeLinear until
    /// [`compress_model_weights`], as in POT.
    pub fn run(&self, model: &Model) -> Result<Model> {
        let engine = &self.engine;
        let calibration = engine.calibration.unwrap_or(engine.validation);
        let fp32 = model.onnx.clone();
        let (quantized, reverted, restore_mode, report) = match &self.algorithm {
            Algorithm::Default(params) => {
                let (quantized, _) = quantize::quantize(
                    engine.backend,
                    fp32.clone(),
                    calibration,
                    params,
                    engine.batch_size,
                    &NoProgress,
                )?;
                (quantized, BTreeSet::new(), RestoreMode::default(), None)
            }
            Algorithm::AccuracyAware(params, control) => {
                let options = RunOptions {
                    batch_size: engine.batch_size,
                    compress_weights: false,
                    ..Default::default()
                };
                let outcome = search::quantize_with_accuracy_control(
                    engine.backend,
                    fp32.clone(),
                    calibration,
                    engine.validation,
                    &engine.metrics,
                    params,
                    control,
                    &options,
                )?;
                let reverted = outcome.report.reverted.iter().cloned().collect();
                (
                    outcome.quantized,
                    reverted,
                    control.restore_mode,
                    Some(outcome.report),
                )
            }
        };
        let state = QuantizedState {
            model: quantized,
            reverted,
            restore_mode,
        };
        Ok(Model {
            onnx: state.build(false)?,
            fp32: Some(fp32),
            quantized: Some(state),
            report,
        })
    }

    /// The engine's metrics of `model` on the whole validation set.
    pub fn evaluate(&self, model: &Model) -> Result<Vec<MetricValue>> {
        let engine = &self.engine;
        let reference = model.fp32.as_ref().unwrap_or(&model.onnx);
        let evaluator = Evaluator::new(
            engine.backend,
            engine.validation,
            engine.metrics.clone(),
            Some(reference),
            engine.batch_size,
            &NoProgress,
        )?;
        let indices: Vec<usize> = (0..engine.validation.len()).collect();
        let outputs = evaluator.outputs(&model.onnx, &indices, "evaluating")?;
        Ok(evaluator.score(&indices, &outputs)?.metrics)
    }
}

impl QuantizedState {
    fn build(&self, compress_weights: bool) -> Result<ModelProto> {
        self.model.build(
            &self.reverted,
            self.restore_mode,
            ModelForm::Export { compress_weights },
        )
    }
}

/// Stores the quantized weights as int8 (with their DequantizeLinear) instead of FP32 behind
/// QuantizeLinear/DequantizeLinear: the same numbers in about a quarter of the bytes. A model the pipeline
/// did not quantize is left as it is.
pub fn compress_model_weights(model: &mut Model) -> Result<()> {
    if let Some(state) = &model.quantized {
        model.onnx = state.build(true)?;
    }
    Ok(())
}

/// Writes `model` to `save_path/model_name.onnx` (creating the directory) and returns that path.
pub fn save_model(model: &Model, save_path: &Path, model_name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(save_path)
        .map_err(|e| Error::Config(format!("creating '{}': {e}", save_path.display())))?;
    let path = save_path.join(format!("{model_name}.onnx"));
    aquant_onnx::save_model(&model.onnx, &path)?;
    Ok(path)
}
