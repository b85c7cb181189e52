//! The built-in metrics.

use crate::data::Annotation;
use crate::error::{Error, Result};
use crate::metric::{Direction, Metric, SampleMetric, Scoring};
use crate::tensor::Tensor;

pub(super) fn first_output<'a>(metric: &str, outputs: &'a [Tensor]) -> Result<&'a [f32]> {
    let t = outputs.first().ok_or_else(|| Error::Metric {
        name: metric.into(),
        message: "the model has no output".into(),
    })?;
    let a = t.as_f32("first output").map_err(|e| Error::Metric {
        name: metric.into(),
        message: e.to_string(),
    })?;
    a.as_slice().ok_or_else(|| Error::Metric {
        name: metric.into(),
        message: "output is not contiguous".into(),
    })
}

/// Index of the largest value; the first one on ties (as `argmax` everywhere).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

fn reference<'a>(metric: &str, reference: Option<&'a [Tensor]>) -> Result<&'a [Tensor]> {
    reference.ok_or_else(|| Error::Metric {
        name: metric.into(),
        message: "needs the FP32 model's outputs, which were not given".into(),
    })
}

/// Top-k classification accuracy on the first output (logits or probabilities, `[1, classes]`).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    name: String,
}

impl TopK {
    /// Top-`k` accuracy.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            name: format!("top{k}"),
        }
    }
}

impl Metric for TopK {
    fn name(&self) -> &str {
        &self.name
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for TopK {
    fn sample_bounds(&self) -> Option<(f64, f64)> {
        Some((0.0, 1.0))
    }

    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        _: Option<&[Tensor]>,
    ) -> Result<f64> {
        let Annotation::Label(label) = annotation else {
            return Err(Error::Metric {
                name: self.name.clone(),
                message: "the dataset has no labels".into(),
            });
        };
        let scores = first_output(&self.name, outputs)?;
        let label = usize::try_from(*label)
            .ok()
            .filter(|&l| l < scores.len())
            .ok_or_else(|| Error::Metric {
                name: self.name.clone(),
                message: format!(
                    "label {label} is outside the model's {} classes",
                    scores.len()
                ),
            })?;
        if scores.iter().any(|v| v.is_nan()) {
            return Err(Error::Metric {
                name: self.name.clone(),
                message: "the model output contains NaN".into(),
            });
        }
        // The label's rank, breaking ties by index as argmax does.
        let target = scores[label];
        let rank = scores
            .iter()
            .enumerate()
            .filter(|&(j, &v)| v > target || (v == target && j < label))
            .count();
        Ok(if rank < self.k { 1.0 } else { 0.0 })
    }
}

/// Agreement of the top-1 prediction with the FP32 model's: needs no labels.
#[derive(Debug, Clone, Copy)]
pub struct Agreement;

impl Metric for Agreement {
    fn name(&self) -> &str {
        "agreement"
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for Agreement {
    fn needs_reference(&self) -> bool {
        true
    }

    fn sample_bounds(&self) -> Option<(f64, f64)> {
        Some((0.0, 1.0))
    }

    fn sample_value(
        &self,
        outputs: &[Tensor],
        _: &Annotation,
        reference_outputs: Option<&[Tensor]>,
    ) -> Result<f64> {
        let ours = first_output(self.name(), outputs)?;
        let theirs = first_output(self.name(), reference(self.name(), reference_outputs)?)?;
        Ok(if argmax(ours) == argmax(theirs) {
            1.0
        } else {
            0.0
        })
    }
}

fn squared_error(
    metric: &str,
    outputs: &[Tensor],
    reference_outputs: &[Tensor],
) -> Result<(f64, f64, usize)> {
    let (mut err, mut energy, mut count) = (0.0f64, 0.0f64, 0usize);
    for (o, r) in outputs.iter().zip(reference_outputs) {
        let (o, r) = (o.as_f32("output")?, r.as_f32("reference output")?);
        if o.shape() != r.shape() {
            return Err(Error::Metric {
                name: metric.into(),
                message: format!(
                    "output shape {:?} differs from the reference's {:?}",
                    o.shape(),
                    r.shape()
                ),
            });
        }
        for (a, b) in o.iter().zip(r.iter()) {
            let d = (*a - *b) as f64;
            err += d * d;
            energy += (*b as f64) * (*b as f64);
        }
        count += o.len();
    }
    Ok((err, energy, count))
}

/// Error of all outputs against the FP32 model's (higher is worse): the mean squared error (`mse`), or the
/// normalised `‖ref − out‖² / ‖ref‖²` (`nmse`, scale-free: comparable across layers and models).
#[derive(Debug, Clone, Copy)]
pub struct OutputError {
    normalized: bool,
}

impl OutputError {
    /// Mean squared error.
    pub const fn mse() -> Self {
        OutputError { normalized: false }
    }

    /// Normalised mean squared error.
    pub const fn nmse() -> Self {
        OutputError { normalized: true }
    }
}

impl Metric for OutputError {
    fn name(&self) -> &str {
        if self.normalized {
            "nmse"
        } else {
            "mse"
        }
    }

    fn direction(&self) -> Direction {
        Direction::HigherWorse
    }

    fn kind(&self) -> &str {
        "error"
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for OutputError {
    fn needs_reference(&self) -> bool {
        true
    }

    /// Squared errors are never negative: the lower bound lets ranking by NMSE stop a candidate as soon as its
    /// partial sum exceeds the best complete one's.
    fn sample_bounds(&self) -> Option<(f64, f64)> {
        Some((0.0, f64::INFINITY))
    }

    fn sample_value(
        &self,
        outputs: &[Tensor],
        _: &Annotation,
        reference_outputs: Option<&[Tensor]>,
    ) -> Result<f64> {
        let (err, energy, count) = squared_error(
            self.name(),
            outputs,
            reference(self.name(), reference_outputs)?,
        )?;
        Ok(match (self.normalized, energy > 0.0) {
            (true, true) => err / energy,
            (true, false) => err,
            (false, _) => err / count.max(1) as f64,
        })
    }
}

/// The per-sample function a [`FnMetric`] wraps.
pub type SampleFn = dyn Fn(&[Tensor], &Annotation) -> Result<f64> + Send + Sync;

/// A metric from a closure: the quickest way to bring your own.
pub struct FnMetric {
    name: String,
    direction: Direction,
    function: Box<SampleFn>,
}

impl FnMetric {
    /// A metric called `name` whose per-sample value is `function(outputs, annotation)`.
    pub fn new(
        name: impl Into<String>,
        direction: Direction,
        function: impl Fn(&[Tensor], &Annotation) -> Result<f64> + Send + Sync + 'static,
    ) -> Self {
        FnMetric {
            name: name.into(),
            direction,
            function: Box::new(function),
        }
    }
}

impl Metric for FnMetric {
    fn name(&self) -> &str {
        &self.name
    }

    fn direction(&self) -> Direction {
        self.direction
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for FnMetric {
    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        _: Option<&[Tensor]>,
    ) -> Result<f64> {
        (self.function)(outputs, annotation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn logits(v: &[f32]) -> Vec<Tensor> {
        vec![Tensor::F32(
            ArrayD::from_shape_vec(IxDyn(&[1, v.len()]), v.to_vec()).unwrap(),
        )]
    }

    #[test]
    fn top_k_counts_rank_with_argmax_tie_break() {
        let out = logits(&[0.1, 0.9, 0.5, 0.9]);
        let top1 = TopK::new(1);
        assert_eq!(
            top1.sample_value(&out, &Annotation::Label(1), None)
                .unwrap(),
            1.0
        );
        assert_eq!(
            top1.sample_value(&out, &Annotation::Label(3), None)
                .unwrap(),
            0.0
        );
        assert_eq!(
            TopK::new(2)
                .sample_value(&out, &Annotation::Label(3), None)
                .unwrap(),
            1.0
        );
        assert_eq!(
            TopK::new(3)
                .sample_value(&out, &Annotation::Label(0), None)
                .unwrap(),
            0.0
        );
    }

    #[test]
    fn top_k_rejects_bad_label_and_nan() {
        let top1 = TopK::new(1);
        assert!(top1
            .sample_value(&logits(&[1.0, 2.0]), &Annotation::Label(2), None)
            .is_err());
        assert!(top1
            .sample_value(&logits(&[f32::NAN, 2.0]), &Annotation::Label(1), None)
            .is_err());
        assert!(top1
            .sample_value(&logits(&[1.0, 2.0]), &Annotation::None, None)
            .is_err());
    }

    #[test]
    fn reference_metrics() {
        let a = logits(&[1.0, 3.0]);
        let b = logits(&[1.0, 1.0]);
        assert_eq!(
            Agreement
                .sample_value(&a, &Annotation::None, Some(&b))
                .unwrap(),
            0.0
        );
        assert_eq!(
            Agreement
                .sample_value(&a, &Annotation::None, Some(&a))
                .unwrap(),
            1.0
        );
        assert_eq!(
            OutputError::mse()
                .sample_value(&a, &Annotation::None, Some(&b))
                .unwrap(),
            2.0
        );
        assert_eq!(
            OutputError::nmse()
                .sample_value(&a, &Annotation::None, Some(&b))
                .unwrap(),
            2.0
        );
        assert!(Agreement.sample_value(&a, &Annotation::None, None).is_err());
    }

    #[test]
    fn builtin_names() {
        assert_eq!(crate::metric::builtin("top5").unwrap().name(), "top5");
        assert_eq!(
            crate::metric::builtin("nmse").unwrap().direction(),
            Direction::HigherWorse
        );
        assert!(crate::metric::builtin("top0").is_err());
        assert!(crate::metric::builtin("f1").is_err());
        for name in ["f1_macro", "auroc", "map50", "map50_95"] {
            let metric = crate::metric::builtin(name).unwrap();
            assert_eq!((metric.name(), metric.per_sample()), (name, false));
            assert_eq!(metric.direction(), Direction::HigherBetter);
            assert!(crate::metric::builtin(&format!("dataset:{name}")).is_err());
        }
    }
}
