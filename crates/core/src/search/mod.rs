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
mod ranker;
mod record;
mod report;
mod restorer;
mod run;
mod scorer;
mod subset;
mod tuning;

use aquant_onnx::ModelProto;

pub use crate::params::{
    AccuracyControlParams, DropType, Levers, MetricTarget, RankingScore, RunOptions,
};
pub use deployed::check_deployed;
pub use groups::{quantizer_groups, QuantizerGroup};
pub use journal::JOURNAL_VERSION;
// `crate::search::params::…` paths of the files not moved yet (deployed.rs) resolve through this.
use crate::params;
pub use report::{
    DeployedMetric, DeployedReport, EvaluationCounts, MetricReport, OverflowFixReport, RankedBy,
    RankingEntry, Report, StepOutcome, StepReport, StopReason, Timings,
};
pub use run::quantize_with_accuracy_control;
pub use subset::ranking_subset;

use crate::quantize::QuantizedModel;

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
