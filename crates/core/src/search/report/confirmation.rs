//! The held-out confirmation: the saved model's drop on samples the search never saw.

use serde::Serialize;

use crate::metric::confidence::DropInterval;
use crate::metric::limit_sign;

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
