//! POT's Python flow, in Rust: `load_model`, `create_pipeline(algorithms, engine)`, `pipeline.run(model)`,
//! `pipeline.evaluate(model)`, `compress_model_weights(model)`, `save_model(model, path, name)`.
//!
//! Users of OpenVINO POT keep their habits: an [`Engine`] holds what POT's engine holds (the inference
//! backend, the data, the metrics), [`Algorithm`]s carry POT's parameters, and the pipeline runs them. The
//! datasets and metrics are the [`Dataset`] and [`Metric`] traits, so user types plug in (see
//! `examples/custom_metric.rs`).
//!
//! ```no_run
//! # fn demo(backend: &dyn aquant::Backend, data: &dyn aquant::Dataset, top1: &dyn aquant::Metric)
//! # -> aquant::Result<()> {
//! use aquant::pipeline::{self, Algorithm, Engine};
//! let model = pipeline::load_model("model.onnx".as_ref())?;
//! let engine = Engine::new(backend, data, vec![top1]);
//! let algorithm = Algorithm::AccuracyAware {
//!     quantization: Default::default(),
//!     control: Default::default(),
//! };
//! let pipeline = pipeline::create_pipeline(vec![algorithm], engine)?;
//! let mut compressed = pipeline.run(model)?;
//! pipeline::compress_model_weights(&mut compressed);
//! pipeline::save_model(&compressed, "out".as_ref(), "model_int8")?;
//! println!("{}", pipeline.evaluate(&compressed.to_onnx()?)?.value());
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{Evaluation, Evaluator};
use crate::graph::Graph;
pub use crate::job::Algorithm;
use crate::job::{self, DefaultReport};
use crate::metric::Metric;
use crate::progress::{NoProgress, Progress};
use crate::quantize::{ModelForm, Precisions, QuantizedModel, RestoreMode};
use crate::search::{Report, RunOptions};

/// Loads an ONNX model (POT's `load_model`), checked and indexed.
pub fn load_model(path: &Path) -> Result<ModelProto> {
    Ok(Graph::load(path)?.into_model())
}

/// What POT's engine holds: how models run, on which data, scored how.
pub struct Engine<'a> {
    backend: &'a dyn Backend,
    data: &'a dyn Dataset,
    calibration: Option<&'a dyn Dataset>,
    metrics: Vec<&'a dyn Metric>,
    batch_size: usize,
    progress: &'a dyn Progress,
}

impl<'a> Engine<'a> {
    /// An engine evaluating on `data` with `metrics` (the first drives accuracy control); calibration uses
    /// `data` too unless [`Engine::with_calibration`] says otherwise.
    pub fn new(
        backend: &'a dyn Backend,
        data: &'a dyn Dataset,
        metrics: Vec<&'a dyn Metric>,
    ) -> Self {
        Engine {
            backend,
            data,
            calibration: None,
            metrics,
            batch_size: 1,
            progress: &NoProgress,
        }
    }

    /// Calibrates on `calibration` instead of the evaluation data.
    pub fn with_calibration(mut self, calibration: &'a dyn Dataset) -> Self {
        self.calibration = Some(calibration);
        self
    }

    /// Reports progress to `progress`.
    pub fn with_progress(mut self, progress: &'a dyn Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Samples per inference batch.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }
}

/// Algorithms bound to an engine.
pub struct Pipeline<'a> {
    algorithm: Algorithm,
    engine: Engine<'a>,
}

/// POT's `create_pipeline`. aquant's algorithms are complete pipelines on their own (accuracy control
/// contains its base quantization), so exactly one is expected.
pub fn create_pipeline(algorithms: Vec<Algorithm>, engine: Engine) -> Result<Pipeline> {
    let mut algorithms = algorithms.into_iter();
    match (algorithms.next(), algorithms.next()) {
        (Some(algorithm), None) => {
            if let Algorithm::AccuracyAware { control, .. } = &algorithm {
                control.validate()?;
            }
            if engine.metrics.is_empty() {
                return Err(Error::Config("the engine has no metric".into()));
            }
            Ok(Pipeline { algorithm, engine })
        }
        (None, _) => Err(Error::Config("create_pipeline: no algorithm given".into())),
        (Some(_), Some(_)) => Err(Error::Config(
            "create_pipeline: give one algorithm (AccuracyAwareQuantization already runs DefaultQuantization first)"
                .into(),
        )),
    }
}

/// The result of [`Pipeline::run`]: the quantized model with the ops left in FP32, still editable.
pub struct CompressedModel {
    quantized: QuantizedModel,
    reverted: BTreeSet<String>,
    /// Every op not at the base precision (the reverted ones as FP32, the precision ladder's 16-bit ones).
    precisions: Precisions,
    restore_mode: RestoreMode,
    compressed_weights: bool,
    /// The accuracy-control report, for AccuracyAwareQuantization.
    pub report: Option<Report>,
    /// The DefaultQuantization report, for DefaultQuantization.
    pub default_report: Option<DefaultReport>,
}

impl CompressedModel {
    /// The ONNX QDQ model: FP32 weights behind QuantizeLinear/DequantizeLinear, or int8 weights once
    /// [`compress_model_weights`] ran.
    pub fn to_onnx(&self) -> Result<ModelProto> {
        self.quantized.build_with(
            &self.precisions,
            self.restore_mode,
            ModelForm::Export {
                compress_weights: self.compressed_weights,
            },
        )
    }

    /// The ops left in FP32.
    pub fn reverted(&self) -> &BTreeSet<String> {
        &self.reverted
    }
}

impl Pipeline<'_> {
    /// Runs the algorithm on `model` (POT's `pipeline.run`).
    pub fn run(&self, model: ModelProto) -> Result<CompressedModel> {
        let engine = &self.engine;
        let calibration = engine.calibration.unwrap_or(engine.data);
        match &self.algorithm {
            Algorithm::Default(params) => {
                let options = RunOptions {
                    batch_size: engine.batch_size,
                    progress: engine.progress,
                    ..Default::default()
                };
                let outcome = job::quantize_default(
                    engine.backend,
                    model,
                    calibration,
                    params,
                    None,
                    &options,
                )?;
                Ok(CompressedModel {
                    quantized: outcome.quantized,
                    reverted: BTreeSet::new(),
                    precisions: Precisions::new(),
                    restore_mode: RestoreMode::default(),
                    compressed_weights: false,
                    report: None,
                    default_report: Some(outcome.report),
                })
            }
            Algorithm::AccuracyAware {
                quantization,
                control,
            } => {
                let options = RunOptions {
                    batch_size: engine.batch_size,
                    progress: engine.progress,
                    ..Default::default()
                };
                let outcome = job::quantize_with_accuracy_control(
                    engine.backend,
                    model,
                    calibration,
                    engine.data,
                    &engine.metrics,
                    quantization,
                    control,
                    &options,
                )?;
                Ok(CompressedModel {
                    reverted: outcome.report.reverted.iter().cloned().collect(),
                    precisions: outcome.report.precisions.clone(),
                    quantized: outcome.quantized,
                    restore_mode: control.restore_mode,
                    compressed_weights: false,
                    report: Some(outcome.report),
                    default_report: None,
                })
            }
        }
    }

    /// Evaluates `model` on the engine's data with its metrics (POT's `pipeline.evaluate`). Metrics that
    /// compare with the FP32 model need one: evaluate those through accuracy control instead.
    pub fn evaluate(&self, model: &ModelProto) -> Result<Evaluation> {
        let engine = &self.engine;
        let evaluator = Evaluator::new(
            engine.backend,
            engine.data,
            engine.metrics.clone(),
            None,
            engine.batch_size,
            engine.progress,
        )?;
        evaluator.evaluate(model, &evaluator.all_indices(), "evaluating")
    }
}

/// Stores the weights of quantized ops as int8 (POT's `compress_model_weights`): a model four times smaller
/// with the same numbers.
pub fn compress_model_weights(model: &mut CompressedModel) {
    model.compressed_weights = true;
}

/// Writes `model` to `save_path/model_name.onnx` atomically (POT's `save_model`) and returns the path.
pub fn save_model(model: &CompressedModel, save_path: &Path, model_name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(save_path).map_err(|e| Error::io("creating", save_path, e))?;
    let path = save_path.join(format!("{model_name}.onnx"));
    crate::output::save_onnx(&model.to_onnx()?, &path, crate::output::ExternalData::Auto)?;
    Ok(path)
}
