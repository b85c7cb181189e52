//! The deployed check of a model that no search produced (DefaultQuantization given a validation set): the
//! saved model and the FP32 model, both measured on the engine the model is deployed on, on the same samples.
//!
//! Accuracy control judges its own result the same way (the restorer's deployed-check phase); this is the
//! check alone, for a user who quantized without a target but wants to know what the deployed model loses,
//! and without a validation set the saved model's latency alone ([`time_deployed`]).

use aquant_onnx::ModelProto;

use crate::backend::Backend;
use crate::cpu::CpuFeatures;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{measure_latency, Evaluation, Evaluator, Latency};
use crate::metric::Metric;
use crate::params::AccuracyControlParams;
use crate::progress::Progress;
use crate::search::{DeployedMetric, DeployedReport};

/// Measures `fp32` and `saved` on `engine` over all of `validation` and compares them metric by metric, with
/// the drops `control` allows (`maximal_drop`, `drop_type`); then times them, `latency_runs` runs each.
#[allow(clippy::too_many_arguments)]
pub fn check_deployed(
    engine: &dyn Backend,
    fp32: &ModelProto,
    saved: &ModelProto,
    validation: &dyn Dataset,
    metrics: &[&dyn Metric],
    control: &AccuracyControlParams,
    batch_size: usize,
    latency_runs: usize,
    progress: &dyn Progress,
) -> Result<DeployedReport> {
    control.validate()?;
    if control.maximal_drop.several() {
        return Err(Error::Config(format!(
            "maximal_drop {}: the deployed check of DefaultQuantization judges one model against one target; \
             several targets are for accuracy control (--val with AccuracyAwareQuantization)",
            control.maximal_drop
        )));
    }
    let judged = Judged {
        engine,
        data: validation,
        metrics,
        batch_size,
        progress,
        bootstrap: 0,
    };
    let (baseline, quantized) =
        judged.evaluate(fp32, saved, ["FP32 (deployed engine)", "deployed check"])?;
    let metrics: Vec<DeployedMetric> = metrics
        .iter()
        .zip(baseline.metrics.iter().zip(&quantized.metrics))
        .map(|(metric, (base, value))| DeployedMetric {
            name: metric.name().into(),
            value: value.value,
            drop: metric.direction().drop(base.value, value.value),
            judged_drop: None,
            allowed_drop: control.allowed_drop(base.value),
        })
        .collect();
    let latency = measure_latency(engine, fp32, saved, validation, latency_runs)?;
    Ok(measured_on(engine, batch_size.max(1), metrics, latency))
}

/// Where FP32 and a saved model are judged side by side: the engine, the samples, the metrics.
pub(crate) struct Judged<'a> {
    pub engine: &'a dyn Backend,
    pub data: &'a dyn Dataset,
    pub metrics: &'a [&'a dyn Metric],
    pub batch_size: usize,
    pub progress: &'a dyn Progress,
    /// Bootstrap resamples dataset-level metrics are scored on, for their drop's interval (0: none).
    pub bootstrap: usize,
}

impl Judged<'_> {
    /// `fp32` and `saved` evaluated on every sample (labelled `labels` in the progress lines): FP32's
    /// evaluation, then the saved model's.
    pub fn evaluate(
        &self,
        fp32: &ModelProto,
        saved: &ModelProto,
        labels: [&str; 2],
    ) -> Result<(Evaluation, Evaluation)> {
        let evaluator = Evaluator::new(
            self.engine,
            self.data,
            self.metrics.to_vec(),
            Some(fp32),
            self.batch_size,
            self.progress,
        )?
        .with_bootstrap(self.bootstrap);
        let all = evaluator.all_indices();
        let baseline = evaluator.evaluate(fp32, &all, labels[0])?;
        Ok((baseline, evaluator.evaluate(saved, &all, labels[1])?))
    }
}

/// The saved model timed beside FP32 on `engine` when there is nothing to judge it against (DefaultQuantization
/// without a validation set, as NNCF's `quantize`): no metric, the latency on `data`'s first sample, so that
/// every report with a deployment engine says how fast the saved model runs there. `None` for 0 runs.
pub fn time_deployed(
    engine: &dyn Backend,
    fp32: &ModelProto,
    saved: &ModelProto,
    data: &dyn Dataset,
    latency_runs: usize,
) -> Result<Option<DeployedReport>> {
    let Some(latency) = measure_latency(engine, fp32, saved, data, latency_runs)? else {
        return Ok(None);
    };
    Ok(Some(measured_on(
        engine,
        latency.batch,
        Vec::new(),
        Some(latency),
    )))
}

/// What `engine` measured on this CPU at `batch`: within the target when every metric is within its drop
/// (vacuously, for a model only timed), neither continued nor reused (only the search does either).
fn measured_on(
    engine: &dyn Backend,
    batch: usize,
    metrics: Vec<DeployedMetric>,
    latency: Option<Latency>,
) -> DeployedReport {
    DeployedReport {
        engine: engine.name().into(),
        version: engine.version(),
        batch,
        settings: engine.settings(),
        cpu: CpuFeatures::detect(),
        target_met: metrics.iter().all(|m| m.drop <= m.allowed_drop + 1e-9),
        metrics,
        continued: false,
        reused: false,
        latency,
    }
}
