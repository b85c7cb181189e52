//! Classification metrics that only exist over a whole set: macro-averaged F1 (`f1_macro`) and the area under
//! the ROC curve of a binary classifier (`auroc`).
//!
//! Both give the values scikit-learn gives (`f1_score(average="macro")`, `roc_auc_score`), so a number reported
//! by aquant can be compared with one from a Python evaluation script. Neither has per-sample values: the search
//! ranks groups by output NMSE for them, and computes them on full evaluations only.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use crate::data::Annotation;
use crate::error::{Error, Result};
use crate::metric::builtin::{argmax, first_output};
use crate::metric::{Metric, RunnableModel, SampleOutputs, Scoring, SetMetric, SetValue};

fn error(metric: &str, message: impl Into<String>) -> Error {
    Error::Metric {
        name: metric.into(),
        message: message.into(),
    }
}

/// The sample's label; built-in classification metrics need one.
fn label(metric: &str, sample: &SampleOutputs) -> Result<i64> {
    match sample.annotation {
        Annotation::Label(label) => Ok(label),
        _ => Err(error(
            metric,
            format!(
                "sample {} has no label (data spec key \"labels\")",
                sample.index
            ),
        )),
    }
}

/// The sample's first output, refusing NaN and ±Inf (they would make the ranking of scores meaningless).
fn finite_scores<'a>(metric: &str, sample: &'a SampleOutputs) -> Result<&'a [f32]> {
    let scores = first_output(metric, &sample.outputs)?;
    if scores.is_empty() {
        return Err(error(metric, "the first output is empty"));
    }
    if scores.iter().any(|v| !v.is_finite()) {
        return Err(error(
            metric,
            format!(
                "sample {}: the model output contains NaN or Inf",
                sample.index
            ),
        ));
    }
    Ok(scores)
}

fn no_samples(metric: &str) -> Error {
    error(metric, "no samples to evaluate")
}

/// Per class: how often it is the label, how often it is predicted, and how often both.
#[derive(Default)]
struct ClassCounts {
    truth: u64,
    predicted: u64,
    correct: u64,
}

/// Macro-averaged F1 of the top-1 class (the argmax of the first output, `[1, classes]`) against the labels.
///
/// As scikit-learn's `f1_score(average="macro")`: the classes are those that occur as a label or a
/// prediction, each class's F1 is `2·tp / (2·tp + fp + fn)` (0 when it has no true positive), and the value
/// is their unweighted mean, so rare classes weigh as much as common ones.
#[derive(Debug, Clone, Copy)]
pub struct F1Macro;

impl F1Macro {
    const NAME: &'static str = "f1_macro";

    /// The metric over `samples` (in any order).
    pub fn value<S: Borrow<SampleOutputs>>(&self, samples: &[S]) -> Result<f64> {
        if samples.is_empty() {
            return Err(no_samples(Self::NAME));
        }
        let mut classes: BTreeMap<i64, ClassCounts> = BTreeMap::new();
        for sample in samples.iter().map(Borrow::borrow) {
            let scores = finite_scores(Self::NAME, sample)?;
            let truth = label(Self::NAME, sample)?;
            if !(0..scores.len() as i64).contains(&truth) {
                return Err(error(
                    Self::NAME,
                    format!(
                        "sample {}: label {truth} is outside the model's {} classes",
                        sample.index,
                        scores.len()
                    ),
                ));
            }
            let predicted = argmax(scores) as i64;
            classes.entry(truth).or_default().truth += 1;
            classes.entry(predicted).or_default().predicted += 1;
            if predicted == truth {
                classes.entry(truth).or_default().correct += 1;
            }
        }
        let sum: f64 = classes
            .values()
            .map(|c| 2.0 * c.correct as f64 / (c.truth + c.predicted) as f64)
            .sum();
        Ok(sum / classes.len() as f64)
    }
}

impl Metric for F1Macro {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::WholeSet(self)
    }
}

impl SetMetric for F1Macro {
    fn set_value(&self, samples: &[&SampleOutputs], _: &dyn RunnableModel) -> Result<SetValue> {
        self.value(samples).map(SetValue::from)
    }
}

/// Area under the ROC curve of a binary classifier: labels 0 and 1, and a score for class 1 from the first
/// output.
///
/// The score is the output itself when it holds one value (`[1]` or `[1, 1]`: a logit or a probability), and
/// `out[1] - out[0]` when it holds two (`[1, 2]`: two class logits or probabilities). The difference orders
/// samples exactly as softmax's probability of class 1 does (which is a monotone function of it), and the AUC
/// depends on that order only. The AUC is the Mann–Whitney statistic: the share of (positive, negative)
/// pairs the score orders correctly, a tie counting one half, which is what scikit-learn's `roc_auc_score`
/// computes.
#[derive(Debug, Clone, Copy)]
pub struct Auroc;

impl Auroc {
    const NAME: &'static str = "auroc";

    /// The metric over `samples` (in any order); an error unless both classes occur.
    pub fn value<S: Borrow<SampleOutputs>>(&self, samples: &[S]) -> Result<f64> {
        if samples.is_empty() {
            return Err(no_samples(Self::NAME));
        }
        let mut scored = samples
            .iter()
            .map(Borrow::borrow)
            .map(|s| Ok((positive_score(s)?, binary_label(s)?)))
            .collect::<Result<Vec<(f64, bool)>>>()?;
        let positives = scored.iter().filter(|(_, positive)| *positive).count();
        let negatives = scored.len() - positives;
        if positives == 0 || negatives == 0 {
            let class = if positives == 0 { 0 } else { 1 };
            return Err(error(
                Self::NAME,
                format!(
                    "every one of the {} samples has label {class}: AUROC needs both classes",
                    scored.len()
                ),
            ));
        }
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(correctly_ordered_pairs(&scored) / (positives as f64 * negatives as f64))
    }
}

/// The number of (positive, negative) pairs whose positive scores higher, ties counting ½; `scored` sorted by
/// score, ascending.
fn correctly_ordered_pairs(scored: &[(f64, bool)]) -> f64 {
    let (mut pairs, mut negatives_below) = (0.0, 0u64);
    for tie in scored.chunk_by(|a, b| a.0 == b.0) {
        let positives = tie.iter().filter(|(_, positive)| *positive).count() as u64;
        let negatives = tie.len() as u64 - positives;
        pairs += (positives * negatives_below) as f64 + 0.5 * (positives * negatives) as f64;
        negatives_below += negatives;
    }
    pairs
}

/// The score of class 1 (see [`Auroc`]).
fn positive_score(sample: &SampleOutputs) -> Result<f64> {
    let scores = finite_scores(Auroc::NAME, sample)?;
    match scores {
        [score] => Ok(*score as f64),
        [negative, positive] => Ok(*positive as f64 - *negative as f64),
        _ => Err(error(
            Auroc::NAME,
            format!(
                "the first output must hold one score or two class scores ([1, 1] or [1, 2]); it has {} values",
                scores.len()
            ),
        )),
    }
}

/// The label as "is class 1"; labels other than 0 and 1 are an error.
fn binary_label(sample: &SampleOutputs) -> Result<bool> {
    match label(Auroc::NAME, sample)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(error(
            Auroc::NAME,
            format!(
                "sample {}: label {other} is not 0 or 1 (AUROC is for binary classification)",
                sample.index
            ),
        )),
    }
}

impl Metric for Auroc {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::WholeSet(self)
    }
}

impl SetMetric for Auroc {
    fn set_value(&self, samples: &[&SampleOutputs], _: &dyn RunnableModel) -> Result<SetValue> {
        self.value(samples).map(SetValue::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn sample(index: usize, scores: &[f32], label: i64) -> SampleOutputs {
        SampleOutputs {
            index,
            outputs: vec![Tensor::F32(
                ArrayD::from_shape_vec(IxDyn(&[1, scores.len()]), scores.to_vec()).unwrap(),
            )],
            annotation: Annotation::Label(label),
        }
    }

    #[test]
    fn f1_macro_by_hand() {
        // Labels 0,0,1,2; predictions 0,1,1,1: class 0 F1 = 2/3, class 1 = 2/4, class 2 = 0.
        let samples = [
            sample(0, &[1.0, 0.0, 0.0], 0),
            sample(1, &[0.0, 1.0, 0.0], 0),
            sample(2, &[0.0, 1.0, 0.0], 1),
            sample(3, &[0.0, 1.0, 0.5], 2),
        ];
        let expected = (2.0 / 3.0 + 0.5 + 0.0) / 3.0;
        assert!((F1Macro.value(&samples).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn f1_macro_ignores_classes_never_labelled_nor_predicted() {
        // Four outputs, but only classes 0 and 1 occur: both perfect.
        let samples = [
            sample(0, &[1.0, 0.0, 0.0, 0.0], 0),
            sample(1, &[0.0, 1.0, 0.0, 0.0], 1),
        ];
        assert_eq!(F1Macro.value(&samples).unwrap(), 1.0);
    }

    #[test]
    fn f1_macro_refuses_bad_input() {
        assert!(F1Macro.value::<SampleOutputs>(&[]).is_err());
        let nan = F1Macro
            .value(&[sample(4, &[f32::NAN, 1.0], 0)])
            .unwrap_err();
        assert!(nan
            .to_string()
            .contains("sample 4: the model output contains NaN"));
        assert!(F1Macro.value(&[sample(0, &[0.0, 1.0], 2)]).is_err());
        let mut unlabelled = sample(0, &[0.0, 1.0], 0);
        unlabelled.annotation = Annotation::None;
        assert!(F1Macro.value(&[unlabelled]).is_err());
    }

    #[test]
    fn auroc_counts_ties_as_half() {
        // Pairs (pos, neg): 0.8>0.1, 0.8>0.5, 0.5=0.5 (½), 0.5>0.1 → 3.5 of 4.
        let samples = [
            sample(0, &[0.8], 1),
            sample(1, &[0.5], 1),
            sample(2, &[0.5], 0),
            sample(3, &[0.1], 0),
        ];
        assert_eq!(Auroc.value(&samples).unwrap(), 3.5 / 4.0);
    }

    #[test]
    fn auroc_of_two_class_scores_uses_their_difference() {
        let samples = [
            sample(0, &[0.0, 2.0], 1),
            sample(1, &[5.0, 6.0], 0),
            sample(2, &[1.0, 0.0], 0),
        ];
        // Differences 2, 1, -1: the positive is above both negatives.
        assert_eq!(Auroc.value(&samples).unwrap(), 1.0);
    }

    #[test]
    fn auroc_refuses_a_single_class_and_bad_outputs() {
        let one_class = Auroc
            .value(&[sample(0, &[0.3], 1), sample(1, &[0.6], 1)])
            .unwrap_err();
        assert!(matches!(one_class, Error::Metric { .. }));
        assert!(one_class.to_string().contains("needs both classes"));
        assert!(Auroc.value(&[sample(0, &[0.3, 0.2, 0.1], 1)]).is_err());
        assert!(Auroc.value(&[sample(0, &[0.3], 2)]).is_err());
        assert!(Auroc
            .value(&[sample(0, &[f32::NAN], 1), sample(1, &[0.2], 0)])
            .is_err());
    }

    #[test]
    fn order_of_samples_does_not_matter() {
        let samples: Vec<SampleOutputs> = (0..40)
            .map(|i| {
                let s = ((i * 37 % 11) as f32) / 4.0;
                sample(i, &[s, 1.0], (i % 2) as i64)
            })
            .collect();
        let mut reversed = samples.clone();
        reversed.reverse();
        reversed.swap(3, 17);
        assert_eq!(
            Auroc.value(&samples).unwrap(),
            Auroc.value(&reversed).unwrap()
        );
        assert_eq!(
            F1Macro.value(&samples).unwrap(),
            F1Macro.value(&reversed).unwrap()
        );
    }
}
