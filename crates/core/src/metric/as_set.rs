//! A per-sample metric seen as a dataset-level one: the same values, none of them per sample.
//!
//! This is how a run takes the path a mAP or macro-F1 run takes (ranking by output NMSE, the metric only on
//! full evaluations) with a metric whose per-sample values are known, so that both paths can be compared on the
//! same model and data (`--metric dataset:top1`).

use crate::error::{Error, Result};
use crate::metric::{
    Direction, Metric, RunnableModel, SampleOutputs, Scoring, SetMetric, SetValue,
};

/// The prefix of a built-in metric name that asks for it as dataset-level.
pub const PREFIX: &str = "dataset:";

/// `inner`'s aggregate over a whole set, without per-sample values.
pub struct AsSet {
    inner: Box<dyn Metric>,
}

impl AsSet {
    /// `inner` as a dataset-level metric; it must be per-sample and must not compare with the FP32 outputs (a
    /// dataset-level metric is not given them).
    pub fn new(inner: Box<dyn Metric>) -> Result<Self> {
        if !inner.per_sample() {
            return Err(Error::Config(format!(
                "metric '{}' is dataset-level already",
                inner.name()
            )));
        }
        if inner.needs_reference() {
            return Err(Error::Config(format!(
                "metric '{}' compares with the FP32 outputs sample by sample: it cannot be dataset-level",
                inner.name()
            )));
        }
        Ok(AsSet { inner })
    }
}

impl Metric for AsSet {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn direction(&self) -> Direction {
        self.inner.direction()
    }

    fn kind(&self) -> &str {
        self.inner.kind()
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::WholeSet(self)
    }
}

impl SetMetric for AsSet {
    fn set_value(&self, samples: &[&SampleOutputs], _: &dyn RunnableModel) -> Result<SetValue> {
        // `new` took only a per-sample metric; its scoring does not change.
        let Scoring::PerSample(inner) = self.inner.scoring() else {
            return Err(Error::Metric {
                name: self.name().into(),
                message: "the wrapped metric is not per-sample".into(),
            });
        };
        let values = samples
            .iter()
            .map(|s| inner.sample_value(&s.outputs, &s.annotation, None))
            .collect::<Result<Vec<f64>>>()?;
        Ok(SetValue::from(inner.aggregate(&values)))
    }
}
