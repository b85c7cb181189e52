//! The report of an accuracy-controlled run: what was reverted, why, and what it cost.
//!
//! Serialized as `report.json`; the schema is the one documented in the user's guide and is stable: fields are
//! only ever added.

use serde::Serialize;

use crate::profile::ProfileReport;
use crate::search::Levers;

use crate::metric::Direction;

/// One controlled metric's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    /// Metric name.
    pub name: String,
    /// Whether higher is better.
    pub direction: Direction,
    /// FP32 value (given or measured).
    pub baseline: f64,
    /// Value of the fully quantized model.
    pub quantized: f64,
    /// Value of the final model.
    pub r#final: f64,
    /// Drop of the final model (positive = worse than FP32), in the metric's units.
    pub drop: f64,
    /// Allowed drop, in the metric's units.
    pub allowed_drop: f64,
}

/// One revert attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    /// Group id.
    pub group: usize,
    /// The ops the step returned to FP32.
    pub reverted_group: Vec<String>,
    /// Value of the controlled metric after the step.
    pub metric: f64,
    /// Drop of the controlled metric after the step.
    pub drop: f64,
    /// Whether the revert was kept (false: rolled back because the drop grew).
    pub kept: bool,
    /// Why: "target met", "improved", "no improvement: re-ranked", "drop increased: rolled back"…
    pub reason: String,
}

/// One group's ranking score (higher restores more).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RankingEntry {
    /// Group id.
    pub group: usize,
    /// Ops of the group.
    pub nodes: Vec<String>,
    /// Score on the ranking subset (the metric's value with this group reverted).
    pub score: f64,
    /// False when evaluation stopped early: `score` is then the best the group could still have reached,
    /// already below the groups ranked ahead of it.
    pub exact: bool,
}

/// How much was evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvaluationCounts {
    /// Evaluations on the full validation set.
    pub full: usize,
    /// Evaluations on the ranking subset.
    pub subset: usize,
    /// Samples run through the engine, all evaluations together.
    pub samples_inferred: usize,
}

/// Where the time went, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Calibration pass (and bias correction).
    pub calibration: f64,
    /// FP32 evaluation.
    pub fp32_eval: f64,
    /// INT8 evaluation of the fully quantized model.
    pub int8_eval: f64,
    /// All ranking passes.
    pub ranking: f64,
    /// Revert steps (full evaluations and saving intermediate models).
    pub restore: f64,
    /// Everything.
    pub total: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// "AccuracyAwareQuantization".
    pub algorithm: String,
    /// The input model.
    pub model: String,
    /// Per controlled metric.
    pub metrics: Vec<MetricReport>,
    /// Whether every metric is within its allowed drop.
    pub target_met: bool,
    /// The run was interrupted: the model is the best found so far.
    pub interrupted: bool,
    /// Why the search stopped.
    pub stop_reason: String,
    /// Ops quantized by the base algorithm.
    pub quantized_ops: usize,
    /// Ops returned to FP32 in the final model.
    pub reverted_ops: usize,
    /// Names of the reverted ops.
    pub reverted: Vec<String>,
    /// Preset of the final model ("performance" or "mixed").
    pub preset: String,
    /// With `tune_hyperparams`: the base-algorithm parameters that replaced the given ones, if any did.
    pub tuned_parameters: Option<serde_json::Value>,
    /// Every revert attempt, in order.
    pub steps: Vec<StepReport>,
    /// The last ranking computed.
    pub ranking: Vec<RankingEntry>,
    /// Evaluation counts.
    pub evaluations: EvaluationCounts,
    /// Timings.
    pub timings_s: Timings,
    /// Where the evaluations' time went (engine work summed over threads).
    pub profile: ProfileReport,
    /// The evaluation shortcuts used.
    pub levers: Levers,
    /// The inference engine.
    pub backend: String,
    /// Where the final model was written (set by the caller that saves it).
    pub output: Option<String>,
}

impl Report {
    /// The one-line human summary: "2 of 64 quantized ops reverted; top1 0.8233 → 0.8233, drop 0.0000 ≤ 0.003".
    pub fn summary(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|m| {
                format!(
                    "{} {:.4} → {:.4}, drop {:.4} {} {:.4}",
                    m.name,
                    m.baseline,
                    m.r#final,
                    m.drop,
                    if m.drop <= m.allowed_drop + 1e-12 {
                        "≤"
                    } else {
                        ">"
                    },
                    m.allowed_drop
                )
            })
            .collect();
        let head = format!(
            "{} of {} quantized ops reverted; {}",
            self.reverted_ops,
            self.quantized_ops,
            metrics.join("; ")
        );
        if self.target_met {
            head
        } else {
            format!(
                "{head}\naccuracy target NOT met ({}); the best model found was saved",
                self.stop_reason
            )
        }
    }
}
