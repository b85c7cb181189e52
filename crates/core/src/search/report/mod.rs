//! The report of an accuracy-controlled run: what was reverted, why, and what it cost.
//!
//! Serialized as `report.json`; the schema is the one documented in the user's guide and is stable: fields are
//! only ever added. The whole run's report and its ranking are here; a module per section holds the rest:
//! [`steps`] (the revert steps and the stop), [`deployed`] (the deployed check), [`front`] (the front and the
//! targets), [`confirmation`] (the held-out confirmation).

mod confirmation;
mod deployed;
mod front;
mod steps;

pub use confirmation::{Confirmation, ConfirmedMetric};
pub use deployed::{DeployedMetric, DeployedReport};
pub use front::{FrontMetric, FrontPoint, TargetReport};
pub use steps::{StepOutcome, StepReport, StopReason};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::BackendChoice;
use crate::profile::ProfileReport;
use crate::quantize::{ModelBytes, OpsByPrecision, OverflowFix, Precision};
use crate::saturation::SaturationReport;
use crate::search::Levers;
use crate::sensitivity::SensitivityReport;

use crate::metric::confidence::DropInterval;
use crate::metric::{limit_sign, Direction};

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
    /// The drop's confidence interval (95 %, or the level of `--confidence`) from the paired per-sample values
    /// of FP32 and the final model, or a dataset-level metric's paired bootstrap resamples (`None` for a metric
    /// user code scores over the whole set).
    pub drop_ci: Option<DropInterval>,
}

impl MetricReport {
    /// "top1 0.8233 → 0.8300, drop -0.0067 ≤ 0.0030 (95% CI [-0.0270, 0.0132])"; judged at a confidence level,
    /// the comparison is the interval's upper end's: "…, drop -0.0067 (90% CI [-0.0240, 0.0100]), upper end
    /// 0.0100 > 0.0030".
    fn summary(&self, at_confidence: bool) -> String {
        let values = format!("{} {:.4} → {:.4}", self.name, self.baseline, self.r#final);
        let allowed = self.allowed_drop;
        match (self.drop_ci, at_confidence) {
            (Some(ci), true) => format!(
                "{values}, drop {:.4} ({}), upper end {:.4} {} {allowed:.4}",
                self.drop,
                ci.summary(),
                ci.high,
                limit_sign(ci.high, allowed)
            ),
            (ci, _) => {
                let interval = ci.map_or(String::new(), |ci| format!(" ({})", ci.summary()));
                let sign = limit_sign(self.drop, allowed);
                format!(
                    "{values}, drop {:.4} {sign} {allowed:.4}{interval}",
                    self.drop
                )
            }
        }
    }
}

/// What ranked the groups of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankedBy {
    /// The controlled metric's per-sample values on the ranking subset.
    Metric,
    /// The normalized MSE of the outputs against FP32's on the ranking subset, lowest first.
    OutputNmse,
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
    /// The saturation analysis `overflow_fix: auto` chooses the half-range layers with, before the search (0
    /// without it).
    pub overflow_analysis: f64,
    /// FP32 evaluation.
    pub fp32_eval: f64,
    /// INT8 evaluation of the fully quantized model.
    pub int8_eval: f64,
    /// All ranking passes.
    pub ranking: f64,
    /// Revert steps (full evaluations and saving intermediate models).
    pub restore: f64,
    /// The deployed check: the saved model judged on its engine (unless the search's final evaluation already
    /// was that) and timed there beside FP32, a search continued on that engine when it missed there, and the
    /// looser targets' models judged there.
    pub deployed: f64,
    /// The per-layer sensitivity analysis after the search (0 when skipped).
    pub sensitivity: f64,
    /// The saturation analysis of the saved model after the search.
    pub saturation: f64,
    /// Exporting the front's models and timing them on the deployed engine.
    pub front: f64,
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
    /// The confidence level the target was judged at (`--confidence`): each metric's `drop_ci` is at that
    /// level and its upper end, not the drop, is what met or missed the allowed drop. Absent: the point
    /// estimate was judged, and `drop_ci` is at 95 %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Whether every metric is within its allowed drop.
    pub target_met: bool,
    /// The run was interrupted: the model is the best found so far.
    pub interrupted: bool,
    /// Why the search stopped.
    pub stop_reason: StopReason,
    /// The stop reason in words.
    pub stop_message: String,
    /// Ops quantized by the base algorithm.
    pub quantized_ops: usize,
    /// Ops returned to FP32 in the final model.
    pub reverted_ops: usize,
    /// Names of the reverted ops.
    pub reverted: Vec<String>,
    /// The final precision of every op the search moved (`fp32`, `w8a16`…) or started elsewhere than int8
    /// (target_device GNA), by op; ops absent run at the base precision.
    pub precisions: BTreeMap<String, Precision>,
    /// Preset of the final model ("performance" or "mixed").
    pub preset: String,
    /// With `tune_hyperparams`: the base-algorithm parameters that replaced the given ones, if any did.
    pub tuned_parameters: Option<serde_json::Value>,
    /// Every revert attempt, in order.
    pub steps: Vec<StepReport>,
    /// The last ranking computed.
    pub ranking: Vec<RankingEntry>,
    /// What ranked the groups: the controlled metric's per-sample values, or the output NMSE against FP32 (a
    /// dataset-level metric, or `ranking_score: nmse`); absent when nothing was ranked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranked_by: Option<RankedBy>,
    /// Evaluation counts.
    pub evaluations: EvaluationCounts,
    /// Timings.
    pub timings_s: Timings,
    /// Where the evaluations' time went (engine work summed over threads).
    pub profile: ProfileReport,
    /// The evaluation shortcuts used.
    pub levers: Levers,
    /// The engine that calibrated and searched, and why that one.
    pub backend: BackendChoice,
    /// The threads and FP32-output cache a memory limit allowed, when one was given (set by [`crate::job::run`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::params::MemoryPlan>,
    /// Where the final model was written (set by the caller that saves it).
    pub output: Option<String>,
    /// The saved model on the engine it is deployed on, when one was given.
    pub deployed: Option<DeployedReport>,
    /// The overflow fix of the saved model (NNCF `overflow_fix`, POT `saturation_fix`).
    pub overflow_fix: OverflowFixReport,
    /// The saturation analysis of the saved model on calibration samples: its int8 layers at risk of int16
    /// saturation on CPUs without VNNI, with their rates (report.json holds the compact form).
    #[serde(serialize_with = "saturation_summary")]
    pub saturation: SaturationReport,
    /// Each quantized op's share of the output error, measured after the search (`None`: skipped, or the run
    /// was interrupted).
    pub sensitivity: Option<SensitivityReport>,
    /// The saved model's ops by precision.
    pub ops_by_precision: OpsByPrecision,
    /// The FP32 and saved models' sizes.
    pub model_bytes: ModelBytes,
    /// The drop on the held-out samples the search never saw (`--holdout-fraction`; `None` without).
    pub confirmation: Option<Box<Confirmation>>,
    /// Every model of the search's path with its metrics, size, ops by precision and latency: FP32 first, then
    /// the fully quantized model, then each step's candidate in order.
    pub front: Vec<FrontPoint>,
    /// With several targets, each one's model, tightest first (absent with one target: the run's model is it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetReport>,
}

/// Which weights use half the int8 range, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverflowFixReport {
    /// The mode in force.
    pub mode: OverflowFix,
    /// The saved model's layers (still int8) whose weights lie in [-64, 63], in graph order.
    pub half_range_layers: Vec<String>,
}

fn saturation_summary<S: serde::Serializer>(
    report: &SaturationReport,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    report.summary().serialize(serializer)
}

impl Report {
    /// The one-line human summary: "2 of 64 quantized ops reverted; top1 0.8233 → 0.8233, drop 0.0000 ≤ 0.003".
    pub fn summary(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|m| m.summary(self.confidence.is_some()))
            .collect();
        let ops = &self.ops_by_precision;
        let sixteen = match ops.int16 {
            0 => String::new(),
            n => format!(
                " ({} int8, {n} int16, {} fp32)",
                ops.int8, ops.fp32_reverted
            ),
        };
        let mut head = format!(
            "{} of {} quantized ops reverted{sixteen}; {}; searched on {}",
            self.reverted_ops,
            self.quantized_ops,
            metrics.join("; "),
            self.backend.describe()
        );
        if let Some(d) = &self.deployed {
            head.push_str("; ");
            head.push_str(&d.summary());
        }
        if let Some(c) = &self.confirmation {
            head.push_str("; ");
            head.push_str(&c.summary());
            if self.target_met && !c.met {
                head.push_str(&format!(
                    "\naccuracy target NOT confirmed on the {} held-out samples; the model found was saved",
                    c.samples
                ));
            }
        }
        for target in &self.targets {
            head.push('\n');
            head.push_str(&target.summary());
        }
        if self.target_met {
            head
        } else {
            format!(
                "{head}\naccuracy target NOT met ({}); the best model found was saved",
                self.stop_message
            )
        }
    }
}
