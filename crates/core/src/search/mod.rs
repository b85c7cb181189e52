//! Accuracy control's search: POT AccuracyAwareQuantization / NNCF `quantize_with_accuracy_control`, from
//! the quantized model to the verdict (which precision each group ends at, and why the search stopped). The
//! entry point that quantizes, runs this search and analyses the saved model is the job above it
//! (`crate::job::quantize_with_accuracy_control`).
//!
//! Split by role, as in NNCF: `subset` picks the ranking subset, `groups` the units of revert, `ranker` orders
//! them (a pure branch and bound over a `Scorer`: cohorts with prefix evaluation, or plain evaluation),
//! `restorer` is the loop as a state machine (baselines → quantized → mixed preset → tuning → restore →
//! deployed check → done) over a `Lab` that does the work (`engine_lab`: the engine; `record`: the journal's
//! replay and the reuse cache beside it), and `report` records what happened. The quantized model is a
//! [`QuantizedModel`](crate::quantize::QuantizedModel): every candidate is that model built with a set of ops left in FP32, so a revert
//! restores the original weights and biases by construction.

mod cohort;
pub(crate) mod engine_lab;
#[cfg(test)]
mod fake;
mod groups;
pub(crate) mod journal;
mod lab;
pub(crate) mod ladder;
mod limits;
mod ranker;
pub(crate) mod record;
mod remote;
mod report;
pub(crate) mod restorer;
mod scorer;
mod subset;
mod tuning;
pub mod worker;

pub use crate::params::{
    AccuracyControlParams, DropType, Levers, MaxDrop, MetricTarget, RankingScore, RunOptions,
};
pub use groups::{quantizer_groups, QuantizerGroup};
pub use journal::JOURNAL_VERSION;
pub use report::{
    Confirmation, ConfirmedMetric, DeployedMetric, DeployedReport, EvaluationCounts, FrontMetric,
    FrontPoint, MetricReport, OverflowFixReport, RankedBy, RankingEntry, Report, StepOutcome,
    StepReport, StopReason, TargetReport, Timings,
};
pub use subset::ranking_subset;
