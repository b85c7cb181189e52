//! The dataset-level built-in metrics against the implementations users compare with (issue 18): scikit-learn's
//! `f1_score(average="macro")` and `roc_auc_score`, and pycocotools' COCOeval bbox AP@0.5 and AP@[.5:.95].
//!
//! The test writes a seeded random fixture (scores with ties, a class never predicted, a class never labelled,
//! an image without ground truth, detections matching nothing, crowded overlapping boxes, more than 100
//! detections in one image, a ground-truth class never detected, a detected class without ground truth,
//! padding rows) into a temporary directory, runs `scripts/metric_reference.py` on it with `python3`, and
//! compares within 1e-9: aquant follows the references' float arithmetic (COCOeval's thresholds and precision
//! epsilon), and a looser bound would miss real differences (dropping COCOeval's 100-detection limit moves
//! this fixture's mAP@0.5 by only 1.4e-4). It fails, rather than skips, when scikit-learn or pycocotools is missing: CI installs
//! `scripts/requirements.txt`.

use std::path::Path;
use std::process::Command;

use aquant::data::{npy_bytes, GroundTruthBox};
use aquant::metric::{Auroc, F1Macro, MeanAveragePrecision, SampleOutputs};
use aquant::{Annotation, Tensor};
use ndarray::{ArrayD, IxDyn};

/// How far aquant's value may be from the reference's.
const TOLERANCE: f64 = 1e-9;

/// SplitMix64: a seeded generator, so the fixture is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A float in [0, 1) with 24 bits: exact in f32 and in the f64 Python reads.
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u32 << 24) as f32
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn f32_npy(dir: &Path, name: &str, shape: &[usize], values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join(name), npy_bytes("<f4", shape, &bytes)).unwrap();
}

fn i64_npy(dir: &Path, name: &str, values: &[i64]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(dir.join(name), npy_bytes("<i8", &[values.len()], &bytes)).unwrap();
}

/// A sample whose first output is `values` of shape `shape` (leading 1).
fn sample(
    index: usize,
    shape: &[usize],
    values: Vec<f32>,
    annotation: Annotation,
) -> SampleOutputs {
    SampleOutputs {
        index,
        outputs: vec![Tensor::F32(
            ArrayD::from_shape_vec(IxDyn(shape), values).unwrap(),
        )],
        annotation,
    }
}

/// Five-class scores for 64 samples: class 3 is labelled but never predicted, class 4 predicted but never
/// labelled.
fn classification(dir: &Path, rng: &mut Rng) -> Vec<SampleOutputs> {
    const N: usize = 64;
    const C: usize = 5;
    let labels: Vec<i64> = (0..N).map(|_| rng.below(4) as i64).collect();
    let mut scores = Vec::with_capacity(N * C);
    for &label in &labels {
        let mut row: Vec<f32> = (0..C).map(|_| rng.unit() * 2.0 - 1.0).collect();
        if rng.chance(50) {
            row[label as usize] += 1.0;
        }
        row[3] = -5.0;
        scores.extend(row);
    }
    f32_npy(dir, "class_scores.npy", &[N, C], &scores);
    i64_npy(dir, "class_labels.npy", &labels);
    scores
        .chunks(C)
        .zip(&labels)
        .enumerate()
        .map(|(i, (row, &label))| sample(i, &[1, C], row.to_vec(), Annotation::Label(label)))
        .collect()
}

/// Binary labels for 80 samples with one score each (on a coarse grid: many ties) and two logits each.
fn binary(dir: &Path, rng: &mut Rng) -> (Vec<SampleOutputs>, Vec<SampleOutputs>) {
    const N: usize = 80;
    let labels: Vec<i64> = (0..N).map(|_| rng.below(2) as i64).collect();
    let scores: Vec<f32> = labels
        .iter()
        .map(|&l| (rng.below(8) + 3 * l as u64) as f32 / 16.0)
        .collect();
    let logits: Vec<f32> = labels
        .iter()
        .flat_map(|&l| [rng.unit() * 4.0 - 2.0, rng.unit() * 4.0 - 2.0 + l as f32])
        .collect();
    f32_npy(dir, "binary_scores.npy", &[N], &scores);
    f32_npy(dir, "binary_logits.npy", &[N, 2], &logits);
    i64_npy(dir, "binary_labels.npy", &labels);
    let one = (0..N)
        .map(|i| sample(i, &[1], vec![scores[i]], Annotation::Label(labels[i])))
        .collect();
    let two = (0..N)
        .map(|i| {
            let row = logits[2 * i..2 * i + 2].to_vec();
            sample(i, &[1, 2], row, Annotation::Label(labels[i]))
        })
        .collect();
    (one, two)
}

/// A box on the integer grid.
fn grid_box(rng: &mut Rng) -> [f32; 4] {
    let (x, y) = (rng.below(40) as f32, rng.below(40) as f32);
    [
        x,
        y,
        x + 4.0 + rng.below(20) as f32,
        y + 4.0 + rng.below(20) as f32,
    ]
}

/// `bbox` moved by up to two units per side, in half units.
fn jitter(bbox: [f32; 4], rng: &mut Rng) -> [f32; 4] {
    let mut moved = bbox.map(|v| v + (rng.below(9) as f32 - 4.0) * 0.5);
    moved[2] = moved[2].max(moved[0] + 1.0);
    moved[3] = moved[3].max(moved[1] + 1.0);
    moved
}

/// A score on a grid of sixteenths: equal scores across images and within one.
fn grid_score(rng: &mut Rng) -> f32 {
    (1 + rng.below(16)) as f32 / 16.0
}

fn row(bbox: [f32; 4], score: f32, class: i64) -> [f32; 6] {
    [bbox[0], bbox[1], bbox[2], bbox[3], score, class as f32]
}

/// One image's ground truth and detections.
fn image(i: usize, rng: &mut Rng) -> (Vec<GroundTruthBox>, Vec<[f32; 6]>) {
    let mut truth: Vec<GroundTruthBox> = match i {
        // No ground truth: every detection is a false positive.
        4 => Vec::new(),
        // Crowded: overlapping objects of one class.
        2 => [
            [10.0, 10.0, 30.0, 30.0],
            [12.0, 10.0, 32.0, 30.0],
            [10.0, 13.0, 30.0, 33.0],
        ]
        .into_iter()
        .map(|bbox| GroundTruthBox { class: 1, bbox })
        .collect(),
        _ => (0..1 + rng.below(4))
            .map(|_| GroundTruthBox {
                class: rng.below(3) as i64,
                bbox: grid_box(rng),
            })
            .collect(),
    };
    if i == 9 {
        // A class with ground truth that is never detected.
        truth.push(GroundTruthBox {
            class: 5,
            bbox: grid_box(rng),
        });
    }
    let mut rows = Vec::new();
    for t in truth.iter().filter(|t| t.class != 5) {
        for _ in 0..[0, 1, 1, 1, 2][rng.below(5) as usize] {
            let class = if rng.chance(10) { 4 - t.class } else { t.class };
            rows.push(row(jitter(t.bbox, rng), grid_score(rng), class));
        }
    }
    let extra = if i == 7 { 105 } else { rng.below(3) };
    for _ in 0..extra {
        let class = if i == 7 { 0 } else { rng.below(4) as i64 };
        rows.push(row(grid_box(rng), grid_score(rng), class));
    }
    (truth, rows)
}

/// 14 images of detections `[1, N, 6]` (padded) with their ground truth: writes `detections.npy` and
/// `boxes.jsonl`, and reads them back through an npy data spec with `"boxes"`, the detections standing for the
/// model's output.
fn detection(dir: &Path, rng: &mut Rng) -> Vec<SampleOutputs> {
    const IMAGES: usize = 14;
    let images: Vec<_> = (0..IMAGES).map(|i| image(i, rng)).collect();
    let width = images.iter().map(|(_, rows)| rows.len()).max().unwrap() + 2;
    let padding = [0.0, 0.0, 0.0, 0.0, 0.0, -1.0];
    let mut lines = String::new();
    let mut all = Vec::new();
    for (truth, rows) in images {
        let objects: Vec<String> = truth
            .iter()
            .map(|t| format!(r#"{{"class": {}, "box": {:?}}}"#, t.class, t.bbox))
            .collect();
        lines += &format!("[{}]\n", objects.join(", "));
        let mut values: Vec<f32> = rows.iter().flatten().copied().collect();
        values.extend((rows.len()..width).flat_map(|_| padding));
        all.extend(values);
    }
    f32_npy(dir, "detections.npy", &[IMAGES, width, 6], &all);
    std::fs::write(dir.join("boxes.jsonl"), lines).unwrap();
    let spec = r#"{"format": "npy", "inputs": {"x": "detections.npy"}, "boxes": "boxes.jsonl"}"#;
    std::fs::write(dir.join("spec.json"), spec).unwrap();
    let dataset = aquant::open_dataset(&dir.join("spec.json")).unwrap();
    (0..dataset.len())
        .map(|index| {
            let mut sample = dataset.get(index).unwrap();
            SampleOutputs {
                index,
                outputs: vec![sample.inputs.remove(0).1],
                annotation: sample.annotation,
            }
        })
        .collect()
}

/// `scripts/metric_reference.py` on the fixture in `dir`.
fn reference(dir: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/metric_reference.py");
    let install =
        "install the reference implementations: python3 -m pip install -r scripts/requirements.txt";
    let output = Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); {install}"));
    assert!(
        output.status.success(),
        "scripts/metric_reference.py failed: {}\n{install}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("metric_reference.py prints one JSON object")
}

/// Our value equals the reference's `key` within [`TOLERANCE`], and does not depend on the order of `samples`.
fn check(
    key: &str,
    reference: &serde_json::Value,
    value: impl Fn(&[SampleOutputs]) -> aquant::Result<f64>,
    samples: &mut [SampleOutputs],
) {
    let expected = reference[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {reference}"));
    let ours = value(samples).unwrap();
    eprintln!(
        "{key}: reference {expected:.17}, aquant {ours:.17}, difference {:.1e}",
        ours - expected
    );
    assert!(
        (ours - expected).abs() <= TOLERANCE,
        "{key}: aquant {ours} vs reference {expected}"
    );
    samples.reverse();
    assert_eq!(
        value(samples).unwrap(),
        ours,
        "{key} depends on sample order"
    );
}

#[test]
fn dataset_metrics_equal_the_reference_implementations() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(18);
    let mut classes = classification(dir.path(), &mut rng);
    let (mut scores, mut logits) = binary(dir.path(), &mut rng);
    let mut boxes = detection(dir.path(), &mut rng);
    let reference = reference(dir.path());

    check("f1_macro", &reference, |s| F1Macro.value(s), &mut classes);
    check("auroc", &reference, |s| Auroc.value(s), &mut scores);
    check(
        "auroc_two_scores",
        &reference,
        |s| Auroc.value(s),
        &mut logits,
    );
    let map50 = MeanAveragePrecision::map50();
    check("map50", &reference, |s| map50.value(s), &mut boxes);
    let map50_95 = MeanAveragePrecision::map50_95();
    check("map50_95", &reference, |s| map50_95.value(s), &mut boxes);
}
