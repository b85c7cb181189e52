//! Accuracy control: POT AccuracyAwareQuantization / NNCF `quantize_with_accuracy_control`.
//!
//! Split by job, as in NNCF: [`subset`] picks the ranking subset, [`groups`] the units of revert, [`ranker`]
//! scores them, [`restorer`] runs the loop (revert the best group, evaluate, keep / roll back / re-rank), and
//! [`report`] records what happened. The quantized model is a [`QuantizedModel`]: every candidate is that model
//! built with a set of ops left in FP32, so a revert restores the original weights and biases by construction.

mod cohort;
mod context;
mod groups;
mod journal;
mod params;
mod ranker;
mod report;
mod restorer;
mod subset;
mod tuning;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use aquant_onnx::ModelProto;

pub use groups::{quantizer_groups, QuantizerGroup};
pub use params::{AccuracyControlParams, DropType, MetricTarget};
pub use report::{EvaluationCounts, MetricReport, RankingEntry, Report, StepReport, Timings};
pub use restorer::quantize_with_accuracy_control;
pub use subset::ranking_subset;

use crate::progress::Progress;
use crate::quantize::QuantizedModel;

/// How a run is carried out (not what it computes).
pub struct RunOptions<'a> {
    /// Samples per inference batch.
    pub batch_size: usize,
    /// Where to save the model after every step (`None`: not saved).
    pub intermediate_dir: Option<PathBuf>,
    /// Store weights as int8 in the saved models (POT `compress_model_weights`); otherwise FP32 weights behind
    /// QuantizeLinear/DequantizeLinear.
    pub compress_weights: bool,
    /// Progress reporting.
    pub progress: &'a dyn Progress,
    /// Evaluation shortcuts (all on by default).
    pub levers: Levers,
    /// The run's journal file: results are written there as they are obtained, and a run given an existing
    /// journal resumes from it (`None`: kept in memory only).
    pub journal: Option<PathBuf>,
    /// Once set (by a Ctrl-C handler, say), the run stops at the next safe point and returns the best model
    /// so far, with `interrupted` in its report.
    pub interrupt: Option<&'a AtomicBool>,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            batch_size: 1,
            intermediate_dir: None,
            compress_weights: true,
            progress: &crate::progress::NoProgress,
            levers: Levers::default(),
            journal: None,
            interrupt: None,
        }
    }
}

/// Switches for the evaluation shortcuts of the search, all on by default. None of them changes the
/// result (the tests check it); turning one off measures what it saves (`bench/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Levers {
    /// Stop evaluating a ranking candidate as soon as it cannot rank first (exact branch and bound).
    pub early_stop: bool,
    /// Never evaluate the same model on the same samples twice.
    pub reuse: bool,
    /// Evaluate ranking candidates together, in parallel, one sample at a time each.
    pub cohorts: bool,
    /// In cohorts, run only the part of a candidate downstream of its change, on cached values of the rest.
    pub prefix_cache: bool,
}

impl Default for Levers {
    fn default() -> Self {
        Levers {
            early_stop: true,
            reuse: true,
            cohorts: true,
            prefix_cache: true,
        }
    }
}

/// The result of accuracy-controlled quantization.
pub struct Outcome {
    /// The final quantized model (state), to build or inspect.
    pub quantized: QuantizedModel,
    /// The final deployable QDQ model.
    pub model: ModelProto,
    /// What happened.
    pub report: Report,
}

impl Outcome {
    /// Whether every metric is within its allowed drop.
    pub fn target_met(&self) -> bool {
        self.report.target_met
    }
}
