//! A custom dataset and a custom metric, quantized with accuracy control through the Pipeline API.
//!
//! The dataset is a user type that reads the MNIST digits straight from their `.npy` files (any format works:
//! implement `len` and `get`). The metric is the probability the model gives the true class (softmax of the
//! logits), a finer signal than top-1: it says, like POT's `get_attributes`, that higher is better and that it
//! is an accuracy, and bounds each sample's value to [0, 1] so accuracy control can stop evaluations early.
//!
//!     cargo run --release --example custom_metric [OUT_DIR]

use std::path::{Path, PathBuf};

use aquant::data::{Annotation, Dataset, Sample};
use aquant::metric::{Direction, Metric, SampleMetric, Scoring};
use aquant::pipeline::{self, Algorithm, Engine};
use aquant::search::AccuracyControlParams;
use aquant::{Error, Result, Tensor};
use ndarray::ArrayD;

/// Handwritten digits kept in memory: images `[1, 1, 28, 28]` and their labels.
struct Digits {
    images: Vec<f32>,
    labels: Vec<i64>,
}

impl Digits {
    /// Reads `<stem>_x.npy` (float32, N×1×28×28) and `<stem>_y.npy` (int64, N) from `dir`.
    fn load(dir: &Path, stem: &str) -> Result<Digits> {
        let images = npy_payload(&dir.join(format!("{stem}_x.npy")))?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let labels = npy_payload(&dir.join(format!("{stem}_y.npy")))?
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect();
        Ok(Digits { images, labels })
    }
}

/// The data after a version-1 `.npy` header (enough for this example's files).
fn npy_payload(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(Error::data(format!(
            "{} is not a .npy file",
            path.display()
        )));
    }
    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    Ok(bytes[10 + header..].to_vec())
}

impl Dataset for Digits {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        let pixels = self.images[index * 784..(index + 1) * 784].to_vec();
        let image = ArrayD::from_shape_vec(vec![1, 1, 28, 28], pixels)
            .map_err(|e| Error::data(e.to_string()))?;
        Ok(Sample {
            inputs: vec![(aquant::data::SOLE_INPUT.into(), Tensor::F32(image))],
            annotation: Annotation::Label(self.labels[index]),
            metadata: Default::default(),
        })
    }
}

/// The softmax probability of the true class.
struct TrueClassProbability;

impl Metric for TrueClassProbability {
    fn name(&self) -> &str {
        "true_class_probability"
    }

    fn direction(&self) -> Direction {
        Direction::HigherBetter
    }

    fn kind(&self) -> &str {
        "accuracy"
    }

    fn scoring(&self) -> Scoring<'_> {
        Scoring::PerSample(self)
    }
}

impl SampleMetric for TrueClassProbability {
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
            return Err(Error::data("true_class_probability needs labels"));
        };
        let logits = outputs[0].as_f32("logits")?;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let total: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
        let true_logit = *logits
            .iter()
            .nth(*label as usize)
            .ok_or_else(|| Error::data(format!("label {label} out of range")))?;
        Ok((true_logit as f64 - max).exp() / total)
    }
}

/// What the example did.
pub struct Summary {
    /// The metric of the FP32 model, of the INT8 model, and the final one.
    pub fp32: f64,
    pub int8: f64,
    pub r#final: f64,
    /// Ops left in FP32.
    pub reverted: usize,
    /// The saved model.
    pub saved: PathBuf,
}

/// Runs the example, saving into `out`.
pub fn run(out: &Path) -> Result<Summary> {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist_cnn");
    let calibration = Digits::load(&assets, "calib")?;
    let validation = Digits::load(&assets, "val")?;
    let backend = aquant_tract::TractBackend::new();
    let metric = TrueClassProbability;

    let model = pipeline::load_model(&assets.join("mnist_cnn.onnx"))?;
    let engine = Engine::new(&backend, &validation, vec![&metric]).with_calibration(&calibration);
    let algorithm = Algorithm::AccuracyAware {
        quantization: Default::default(),
        control: AccuracyControlParams {
            maximal_drop: 0.0001.into(),
            ..Default::default()
        },
    };
    let pipeline = pipeline::create_pipeline(vec![algorithm], engine)?;
    let mut compressed = pipeline.run(model)?;
    pipeline::compress_model_weights(&mut compressed);
    let saved = pipeline::save_model(&compressed, out, "mnist_int8")?;
    let report = compressed
        .report
        .as_ref()
        .expect("accuracy control reports");
    let metric = &report.metrics[0];
    let evaluated = pipeline.evaluate(&compressed.to_onnx()?)?.value();
    Ok(Summary {
        fp32: metric.baseline,
        int8: metric.quantized,
        r#final: evaluated,
        reverted: report.reverted_ops,
        saved,
    })
}

#[allow(dead_code)] // also compiled into a test, which calls `run` itself
fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "out/custom_metric".into());
    let summary = run(Path::new(&out))?;
    println!(
        "true-class probability: FP32 {:.4}, INT8 {:.4}, final {:.4} with {} op(s) in FP32 → {}",
        summary.fp32,
        summary.int8,
        summary.r#final,
        summary.reverted,
        summary.saved.display()
    );
    Ok(())
}
