//! The deployed check: the saved model judged and timed on the engine it is deployed on.

use serde::Serialize;

use crate::backend::EngineSettings;
use crate::cpu::CpuFeatures;
use crate::eval::{Latency, Timing};
use crate::metric::limit_sign;

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

/// The saved model judged by the engine it is deployed on ([`RunOptions::deployed`](crate::params::RunOptions)).
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
