//! What the renderer reads of a report: a typed view deserialized from `report.json` itself.
//!
//! The view, not the library's report types, because `aquant report OUT_DIR` re-renders from the file alone,
//! and the file is the stable schema (fields only ever added): reading only what is drawn, every optional
//! part defaulted, lets one view read both algorithms' reports and reports written before a field existed.

use std::path::Path;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::backend::BackendChoice;
use crate::cpu::CpuFeatures;
use crate::error::{Error, Result};
use crate::metric::Direction;

/// POT's name of the accuracy-aware algorithm, as reports spell it.
const ACCURACY_AWARE: &str = "AccuracyAwareQuantization";

/// report.json's `backend`: the engine and why it was chosen, or in reports written before `auto` existed, the
/// engine's name alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BackendView {
    /// `{name, chosen_because}`.
    Chosen(BackendChoice),
    /// A name alone.
    Name(String),
}

impl BackendView {
    /// "ort (auto: ONNX Runtime, where an ONNX output runs, was found)", or the name alone.
    pub fn describe(&self) -> String {
        match self {
            BackendView::Chosen(choice) => choice.describe(),
            BackendView::Name(name) => name.clone(),
        }
    }
}

/// A report as read back from `report.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ReportView {
    /// "AccuracyAwareQuantization" or "DefaultQuantization".
    pub algorithm: String,
    /// The input model.
    #[serde(default)]
    pub model: String,
    /// Where the model was saved.
    pub output: Option<String>,
    /// The engine that calibrated and searched, and why that one.
    pub backend: Option<BackendView>,
    /// Controlled metrics (accuracy-aware only).
    #[serde(default)]
    pub metrics: Vec<MetricView>,
    /// The confidence level the target was judged at (absent: the point estimate).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Whether every metric is within its limit (accuracy-aware only).
    pub target_met: Option<bool>,
    /// Why the search stopped, in words.
    pub stop_message: Option<String>,
    /// The run was interrupted.
    #[serde(default)]
    pub interrupted: bool,
    /// Ops quantized by the base algorithm.
    pub quantized_ops: usize,
    /// Names of the ops left in FP32.
    #[serde(default)]
    pub reverted: Vec<String>,
    /// Revert attempts.
    #[serde(default)]
    pub steps: Vec<StepView>,
    /// The last ranking.
    #[serde(default)]
    pub ranking: Vec<RankingView>,
    /// Wall seconds per stage, in the file's order (`total` last).
    #[serde(default)]
    pub timings_s: Stages,
    /// The saved model on its deployment engine.
    pub deployed: Option<DeployedView>,
    /// FP32 and the saved model on the held-out samples (`--holdout-fraction`).
    pub confirmation: Option<ConfirmationView>,
    /// The saturation analysis of the saved model.
    pub saturation: Option<SaturationView>,
    /// Per-layer sensitivity.
    pub sensitivity: Option<SensitivityView>,
    /// Ops by precision.
    pub ops_by_precision: Option<OpsView>,
    /// Model sizes.
    pub model_bytes: Option<BytesView>,
    /// The accuracy / size / latency front: FP32, then every model of the search's path (absent from
    /// DefaultQuantization's reports and from reports before it).
    #[serde(default)]
    pub front: Vec<FrontPointView>,
    /// With several targets, each one's model, tightest first.
    #[serde(default)]
    pub targets: Vec<TargetView>,
}

/// One model of the front.
#[derive(Debug, Clone, Deserialize)]
pub struct FrontPointView {
    /// "FP32", "INT8", "step N".
    pub label: String,
    /// On the kept path (false: a step rolled back).
    pub kept: bool,
    /// The run's saved model.
    pub chosen: bool,
    /// Each controlled metric's value and drop.
    pub metrics: Vec<FrontMetricView>,
    /// Size of its ONNX file.
    pub bytes: usize,
    /// Its ops by precision.
    pub ops_by_precision: OpsView,
    /// Median milliseconds of one inference on the deployed engine (absent: not timed).
    #[serde(default)]
    pub latency_ms: Option<f64>,
}

/// One metric of a front point.
#[derive(Debug, Clone, Deserialize)]
pub struct FrontMetricView {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Drop from FP32.
    pub drop: f64,
}

/// One target of a run given several.
#[derive(Debug, Clone, Deserialize)]
pub struct TargetView {
    /// The target.
    pub max_drop: f64,
    /// The front point saved for it.
    pub point: String,
    /// Each metric of that model as the search judged it, against this target's allowed drop.
    pub metrics: Vec<DeployedMetricView>,
    /// Whether it meets the target (on the deployed engine when there is one).
    pub target_met: bool,
    /// The model on the deployed engine.
    #[serde(default)]
    pub deployed: Option<DeployedView>,
    /// Where it was saved.
    #[serde(default)]
    pub output: Option<String>,
}

/// One controlled metric.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricView {
    /// Name.
    pub name: String,
    /// Whether higher is better.
    pub direction: Direction,
    /// FP32 value.
    pub baseline: f64,
    /// Fully quantized value.
    pub quantized: f64,
    /// Final value.
    pub r#final: f64,
    /// Final drop.
    pub drop: f64,
    /// Allowed drop.
    pub allowed_drop: f64,
    /// The drop's confidence interval (absent: a metric user code scores over the whole set, or a report from before it).
    #[serde(default)]
    pub drop_ci: Option<IntervalView>,
}

/// A drop's confidence interval.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct IntervalView {
    /// Confidence level.
    pub level: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

impl IntervalView {
    /// `95% CI [low, high]` with `decimals` digits.
    pub fn text(&self, decimals: usize) -> String {
        format!(
            "{}% CI [{}, {}]",
            crate::metric::confidence::percent(self.level),
            super::fixed(self.low, decimals),
            super::fixed(self.high, decimals)
        )
    }
}

impl MetricView {
    /// The fully quantized model's drop.
    pub fn quantized_drop(&self) -> f64 {
        self.direction.drop(self.baseline, self.quantized)
    }

    /// What the limit was compared with: the drop, or judged at a confidence level its interval's upper end.
    pub fn judged(&self, at_confidence: bool) -> f64 {
        match (self.drop_ci, at_confidence) {
            (Some(ci), true) => ci.high,
            _ => self.drop,
        }
    }

    /// Whether the final model is within the limit, as it was judged.
    pub fn within(&self, at_confidence: bool) -> bool {
        crate::metric::within_limit(self.judged(at_confidence), self.allowed_drop)
    }
}

/// One revert attempt.
#[derive(Debug, Clone, Deserialize)]
pub struct StepView {
    /// 1-based step number.
    pub step: usize,
    /// Group id.
    pub group: usize,
    /// Ops reverted.
    pub reverted_group: Vec<String>,
    /// The controlled metric's value after the step.
    pub metric: f64,
    /// Its drop.
    pub drop: f64,
    /// The controlled metric's name (absent in reports written before it was added).
    pub metric_name: Option<String>,
    /// Kept or rolled back.
    pub kept: bool,
    /// The outcome in words.
    pub reason: String,
}

/// One ranked group.
#[derive(Debug, Clone, Deserialize)]
pub struct RankingView {
    /// Group id.
    pub group: usize,
    /// Its ops.
    pub nodes: Vec<String>,
    /// Score on the ranking subset, or a bound when not exact.
    pub score: f64,
    /// Whether `score` is exact.
    pub exact: bool,
}

/// The deployed check.
#[derive(Debug, Clone, Deserialize)]
pub struct DeployedView {
    /// Engine name.
    pub engine: String,
    /// Engine version.
    pub version: String,
    /// Samples per batch it measured at (absent from reports before it was recorded).
    #[serde(default)]
    pub batch: Option<usize>,
    /// Threads per inference, when recorded.
    #[serde(default)]
    pub threads: Option<usize>,
    /// The engine's precision hint, when it had one.
    #[serde(default)]
    pub precision_hint: Option<String>,
    /// The CPU's int8 features.
    pub cpu: CpuFeatures,
    /// Per metric.
    pub metrics: Vec<DeployedMetricView>,
    /// Whether every metric is within its limit there.
    pub target_met: bool,
    /// The search went on with the deployed engine as the judge.
    #[serde(default)]
    pub continued: bool,
    /// FP32 and the saved model timed there (absent: not measured).
    #[serde(default)]
    pub latency: Option<LatencyView>,
}

/// The deployed latency measure.
#[derive(Debug, Clone, Deserialize)]
pub struct LatencyView {
    /// Median milliseconds of one FP32 inference.
    pub fp32_ms: f64,
    /// Median milliseconds of one inference of the saved model.
    pub int8_ms: f64,
    /// `fp32_ms / int8_ms`.
    pub speedup: f64,
    /// The saved model's nodes the engine computes in float, when it showed them.
    #[serde(default)]
    pub float_ops: Option<FloatOpsView>,
    /// The same at the engine's default threads (absent: not measured, or an older report).
    #[serde(default)]
    pub default_threads: Option<TimingView>,
}

/// Two models' median times under one setting of the engine.
#[derive(Debug, Clone, Deserialize)]
pub struct TimingView {
    /// Median milliseconds of one FP32 inference.
    pub fp32_ms: f64,
    /// Median milliseconds of one inference of the saved model.
    pub int8_ms: f64,
    /// `fp32_ms / int8_ms`.
    pub speedup: f64,
}

/// The nodes an engine left in float.
#[derive(Debug, Clone, Deserialize)]
pub struct FloatOpsView {
    /// How many.
    pub count: usize,
}

/// One metric on the deployed engine.
#[derive(Debug, Clone, Deserialize)]
pub struct DeployedMetricView {
    /// Name.
    pub name: String,
    /// Value.
    pub value: f64,
    /// Drop.
    pub drop: f64,
    /// The upper end of the drop's interval, when that was judged (a confidence level).
    #[serde(default)]
    pub judged_drop: Option<f64>,
    /// Allowed drop.
    pub allowed_drop: f64,
}

/// The held-out confirmation.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfirmationView {
    /// Held-out samples.
    pub samples: usize,
    /// Drawn class by class (absent in reports from before it).
    #[serde(default)]
    pub stratified: bool,
    /// The engine that judged them.
    pub engine: String,
    /// Each controlled metric there.
    pub metrics: Vec<ConfirmedView>,
    /// Whether every drop there is within its limit.
    pub met: bool,
}

impl ConfirmationView {
    /// "held out 300 samples (stratified by class), judged on ort 1.32.0: confirmed".
    pub fn sentence(&self) -> String {
        let how = if self.stratified {
            "stratified by class"
        } else {
            "drawn uniformly"
        };
        let verdict = if self.met {
            "confirmed"
        } else {
            "NOT confirmed"
        };
        format!(
            "held out {} samples ({how}), judged on {}: {verdict}",
            self.samples, self.engine
        )
    }
}

/// One metric on the held-out samples.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfirmedView {
    /// Name.
    pub name: String,
    /// FP32's value there.
    pub baseline: f64,
    /// The saved model's value there.
    pub r#final: f64,
    /// The drop there.
    pub drop: f64,
    /// Allowed drop.
    pub allowed_drop: f64,
    /// The drop's interval.
    #[serde(default)]
    pub drop_ci: Option<IntervalView>,
}

/// The saturation analysis summary.
#[derive(Debug, Clone, Deserialize)]
pub struct SaturationView {
    /// Rate above which a layer is at risk.
    pub threshold: f64,
    /// Samples measured (0: weights only).
    pub samples: usize,
    /// Layers at risk.
    #[serde(default)]
    pub layers_at_risk: Vec<SaturatedLayer>,
    /// Every analysed layer (absent in reports written before it was added).
    #[serde(default)]
    pub layers: Vec<SaturatedLayer>,
}

/// One layer's saturation.
#[derive(Debug, Clone, Deserialize)]
pub struct SaturatedLayer {
    /// Node name.
    pub node: String,
    /// Op type.
    pub op_type: String,
    /// Share of outputs saturated (`None`: the layer cannot saturate, or was not measured).
    pub rate: Option<f64>,
}

/// Per-layer sensitivity.
#[derive(Debug, Clone, Deserialize)]
pub struct SensitivityView {
    /// Samples compared.
    pub samples: usize,
    /// NMSE of the fully quantized model.
    pub all_quantized_nmse: f64,
    /// Every quantized op, in graph order.
    pub layers: Vec<LayerSensitivityView>,
}

/// One op's sensitivity.
#[derive(Debug, Clone, Deserialize)]
pub struct LayerSensitivityView {
    /// Node name.
    pub node: String,
    /// Op type.
    pub op_type: String,
    /// NMSE with only this op quantized.
    pub nmse: f64,
    /// Share of the sum.
    pub share: f64,
}

/// Ops by precision.
#[derive(Debug, Clone, Deserialize)]
pub struct OpsView {
    /// In int8.
    pub int8: usize,
    /// With a 16-bit quantizer (absent from older reports).
    #[serde(default)]
    pub int16: usize,
    /// Reverted to FP32.
    pub fp32_reverted: usize,
    /// Never quantized.
    pub fp32_other: usize,
}

/// Model sizes in bytes.
#[derive(Debug, Clone, Deserialize)]
pub struct BytesView {
    /// FP32.
    pub fp32: usize,
    /// Saved INT8.
    pub int8: usize,
}

/// Stages and their seconds, in the order the report lists them (a JSON object's order carries meaning here:
/// the stages run in that order).
#[derive(Debug, Clone, Default)]
pub struct Stages(pub Vec<(String, f64)>);

impl<'de> Deserialize<'de> for Stages {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Stages;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of stage names and seconds")
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                mut map: M,
            ) -> std::result::Result<Stages, M::Error> {
                let mut stages = Vec::new();
                while let Some(entry) = map.next_entry::<String, f64>()? {
                    stages.push(entry);
                }
                Ok(Stages(stages))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

impl ReportView {
    /// Reads the view from `report.json`'s text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Report(format!("malformed report.json: {e}")))
    }

    /// Reads the view from a `report.json` file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Report(format!("'{}' is not a report: {e}", path.display())))
    }

    /// Whether the report is accuracy control's (with steps and a ranking), not DefaultQuantization's.
    pub fn is_search(&self) -> bool {
        self.algorithm == ACCURACY_AWARE
    }

    /// The allowed drop and direction of the metric `name` (the first metric when `name` is absent).
    pub fn metric(&self, name: Option<&str>) -> Option<&MetricView> {
        match name {
            Some(name) => self.metrics.iter().find(|m| m.name == name),
            None => self.metrics.first(),
        }
    }

    /// The metric the last ranking ranked on: the last step's controlled metric.
    pub fn ranking_metric(&self) -> Option<&MetricView> {
        self.metric(self.steps.last().and_then(|s| s.metric_name.as_deref()))
    }

    /// Decimals that show metric `name` to two significant digits of its allowed drop, and never fewer than
    /// four (the summary line's): top-1 within 0.003 reads 0.8233, an NMSE within 0.0003 reads 0.00020.
    pub fn decimals(&self, name: &str) -> usize {
        let allowed = self
            .metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.allowed_drop);
        let deployed = || self.deployed.iter().flat_map(|d| &d.metrics);
        let allowed =
            allowed.or_else(|| deployed().find(|m| m.name == name).map(|m| m.allowed_drop));
        match allowed.map(f64::abs).filter(|a| *a > 0.0 && *a < 0.01) {
            Some(a) => (1 - a.log10().floor() as i64).clamp(4, 12) as usize,
            None => 4,
        }
    }

    /// The front's points labelled as the targets that saved them: "max_drop 0.003" by point label.
    pub fn target_of(&self, point: &str) -> Vec<String> {
        (self.targets.iter())
            .filter(|t| t.point == point)
            .map(|t| format!("max_drop {}", t.max_drop))
            .collect()
    }

    /// Whether `group` was reverted by a step that was kept, rolled back, or neither.
    pub fn step_of(&self, group: usize) -> Option<&StepView> {
        self.steps.iter().rev().find(|s| s.group == group)
    }

    /// The model's file name, for titles.
    pub fn model_name(&self) -> &str {
        Path::new(&self.model)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.model)
    }
}
