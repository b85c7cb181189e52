//! Accuracy control: POT AccuracyAwareQuantization / NNCF `quantize_with_accuracy_control`.
//!
//! Split by job, as in NNCF: `subset` picks the ranking subset, `groups` the units of revert, `ranker` orders
//! them (a pure branch and bound over a `Scorer`: cohorts with prefix evaluation, or plain evaluation),
//! `restorer` is the loop as a state machine (baselines → quantized → mixed preset → tuning → restore →
//! deployed check → done) over a `Lab` that does the work (`context`: the engine; `record`: the journal's
//! replay and the reuse cache beside it), and `report` records what happened. The quantized model is a
//! [`QuantizedModel`]: every candidate is that model built with a set of ops left in FP32, so a revert
//! restores the original weights and biases by construction.

mod cohort;
mod context;
mod deployed;
#[cfg(test)]
mod fake;
mod groups;
mod journal;
mod lab;
mod ladder;
mod limits;
mod params;
mod ranker;
mod record;
mod report;
mod restorer;
mod run;
mod scorer;
mod subset;
mod tuning;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use aquant_onnx::ModelProto;

pub use deployed::check_deployed;
pub use groups::{quantizer_groups, QuantizerGroup};
pub use journal::JOURNAL_VERSION;
pub use params::{AccuracyControlParams, DropType, MetricTarget, RankingScore};
pub use report::{
    DeployedMetric, DeployedReport, EvaluationCounts, MetricReport, OverflowFixReport, RankedBy,
    RankingEntry, Report, StepOutcome, StepReport, StopReason, Timings,
};
pub use run::quantize_with_accuracy_control;
pub use subset::ranking_subset;

use crate::backend::Backend;
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
    /// The engine the saved model is deployed on: the saved model is judged there on the full validation
    /// set ([`Report::deployed`]); when the search met the target and that engine does not, the search goes
    /// on with it as the judge.
    pub deployed: Option<&'a dyn Backend>,
    /// Samples per batch on the deployed engine. Its own setting, apart from [`RunOptions::batch_size`]:
    /// on some CPUs (AMX) an engine's int8 results depend on the batch, so the saved model is judged at the
    /// batch it will be served at (1, a latency-bound deployment, by default), whatever batch the search
    /// used for speed.
    pub deployed_batch: usize,
    /// Calibration samples the per-layer sensitivity of the final model is measured on after the search
    /// ([`crate::sensitivity`]); 0 skips it.
    pub sensitivity_samples: usize,
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
            deployed: None,
            deployed_batch: 1,
            sensitivity_samples: crate::sensitivity::DEFAULT_SAMPLES,
        }
    }
}

/// Switches for the evaluation shortcuts of the search, all on by default. None of them changes the
/// result (the tests check it); turning one off measures what it saves (`bench/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Levers {
    /// Stop evaluating a ranking candidate as soon as it cannot rank first (exact branch and bound).
    pub early_stop: bool,
    /// Never evaluate the same candidate on the same samples twice in a run (full evaluations and ranking
    /// values; off: every repeat runs again — a resumed run still replays its journal).
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
