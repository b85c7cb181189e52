//! Mean average precision of an object detector (`map50`, `map50_95`), as pycocotools' `COCOeval` computes it
//! for boxes over all areas with at most 100 detections per image.
//!
//! The model's first output is `[1, N, 6]`: one row `(x1, y1, x2, y2, score, class)` per detection, in the
//! units of the ground-truth boxes (`Annotation::Boxes`). Rows with a score ≤ 0 or a negative class are
//! padding (a fixed-size output with fewer detections) and are ignored.
//!
//! Following COCOeval step by step keeps the value comparable with a Python evaluation: per image and class,
//! the 100 best detections are matched, best first, each to the unmatched ground truth of its class with the
//! highest IoU at or above the threshold; per class, the matches of every image are sorted by score, the
//! precision is made monotone and read at the 101 recalls 0, 0.01, …, 1; the mean is over the classes that
//! have ground truth and over the IoU thresholds. Its float expressions (thresholds, the epsilon in the
//! precision) are reproduced too, so that a recall on a threshold falls on the same side as in pycocotools.

use std::borrow::Borrow;
use std::collections::BTreeSet;

use crate::data::{Annotation, GroundTruthBox};
use crate::error::{Error, Result};
use crate::metric::{Metric, RunnableModel, SampleOutputs, Scoring, SetMetric, SetValue};
use crate::tensor::Tensor;

/// Detections kept per image and class (COCOeval's `maxDets`, the value mAP is reported at).
const MAX_DETECTIONS: usize = 100;

/// Recall points at which precision is read (COCOeval's `recThrs`).
const RECALL_POINTS: usize = 101;

/// Values in a detection row: x1, y1, x2, y2, score, class.
const ROW: usize = 6;

/// Mean average precision over the classes with ground truth, at one IoU threshold or averaged over several.
#[derive(Debug, Clone)]
pub struct MeanAveragePrecision {
    name: &'static str,
    thresholds: Vec<f64>,
}

impl MeanAveragePrecision {
    /// AP at IoU 0.5 (`map50`, COCO's AP50, PASCAL VOC's criterion with COCO's interpolation).
    pub fn map50() -> Self {
        MeanAveragePrecision {
            name: "map50",
            thresholds: vec![0.5],
        }
    }

    /// AP averaged over IoU 0.50, 0.55, …, 0.95 (`map50_95`, COCO's headline AP).
    pub fn map50_95() -> Self {
        MeanAveragePrecision {
            name: "map50_95",
            thresholds: linspace(0.5, 0.95, 10),
        }
    }

    /// The metric over `samples` (in any order: they are taken in dataset-index order, as COCOeval takes
    /// images in id order, which decides between detections of equal score).
    pub fn value<S: Borrow<SampleOutputs>>(&self, samples: &[S]) -> Result<f64> {
        let mut ordered: Vec<&SampleOutputs> = samples.iter().map(Borrow::borrow).collect();
        ordered.sort_by_key(|s| s.index);
        let images = ordered
            .iter()
            .map(|s| self.image(s))
            .collect::<Result<Vec<Image>>>()?;
        let classes: BTreeSet<i64> = images
            .iter()
            .flat_map(|image| image.truth.iter().map(|t| t.class))
            .collect();
        if classes.is_empty() {
            return Err(self.error(format!(
                "none of the {} samples has a ground-truth box: mAP is undefined",
                samples.len()
            )));
        }
        let mut sum = 0.0;
        for &class in &classes {
            let per_image: Vec<ClassImage> = images.iter().map(|i| i.of_class(class)).collect();
            for &threshold in &self.thresholds {
                sum += average_precision(&per_image, threshold);
            }
        }
        Ok(sum / (classes.len() * self.thresholds.len()) as f64)
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Metric {
            name: self.name.into(),
            message: message.into(),
        }
    }

    /// One sample's detections and ground truth.
    fn image(&self, sample: &SampleOutputs) -> Result<Image> {
        let Annotation::Boxes(truth) = &sample.annotation else {
            return Err(self.error(format!(
                "sample {} has no ground-truth boxes (data spec key \"boxes\")",
                sample.index
            )));
        };
        let detections = self
            .detections(&sample.outputs)
            .map_err(|message| self.error(format!("sample {}: {message}", sample.index)))?;
        Ok(Image {
            detections,
            truth: truth.clone(),
        })
    }

    /// The detections in the first output (see the module documentation), padding rows left out.
    fn detections(&self, outputs: &[Tensor]) -> Result<Vec<Detection>, String> {
        let output = outputs.first().ok_or("the model has no output")?;
        let array = output.as_f32("first output").map_err(|e| e.to_string())?;
        match array.shape() {
            [1, _, ROW] => {}
            [1, _, 7] => {
                return Err(format!(
                    "the first output {:?} has 7 values per row; a leading batch-index column is not supported: \
                     give [1, N, 6] rows (x1, y1, x2, y2, score, class)",
                    array.shape()
                ))
            }
            shape => {
                return Err(format!(
                    "the first output must be [1, N, 6] rows (x1, y1, x2, y2, score, class); it is {shape:?}"
                ))
            }
        }
        let values: Vec<f64> = array.iter().map(|&v| v as f64).collect();
        values
            .chunks_exact(ROW)
            .enumerate()
            .filter(|(_, row)| !is_padding(row))
            .map(|(i, row)| detection(row).map_err(|m| format!("detection row {i}: {m}")))
            .collect()
    }
}

/// Whether an output row is padding: score ≤ 0 or a negative class. A NaN is not padding (it is reported).
fn is_padding(row: &[f64]) -> bool {
    row[4] <= 0.0 || row[5] < 0.0
}

/// A detection from an output row that is not padding.
fn detection(row: &[f64]) -> Result<Detection, String> {
    if row.iter().any(|v| !v.is_finite()) {
        return Err(format!("NaN or Inf in {row:?}"));
    }
    if row[5].fract() != 0.0 {
        return Err(format!("class {} is not a whole number", row[5]));
    }
    Ok(Detection {
        bbox: [row[0], row[1], row[2], row[3]],
        score: row[4],
        class: row[5] as i64,
    })
}

/// `count` evenly spaced values from `start` to `stop`, computed as NumPy's `linspace` does (COCOeval's
/// thresholds come from it, and a recall equal to a threshold must compare the same way).
fn linspace(start: f64, stop: f64, count: usize) -> Vec<f64> {
    let step = (stop - start) / (count - 1) as f64;
    (0..count)
        .map(|i| match i + 1 == count {
            true => stop,
            false => i as f64 * step + start,
        })
        .collect()
}

/// A detection: box corners, score, class.
struct Detection {
    bbox: [f64; 4],
    score: f64,
    class: i64,
}

/// One sample's detections and ground truth.
struct Image {
    detections: Vec<Detection>,
    truth: Vec<GroundTruthBox>,
}

/// One image's view of one class: its detections best first (at most [`MAX_DETECTIONS`]) and their IoU with
/// each of its ground-truth boxes.
struct ClassImage {
    scores: Vec<f64>,
    /// `ious[d][g]`: detection `d` against ground truth `g` (in the annotation's order).
    ious: Vec<Vec<f64>>,
    truths: usize,
}

impl Image {
    fn of_class(&self, class: i64) -> ClassImage {
        let mut detections: Vec<&Detection> = self
            .detections
            .iter()
            .filter(|d| d.class == class)
            .collect();
        // Stable, as COCOeval's mergesort: equal scores keep the output's order.
        detections.sort_by(|a, b| b.score.total_cmp(&a.score));
        detections.truncate(MAX_DETECTIONS);
        let truth: Vec<[f64; 4]> = self
            .truth
            .iter()
            .filter(|t| t.class == class)
            .map(|t| t.bbox.map(f64::from))
            .collect();
        ClassImage {
            scores: detections.iter().map(|d| d.score).collect(),
            ious: detections
                .iter()
                .map(|d| truth.iter().map(|t| iou(&d.bbox, t)).collect())
                .collect(),
            truths: truth.len(),
        }
    }
}

impl ClassImage {
    /// Whether each detection (best first) matches a ground truth at `threshold`: greedily, each takes the
    /// unmatched ground truth with the highest IoU ≥ `threshold` (the last of equal ones, as COCOeval).
    fn matches(&self, threshold: f64) -> Vec<bool> {
        let mut taken = vec![false; self.truths];
        self.ious
            .iter()
            .map(|ious| {
                let mut best = threshold.min(1.0 - 1e-10);
                let mut matched = None;
                for (g, &iou) in ious.iter().enumerate() {
                    if !taken[g] && iou >= best {
                        best = iou;
                        matched = Some(g);
                    }
                }
                if let Some(g) = matched {
                    taken[g] = true;
                }
                matched.is_some()
            })
            .collect()
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes (continuous coordinates, as COCO: no +1).
fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let width = a[2].min(b[2]) - a[0].max(b[0]);
    let height = a[3].min(b[3]) - a[1].max(b[1]);
    if width <= 0.0 || height <= 0.0 {
        return 0.0;
    }
    let intersection = width * height;
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    intersection / (area(a) + area(b) - intersection)
}

/// One class's AP at one IoU threshold over every image: COCOeval's `accumulate` for that class.
fn average_precision(images: &[ClassImage], threshold: f64) -> f64 {
    let truths: usize = images.iter().map(|i| i.truths).sum();
    if truths == 0 {
        return 0.0;
    }
    let mut ranked: Vec<(f64, bool)> = images
        .iter()
        .flat_map(|i| i.scores.iter().copied().zip(i.matches(threshold)))
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (recall, precision) = precision_recall(&ranked, truths);
    let sum: f64 = linspace(0.0, 1.0, RECALL_POINTS)
        .into_iter()
        .map(|at| {
            let first = recall.partition_point(|&v| v < at);
            precision.get(first).copied().unwrap_or(0.0)
        })
        .sum();
    sum / RECALL_POINTS as f64
}

/// Recall and monotone (non-increasing) precision after each detection of `ranked` (best first).
fn precision_recall(ranked: &[(f64, bool)], truths: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let (mut recall, mut precision) = (Vec::new(), Vec::new());
    for &(_, matched) in ranked {
        match matched {
            true => tp += 1.0,
            false => fp += 1.0,
        }
        recall.push(tp / truths as f64);
        precision.push(tp / (fp + tp + f64::EPSILON));
    }
    for i in (1..precision.len()).rev() {
        if precision[i] > precision[i - 1] {
            precision[i - 1] = precision[i];
        }
    }
    (recall, precision)
}

impl Metric for MeanAveragePrecision {
    fn name(&self) -> &str {
        self.name
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::WholeSet(self)
    }
}

impl SetMetric for MeanAveragePrecision {
    fn set_value(&self, samples: &[&SampleOutputs], _: &dyn RunnableModel) -> Result<SetValue> {
        self.value(samples).map(SetValue::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn truth(class: i64, bbox: [f32; 4]) -> GroundTruthBox {
        GroundTruthBox { class, bbox }
    }

    /// A sample whose output holds `rows` (x1, y1, x2, y2, score, class).
    fn sample(index: usize, rows: &[[f32; 6]], truth: Vec<GroundTruthBox>) -> SampleOutputs {
        let values: Vec<f32> = rows.iter().flatten().copied().collect();
        SampleOutputs {
            index,
            outputs: vec![Tensor::F32(
                ArrayD::from_shape_vec(IxDyn(&[1, rows.len(), ROW]), values).unwrap(),
            )],
            annotation: Annotation::Boxes(truth),
        }
    }

    fn map50(samples: &[SampleOutputs]) -> f64 {
        MeanAveragePrecision::map50().value(samples).unwrap()
    }

    /// Equal but for the epsilon COCOeval adds to the precision's denominator.
    fn assert_close(value: f64, expected: f64) {
        assert!((value - expected).abs() < 1e-12, "{value} != {expected}");
    }

    #[test]
    fn thresholds_are_numpy_linspace() {
        let t = linspace(0.5, 0.95, 10);
        assert_eq!(t[0], 0.5);
        assert_eq!(t[8], 0.8999999999999999);
        assert_eq!(t[9], 0.95);
        assert_eq!(linspace(0.0, 1.0, RECALL_POINTS)[3], 0.03);
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 0.0, 3.0, 2.0]), 2.0 / 6.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 2.0, 1.0]), 0.0);
    }

    #[test]
    fn perfect_and_missing_detections() {
        let gt = vec![truth(0, [0.0, 0.0, 10.0, 10.0])];
        let hit = sample(0, &[[0.0, 0.0, 10.0, 10.0, 0.9, 0.0]], gt.clone());
        assert_close(map50(&[hit]), 1.0);
        let nothing = sample(0, &[], gt.clone());
        assert_eq!(map50(&[nothing]), 0.0);
        let padding = sample(
            0,
            &[
                [0.0, 0.0, 10.0, 10.0, 0.0, 0.0],
                [0.0, 0.0, 10.0, 10.0, 0.9, -1.0],
            ],
            gt,
        );
        assert_eq!(map50(&[padding]), 0.0);
    }

    #[test]
    fn false_positive_ranked_first_halves_precision() {
        // Two objects in two images; the best-scored detection misses: precision 0, 1/2, 2/3 at recalls
        // 0, 1/2, 1, made monotone to 2/3 everywhere.
        let samples = [
            sample(
                0,
                &[
                    [50.0, 50.0, 60.0, 60.0, 0.9, 0.0],
                    [0.0, 0.0, 10.0, 10.0, 0.8, 0.0],
                ],
                vec![truth(0, [0.0, 0.0, 10.0, 10.0])],
            ),
            sample(
                1,
                &[[0.0, 0.0, 10.0, 9.0, 0.7, 0.0]],
                vec![truth(0, [0.0, 0.0, 10.0, 10.0])],
            ),
        ];
        assert_close(map50(&samples), 2.0 / 3.0);
        // At IoU ≥ 0.95 the 0.9-IoU box misses: recall reaches 1/2 only, 51 of 101 points at precision 1/2.
        let strict = MeanAveragePrecision {
            name: "t",
            thresholds: vec![0.95],
        };
        let expected = 51.0 * (1.0 / (2.0 + f64::EPSILON)) / 101.0;
        assert_close(strict.value(&samples).unwrap(), expected);
    }

    #[test]
    fn classes_without_ground_truth_are_left_out() {
        let samples = [sample(
            0,
            &[
                [0.0, 0.0, 10.0, 10.0, 0.9, 0.0],
                [0.0, 0.0, 10.0, 10.0, 0.9, 3.0],
            ],
            vec![truth(0, [0.0, 0.0, 10.0, 10.0])],
        )];
        assert_close(map50(&samples), 1.0);
    }

    #[test]
    fn order_of_samples_does_not_matter() {
        let samples: Vec<SampleOutputs> = (0..12)
            .map(|i| {
                let x = (i % 5) as f32;
                sample(
                    i,
                    &[
                        [x, 0.0, x + 4.0, 4.0, 0.5, (i % 3) as f32],
                        [0.0, x, 4.0, x + 4.0, 0.5, 0.0],
                    ],
                    vec![
                        truth(0, [1.0, 1.0, 5.0, 5.0]),
                        truth((i % 2) as i64, [2.0, 0.0, 6.0, 4.0]),
                    ],
                )
            })
            .collect();
        let mut shuffled = samples.clone();
        shuffled.reverse();
        shuffled.swap(2, 9);
        for metric in [
            MeanAveragePrecision::map50(),
            MeanAveragePrecision::map50_95(),
        ] {
            assert_eq!(
                metric.value(&samples).unwrap(),
                metric.value(&shuffled).unwrap()
            );
        }
    }

    #[test]
    fn bad_outputs_and_annotations_are_errors() {
        let gt = vec![truth(0, [0.0, 0.0, 1.0, 1.0])];
        let message = |s: SampleOutputs| {
            MeanAveragePrecision::map50()
                .value(&[s])
                .unwrap_err()
                .to_string()
        };
        let mut seven = sample(0, &[], gt.clone());
        seven.outputs = vec![Tensor::F32(ArrayD::zeros(IxDyn(&[1, 2, 7])))];
        assert!(message(seven).contains("batch-index column is not supported"));
        let nan = sample(3, &[[0.0, 0.0, f32::NAN, 1.0, 0.5, 0.0]], gt.clone());
        assert!(message(nan).contains("sample 3: detection row 0: NaN"));
        let half_class = sample(0, &[[0.0, 0.0, 1.0, 1.0, 0.5, 0.5]], gt.clone());
        assert!(message(half_class).contains("not a whole number"));
        let no_truth = sample(0, &[[0.0, 0.0, 1.0, 1.0, 0.5, 0.0]], Vec::new());
        assert!(message(no_truth).contains("mAP is undefined"));
        let mut labelled = sample(0, &[], gt);
        labelled.annotation = Annotation::Label(1);
        assert!(message(labelled).contains("no ground-truth boxes"));
    }
}
