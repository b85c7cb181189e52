//! The accuracy / size / latency front: every model the search walked through, and each target's model.

use serde::Serialize;

use super::{DeployedMetric, DeployedReport};
use crate::metric::limit_sign;
use crate::quantize::OpsByPrecision;

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
