//! The report of an accuracy-controlled run: what was reverted, why, and what it cost.
//!
//! Serialized as `report.json`; the schema is the one documented in the user's guide and is stable: fields are
//! only ever added.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::{BackendChoice, EngineSettings};
use crate::cpu::CpuFeatures;
use crate::eval::{Latency, Timing};
use crate::profile::ProfileReport;
use crate::quantize::{ModelBytes, OpsByPrecision, OverflowFix, Precision};
use crate::saturation::SaturationReport;
use crate::search::Levers;
use crate::sensitivity::SensitivityReport;

use crate::metric::confidence::{percent, DropInterval};
use crate::metric::{limit_sign, Direction};
use crate::params::AccuracyControlParams;

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

/// One revert attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    /// Group id.
    pub group: usize,
    /// The ops of the group the step moved.
    pub reverted_group: Vec<String>,
    /// The ladder rung the step moved them to (`fp32`: a revert).
    pub precision: Precision,
    /// Value of the controlled metric after the step.
    pub metric: f64,
    /// The controlled metric: the one furthest beyond its limit before the step (`metric` and `drop` are its).
    pub metric_name: String,
    /// Drop of the controlled metric after the step.
    pub drop: f64,
    /// With a confidence level: the upper end of that drop's interval, which the step was judged on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_drop: Option<f64>,
    /// Whether the revert was kept (false: rolled back because the drop grew).
    pub kept: bool,
    /// What the step led to.
    pub outcome: StepOutcome,
    /// The outcome in words: "target met", "drop decreased", "drop increased: rolled back, re-ranking"…
    pub reason: String,
}

/// What one revert step led to (SPEC §4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Every metric is within its limit: the search ends.
    TargetMet,
    /// The drop shrank: kept; the next group of the same ranking comes next.
    DropDecreased,
    /// The drop did not move: kept; the remaining groups are ranked again on the new model.
    NoImprovement,
    /// The drop grew and `use_prev_if_drop_increase` is on: undone; the group is never tried again.
    RolledBack,
    /// The drop grew and `use_prev_if_drop_increase` is off: kept, and the remaining groups re-ranked.
    KeptDespiteIncrease,
}

impl StepOutcome {
    /// Whether the revert stays in the model.
    pub fn kept(self) -> bool {
        self != StepOutcome::RolledBack
    }

    /// Whether the next group comes from a new ranking of the model after this step.
    pub fn reranks(self) -> bool {
        !matches!(self, StepOutcome::TargetMet | StepOutcome::DropDecreased)
    }

    /// The outcome in words.
    pub fn message(self) -> &'static str {
        match self {
            StepOutcome::TargetMet => "target met",
            StepOutcome::DropDecreased => "drop decreased",
            StepOutcome::NoImprovement => "no improvement: re-ranking",
            StepOutcome::RolledBack => "drop increased: rolled back, re-ranking",
            StepOutcome::KeptDespiteIncrease => {
                "drop increased: kept (use_prev_if_drop_increase is off), re-ranking"
            }
        }
    }
}

/// Why the search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Every metric is within its limit (on the deployed engine too, when there is one).
    TargetMet,
    /// `max_iter_num` revert steps were made (rolled-back steps count, as in POT).
    MaxIterations,
    /// Every group was reverted or tried and rolled back.
    NothingLeft,
    /// The run was interrupted; it can be resumed from its journal.
    Interrupted,
    /// The search met the target, but the saved model on the deployed engine does not, even after the
    /// search went on with that engine as the judge.
    DeployedMissed,
    /// With a confidence level: the search ran out of moves with a model whose drops meet the target, but
    /// whose intervals reach past it at that level.
    NotConfident,
    /// With a confidence level: the validation set is too small for any model to meet the target at that level
    /// (even FP32 itself has an interval reaching past the allowed drop), so the search did not start.
    Unprovable,
}

impl StopReason {
    /// The reason in words.
    pub fn message(self, control: &AccuracyControlParams) -> String {
        let max_iter_num = control.max_iter_num;
        match self {
            StopReason::TargetMet => "target met".into(),
            StopReason::MaxIterations => format!(
                "max_iter_num ({}) reached",
                max_iter_num.map_or("unlimited".into(), |n| n.to_string())
            ),
            StopReason::NothingLeft => "every group was tried: nothing left to revert".into(),
            StopReason::Interrupted => {
                "interrupted: the best model so far was saved; continue with --resume".into()
            }
            StopReason::DeployedMissed => {
                "the deployed engine misses the target the search engine met".into()
            }
            StopReason::Unprovable => format!(
                "at {}% confidence no model can meet the target on this validation set: even one identical to \
                 FP32 has an interval reaching past the allowed drop (use more samples or a lower level)",
                percent(control.confidence.unwrap_or_default())
            ),
            StopReason::NotConfident => format!(
                "met on the point estimate, not at {}% confidence: a drop's interval reaches past its limit",
                percent(control.confidence.unwrap_or_default())
            ),
        }
    }
}

/// One metric of the saved model, measured on the engine it is deployed on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployedMetric {
    /// Metric name.
    pub name: String,
    /// Value on the full validation set.
    pub value: f64,
    /// Drop from the FP32 baseline (the search engine's).
    pub drop: f64,
    /// With a confidence level: the upper end of the drop's interval at that level, which was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_drop: Option<f64>,
    /// Allowed drop.
    pub allowed_drop: f64,
}

/// The saved model judged by the engine it is deployed on ([`RunOptions::deployed`](super::RunOptions)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployedReport {
    /// The engine's name.
    pub engine: String,
    /// The engine's version.
    pub version: String,
    /// Samples per batch the saved model was measured at (`--deployed-batch`).
    pub batch: usize,
    /// How the engine ran it (threads, precision hint, optimization level).
    #[serde(flatten)]
    pub settings: EngineSettings,
    /// The int8 features of the CPU that measured it.
    pub cpu: CpuFeatures,
    /// Per metric.
    pub metrics: Vec<DeployedMetric>,
    /// Whether every metric is within its limit there.
    pub target_met: bool,
    /// The search met the target but the deployed engine did not: the search went on with it as the judge.
    pub continued: bool,
    /// The final evaluation of the search was already this one (same engine, same model bytes).
    pub reused: bool,
    /// FP32 and the saved model timed on this engine, one sample per run (`None`: `--latency-runs 0`).
    pub latency: Option<Latency>,
}

/// One model of the accuracy / size / latency front: FP32, the fully quantized model the search starts from,
/// or a step's candidate (kept or rolled back), each with what it costs and what it keeps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontPoint {
    /// "FP32", "INT8" (the model the steps start from) or "step N".
    pub label: String,
    /// The step whose candidate it is (`None`: FP32 or INT8).
    pub step: Option<usize>,
    /// On the search's kept path (FP32, INT8 and every kept step); false: a step rolled back.
    pub kept: bool,
    /// The model saved as the run's result.
    pub chosen: bool,
    /// Each controlled metric's value and drop, as the search's judge measured it on the full validation set
    /// (FP32: its baseline).
    pub metrics: Vec<FrontMetric>,
    /// The model's size as an ONNX file, weights inline.
    pub bytes: usize,
    /// The FP32 model's ops by the precision they run in, in this model.
    pub ops_by_precision: OpsByPrecision,
    /// Median milliseconds of one inference on the deployed engine on this CPU, batch 1, at the engine's
    /// default threads, after a warm-up (`None`: no deployed engine, `--latency-runs 0`, or an interrupted
    /// run).
    pub latency_ms: Option<f64>,
}

/// One metric of a front point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontMetric {
    /// Metric name.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// Its drop from the FP32 baseline (positive = worse).
    pub drop: f64,
}

/// One target of a run given several (`--max-drop 0.001,0.003,0.01`): the model saved for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// The target (`maximal_drop`).
    pub max_drop: f64,
    /// The front point saved for it ("INT8", "step 3"): for the tightest the run's model, for a looser one the
    /// first of the kept path that meets it (on the deployed engine too).
    pub point: String,
    /// Each controlled metric of that model as the search judged it, against the drop this target allows.
    pub metrics: Vec<DeployedMetric>,
    /// Whether the model meets the target: on the deployed engine when there is one.
    pub target_met: bool,
    /// The model judged on the deployed engine (`None`: none given, or no model of the path met the target).
    pub deployed: Option<DeployedReport>,
    /// Where the model was written (set by the caller that saves it).
    pub output: Option<String>,
}

impl TargetReport {
    /// "max_drop 0.003: step 2, top1 drop 0.0021 ≤ 0.0030, met on ort 1.32.0 (out/max_drop_0.003/model.onnx)".
    pub fn summary(&self) -> String {
        let metrics: Vec<String> = (self.metrics.iter())
            .map(|m| {
                let sign = limit_sign(m.judged_drop.unwrap_or(m.drop), m.allowed_drop);
                format!("{} drop {:.4} {sign} {:.4}", m.name, m.drop, m.allowed_drop)
            })
            .collect();
        let verdict = match (&self.deployed, self.target_met) {
            (Some(d), true) => format!("met on {} {}", d.engine, d.version),
            (Some(d), false) => format!("NOT met on {} {}", d.engine, d.version),
            (None, true) => "met".into(),
            (None, false) => "NOT met".into(),
        };
        let output = self
            .output
            .as_ref()
            .map_or(String::new(), |o| format!(" ({o})"));
        format!(
            "max_drop {}: {}, {}, {verdict}{output}",
            self.max_drop,
            self.point,
            metrics.join(", ")
        )
    }
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

/// FP32 and the saved model on the held-out samples, judged on the deployed engine (the search engine when
/// there is none): does the drop the search promised hold on samples it never saw?
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confirmation {
    /// Held-out samples.
    pub samples: usize,
    /// Their indices in the validation set (the seeded split: `--seed`).
    pub indices: Vec<usize>,
    /// Whether they were drawn class by class (the dataset knew every sample's label), each class giving its
    /// share; otherwise uniformly.
    pub stratified: bool,
    /// The engine that judged them, with its version.
    pub engine: String,
    /// Each controlled metric there.
    pub metrics: Vec<ConfirmedMetric>,
    /// Whether every metric is within its allowed drop there.
    pub met: bool,
}

/// One metric on the held-out samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfirmedMetric {
    /// Metric name.
    pub name: String,
    /// FP32's value.
    pub baseline: f64,
    /// The saved model's value.
    pub r#final: f64,
    /// The drop (positive = worse than FP32).
    pub drop: f64,
    /// Allowed drop, in the metric's units (from the held-out FP32 value for a relative drop).
    pub allowed_drop: f64,
    /// The drop's 95 % confidence interval (`None` for a metric user code scores over the whole set).
    pub drop_ci: Option<DropInterval>,
}

impl Confirmation {
    /// "held out 90 samples, judged on ort 1.32.0: top1 drop 0.0111 > 0.0100 (95% CI [..]): NOT confirmed".
    pub fn summary(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|m| {
                let sign = limit_sign(m.drop, m.allowed_drop);
                let interval = m
                    .drop_ci
                    .map_or(String::new(), |ci| format!(" ({})", ci.summary()));
                format!(
                    "{} drop {:.4} {sign} {:.4}{interval}",
                    m.name, m.drop, m.allowed_drop
                )
            })
            .collect();
        let verdict = if self.met {
            "confirmed"
        } else {
            "NOT confirmed"
        };
        format!(
            "held out {} samples, judged on {}: {}: {verdict}",
            self.samples,
            self.engine,
            metrics.join(", ")
        )
    }
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

impl DeployedReport {
    /// "deployed on ort 1.32.0 (batch 1, 1 thread, optimization all; avx2 avx512_vnni (VNNI)): top1 0.8200,
    /// drop 0.0033 > 0.0030", or "…: not judged (no validation set)" when the saved model was only timed.
    pub fn summary(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|m| {
                let values = format!("{} {:.4}, drop {:.4}", m.name, m.value, m.drop);
                let (judged, upper_end) = match m.judged_drop {
                    Some(high) => (high, format!(", upper end {high:.4}")),
                    None => (m.drop, String::new()),
                };
                let sign = limit_sign(judged, m.allowed_drop);
                format!("{values}{upper_end} {sign} {:.4}", m.allowed_drop)
            })
            .collect();
        let latency = self.latency.as_ref().map_or(String::new(), latency_summary);
        let judged = match metrics.is_empty() {
            true => "not judged (no validation set)".to_owned(),
            false => metrics.join(", "),
        };
        format!(
            "deployed on {} {} (batch {}, {}; {}): {judged}{}{latency}",
            self.engine,
            self.version,
            self.batch,
            self.settings,
            self.cpu,
            if self.continued {
                " (the search went on with it as the judge)"
            } else {
                ""
            }
        )
    }
}

/// "; INT8 19.00 ms vs FP32 18.30 ms (0.96×: NOT faster, 17 ops in float); at the engine's default threads
/// INT8 9.10 ms vs FP32 10.20 ms (1.12×)".
fn latency_summary(latency: &Latency) -> String {
    let float = latency
        .float_ops
        .as_ref()
        .map_or(String::new(), |f| format!(", {} ops in float", f.count));
    let default_threads = latency.default_threads.map_or(String::new(), |t| {
        format!("; at the engine's default threads {}", timing(&t, ""))
    });
    format!("; {}{default_threads}", timing(&latency.one_thread, &float))
}

/// "INT8 19.00 ms vs FP32 18.30 ms (0.96×: NOT faster{more})".
fn timing(t: &Timing, more: &str) -> String {
    let verdict = if t.speedup > 1.0 { "" } else { ": NOT faster" };
    format!(
        "INT8 {:.2} ms vs FP32 {:.2} ms ({:.2}×{verdict}{more})",
        t.int8_ms, t.fp32_ms, t.speedup
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FloatOps;

    #[test]
    fn the_summary_names_the_deployed_engine_its_cpu_and_its_verdict() {
        let deployed = DeployedReport {
            engine: "ort".into(),
            version: "1.32.0".into(),
            batch: 1,
            settings: EngineSettings {
                threads: Some(1),
                precision_hint: None,
                optimization: Some("all".into()),
            },
            cpu: CpuFeatures {
                avx2: true,
                avx512_vnni: true,
                ..Default::default()
            },
            metrics: vec![DeployedMetric {
                name: "top1".into(),
                value: 0.82,
                drop: 0.0033,
                judged_drop: None,
                allowed_drop: 0.003,
            }],
            target_met: false,
            continued: false,
            reused: false,
            latency: Some(Latency {
                one_thread: Timing {
                    fp32_ms: 18.3,
                    int8_ms: 19.0,
                    speedup: 18.3 / 19.0,
                },
                default_threads: Some(Timing {
                    fp32_ms: 10.2,
                    int8_ms: 9.1,
                    speedup: 10.2 / 9.1,
                }),
                runs: 20,
                batch: 1,
                float_ops: Some(FloatOps {
                    count: 17,
                    weighted: vec!["conv".into()],
                }),
            }),
        };
        let line = deployed.summary();
        assert!(
            line.starts_with("deployed on ort 1.32.0 (batch 1, 1 thread, optimization all; avx2 avx512_vnni (VNNI)): top1 0.8200, drop 0.0033 > 0.0030"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "; INT8 19.00 ms vs FP32 18.30 ms (0.96×: NOT faster, 17 ops in float); \
                 at the engine's default threads INT8 9.10 ms vs FP32 10.20 ms (1.12×)"
            ),
            "{line}"
        );
    }
}
