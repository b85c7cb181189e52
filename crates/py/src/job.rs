//! One quantization job, run as the command line runs it — same library entry points, same output layout
//! ([`aquant::output::OutputDir`]), same journal and interrupt semantics — on a worker thread, while the
//! calling Python thread waits with the GIL released and watches for Ctrl-C.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

use aquant::graph::Sources;
use aquant::job::{self, Algorithm, Destination, Finished, Request};
use aquant::output::{ExternalData, OutputDir, OutputFormat};
use aquant::quantize::{device_precisions, ModelForm, Precisions, QuantizedModel, RestoreMode};
use aquant::search::{AccuracyControlParams, RunOptions};
use aquant::{Backend, ChosenBackend, Dataset, Metric, NoProgress, Progress, Result};
use aquant_onnx::ModelProto;
use pyo3::prelude::*;

use crate::dataset::PyDataset;
use crate::errors::{self, Causes};
use crate::progress::Lines;

/// How the job is run (not what it computes).
pub struct Settings {
    /// The form `output_dir` gets the model in (model.onnx, or model.xml + model.bin).
    pub format: OutputFormat,
    /// Samples per inference batch.
    pub batch_size: usize,
    /// Samples per batch of the deployed check (the serving batch).
    pub deployed_batch: usize,
    /// int8 weights in the saved model.
    pub compress_weights: bool,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Where model.onnx, report.json, intermediate/ and state/ go.
    pub output_dir: Option<PathBuf>,
    /// Intermediate models elsewhere than `output_dir/intermediate` (NNCF `intermediate_model_dir`).
    pub intermediate_dir: Option<PathBuf>,
    /// Continue the interrupted run whose journal is in `output_dir/state`.
    pub resume: bool,
    /// Worker threads (NNCF `num_ranking_workers`); default: one per core.
    pub workers: Option<usize>,
    /// Where the search's candidates are evaluated (`aquant.ray.RayExecutor`); `None`: here.
    pub executor: Option<crate::remote::PyExecutor>,
    /// Also build the model with the other weight storage (POT's flow decides on `compress_model_weights`
    /// after the run).
    pub both_forms: bool,
    /// Bytes the run must stay under (`--memory-limit`); `None`: no limit.
    pub memory_limit: Option<u64>,
}

/// A job with every input opened and checked.
pub struct OpenedJob {
    /// The FP32 model.
    pub model: ModelProto,
    /// The model's files, when it came from a file (never overwritten).
    pub sources: Option<Sources>,
    /// Whether `output_dir` gets the model with external data (resolved against the input).
    pub external_data: ExternalData,
    /// The algorithm and its parameters.
    pub algorithm: Algorithm,
    /// The calibration set.
    pub calibration: PyDataset,
    /// The validation set, when it is another object than the calibration set.
    pub other_validation: Option<PyDataset>,
    /// Whether there is a validation set (`other_validation`, or the calibration set itself).
    pub has_validation: bool,
    /// The controlled metric.
    pub metric: Option<Box<dyn Metric>>,
    /// The engine that calibrates and searches, and why that one.
    pub backend: ChosenBackend,
    /// The engine the saved model is judged on (ONNX Runtime), if any.
    pub deployed: Option<Box<dyn Backend>>,
    /// How to run.
    pub settings: Settings,
    /// Exceptions raised by callbacks.
    pub causes: Causes,
}

/// What a finished job hands back to Python.
pub struct Returned {
    /// The quantized model's ONNX bytes.
    pub model: Vec<u8>,
    /// report.json's content.
    pub report: String,
    /// The run's summary line, as the command line prints it.
    pub summary: String,
    /// The run was interrupted: the model is the best so far.
    pub interrupted: bool,
    /// With [`Settings::both_forms`]: the same model with the other weight storage.
    pub other_form: Option<Vec<u8>>,
}

impl OpenedJob {
    fn validation(&self) -> Option<&dyn Dataset> {
        match &self.other_validation {
            Some(v) => Some(v),
            None if self.has_validation => Some(&self.calibration),
            None => None,
        }
    }

    /// Runs the job (on the worker thread).
    /// How the settings say to carry the run out (no journal or interrupt yet: accuracy control adds them).
    fn run_options<'a>(
        &'a self,
        output: Option<&OutputDir>,
        progress: &'a dyn Progress,
    ) -> RunOptions<'a> {
        RunOptions {
            batch_size: self.settings.batch_size,
            intermediate_dir: self
                .settings
                .intermediate_dir
                .clone()
                .or_else(|| output.map(OutputDir::intermediate)),
            compress_weights: self.settings.compress_weights,
            progress,
            deployed: self.deployed.as_deref(),
            deployed_batch: self.settings.deployed_batch,
            memory_limit: self.settings.memory_limit,
            ..Default::default()
        }
    }

    fn execute(mut self, interrupt: &AtomicBool) -> Result<Returned> {
        let lines = Lines::default();
        let progress: &dyn Progress = if self.settings.progress {
            &lines
        } else {
            &NoProgress
        };
        let output = match &self.settings.output_dir {
            Some(dir) => {
                let inputs = self.sources.as_ref().map_or(&[][..], |s| &s.files[..]);
                Some(OutputDir::plan(inputs, dir)?)
            }
            None => None,
        };
        let state = match (&output, self.algorithm.control()) {
            (Some(output), Some(_)) => {
                output.create()?;
                Some(output.state(self.settings.resume)?)
            }
            _ => None,
        };
        let metrics: Vec<&dyn Metric> = self.metric.iter().map(|m| m.as_ref()).collect();
        let request = Request {
            backend: &self.backend,
            model: std::mem::take(&mut self.model),
            model_name: self.model_name(),
            algorithm: &self.algorithm,
            calibration: &self.calibration,
            // NNCF's `quantize` takes no validation set: DefaultQuantization has nothing to judge against.
            validation: self.algorithm.control().and(self.validation()),
            metrics: &metrics,
            deployed_check: &AccuracyControlParams::default(),
            options: RunOptions {
                interrupt: Some(interrupt),
                executor: self
                    .settings
                    .executor
                    .as_ref()
                    .map(|e| e as &dyn aquant::Executor),
                ..self.run_options(output.as_ref(), progress)
            },
            output: output.as_ref().map(|dir| Destination {
                dir,
                format: self.settings.format,
                external_data: self.external_data,
                state,
            }),
        };
        let finished = job::run(request)?;
        let other = match &finished {
            Finished::Default(outcome) => {
                let params = self.algorithm.quantization();
                let precisions = device_precisions(outcome.quantized.placement(), params);
                self.other_form(&outcome.quantized, &precisions, Default::default())?
            }
            Finished::AccuracyControl(outcome) => self.other_form(
                &outcome.quantized,
                &outcome.report.precisions,
                restore_mode(&self.algorithm),
            )?,
        };
        Ok(Returned {
            model: aquant_onnx::encode_model(finished.model()),
            report: finished.report_json()?,
            summary: finished.summary(),
            interrupted: finished.interrupted(),
            other_form: other,
        })
    }

    /// The saved model with the other weight storage, when asked for: the same ops at the same precisions (the
    /// device's for DefaultQuantization, as `quantize_default` builds it; the report's for accuracy control:
    /// 16-bit steps and GNA's starting precisions too, not only the reverted ops).
    fn other_form(
        &self,
        quantized: &QuantizedModel,
        precisions: &Precisions,
        mode: RestoreMode,
    ) -> Result<Option<Vec<u8>>> {
        if !self.settings.both_forms {
            return Ok(None);
        }
        let form = ModelForm::Export {
            compress_weights: !self.settings.compress_weights,
        };
        Ok(Some(aquant_onnx::encode_model(
            &quantized.build_with(precisions, mode, form)?,
        )))
    }

    fn model_name(&self) -> String {
        self.sources
            .as_ref()
            .map(|s| s.files[0].display().to_string())
            .unwrap_or_default()
    }

    /// Runs the job on a worker thread while this thread waits without the GIL and checks for signals every
    /// 100 ms: Ctrl-C asks the run to stop at its next safe point, as the command line's does; the best model
    /// so far is then saved and returned with `interrupted`. A panic becomes a `RuntimeError`.
    pub fn run(self, py: Python<'_>) -> PyResult<Returned> {
        let causes = self.causes.clone();
        let pool = match self.settings.workers {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| {
                        pyo3::exceptions::PyRuntimeError::new_err(format!("worker threads: {e}"))
                    })?,
            ),
            None => None,
        };
        let flag = AtomicBool::new(false);
        let (done, result) = channel();
        let result = Mutex::new(result);
        let mut pressed = false;
        let outcome = std::thread::scope(|scope| {
            let flag = &flag;
            scope.spawn(move || {
                let work = || match &pool {
                    Some(pool) => pool.install(|| self.execute(flag)),
                    None => self.execute(flag),
                };
                let _ = done.send(catch_unwind(AssertUnwindSafe(work)));
            });
            loop {
                let waited = py.detach(|| {
                    let result = result.lock().unwrap_or_else(|p| p.into_inner());
                    result.recv_timeout(Duration::from_millis(100))
                });
                match waited {
                    Ok(outcome) => return Some(outcome),
                    Err(RecvTimeoutError::Disconnected) => return None,
                    Err(RecvTimeoutError::Timeout) => {}
                }
                if py.check_signals().is_err() {
                    if !pressed {
                        eprintln!("\ninterrupt: stopping at the next safe point; the best model so far is kept");
                    }
                    pressed = true;
                    flag.store(true, Ordering::SeqCst);
                }
            }
        });
        match outcome {
            Some(Ok(Ok(mut finished))) => {
                finished.interrupted |= pressed;
                Ok(finished)
            }
            Some(Ok(Err(error))) => Err(errors::to_py(py, error, &causes)),
            Some(Err(panic)) => Err(errors::panicked(panic)),
            None => Err(pyo3::exceptions::PyRuntimeError::new_err(
                "the run's thread ended without a result",
            )),
        }
    }
}

/// What accuracy control's reverted ops return to, for the other weight form (DefaultQuantization reverts
/// nothing).
fn restore_mode(algorithm: &Algorithm) -> RestoreMode {
    algorithm
        .control()
        .map_or_else(RestoreMode::default, |control| control.restore_mode)
}
