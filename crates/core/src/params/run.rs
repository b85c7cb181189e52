//! How a run is carried out, as opposed to what it computes: batch size, where intermediate models and the
//! journal go, the interrupt flag, the deployed engine, the evaluation shortcuts.
//!
//! These options sit below everything that reads them (the search, the sensitivity analysis, the base
//! algorithm's job), so that none of those has to import another to learn how it runs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::backend::Backend;
use crate::executor::Executor;
use crate::progress::{NoProgress, Progress};

/// Calibration samples the per-layer sensitivity is measured on when the caller does not say (enough to rank
/// ops; a few seconds on MobileNetV2).
pub const DEFAULT_SENSITIVITY_SAMPLES: usize = 8;

/// Bytes of FP32 outputs kept by default: every output of the bundled models' sets many times over, and a
/// fraction of a machine's memory.
pub const DEFAULT_REFERENCE_BUDGET: usize = 1 << 30;

/// Timed runs of each model in the deployed check's latency measure, by default.
pub const DEFAULT_LATENCY_RUNS: usize = 20;

/// How a run is carried out (not what it computes).
#[derive(Clone)]
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
    /// set ([`Report::deployed`](crate::search::Report::deployed)); when the search met the target and that engine does not, the search goes
    /// on with it as the judge.
    pub deployed: Option<&'a dyn Backend>,
    /// Samples per batch on the deployed engine. Its own setting, apart from [`RunOptions::batch_size`]:
    /// on some CPUs (AMX) an engine's int8 results depend on the batch, so the saved model is judged at the
    /// batch it will be served at (1, a latency-bound deployment, by default), whatever batch the search
    /// used for speed.
    pub deployed_batch: usize,
    /// Timed runs of the FP32 and the saved model on the deployed engine, one sample each, after the
    /// deployed check (`eval::measure_latency`); 0 skips the measure.
    pub latency_runs: usize,
    /// Calibration samples the per-layer sensitivity of the final model is measured on after the search
    /// ([`crate::sensitivity`]); 0 skips it.
    pub sensitivity_samples: usize,
    /// Where candidates of the search are evaluated on samples of the validation set (a cluster, say);
    /// `None`: on this machine's cores, with cohorts and prefix caching. Decisions stay here either way.
    pub executor: Option<&'a dyn Executor>,
    /// Bytes the run's resident memory should stay under (`None`: no limit): [`crate::job::run`] picks the
    /// threads and the FP32-output cache that fit ([`MemoryPlan`]), or refuses to start.
    pub memory_limit: Option<u64>,
    /// Bytes of FP32 outputs the search keeps for metrics that compare with them (beyond it, the least
    /// recently used are computed again when needed).
    pub reference_budget: usize,
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            batch_size: 1,
            intermediate_dir: None,
            compress_weights: true,
            progress: &NoProgress,
            levers: Levers::default(),
            journal: None,
            interrupt: None,
            deployed: None,
            deployed_batch: 1,
            latency_runs: DEFAULT_LATENCY_RUNS,
            sensitivity_samples: DEFAULT_SENSITIVITY_SAMPLES,
            executor: None,
            memory_limit: None,
            reference_budget: DEFAULT_REFERENCE_BUDGET,
        }
    }
}

/// Switches for the evaluation shortcuts of the search, all on by default. None of them changes the
/// result (the tests check it); turning one off measures what it saves (`bench/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Levers {
    /// Stop evaluating a ranking candidate as soon as it cannot rank first (exact branch and bound).
    pub early_stop: bool,
    /// Never evaluate the same candidate on the same samples twice in a run (full evaluations and ranking
    /// values; off: every repeat runs again — a resumed run still replays its journal).
    pub reuse: bool,
    /// Evaluate ranking candidates together, in parallel, one sample at a time each.
    pub cohorts: bool,
    /// In cohorts, run only the part of a candidate downstream of its change, on cached values of the rest;
    /// likewise each op's model of the sensitivity analysis downstream of its op, on the FP32 model's values
    /// (on ONNX Runtime its figures then differ from each op's whole model by float rounding: see
    /// [`crate::sensitivity`]).
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

/// How a run fits under its memory limit (report.json `memory`), as [`crate::job::MemoryNeeds::plan`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryPlan {
    /// The limit, in bytes.
    pub limit: u64,
    /// Threads evaluating at once.
    pub threads: usize,
    /// Bytes of FP32 outputs kept for the metrics that compare with them.
    pub reference_budget: usize,
    /// The estimated peak with these, in bytes.
    pub estimate: u64,
}
