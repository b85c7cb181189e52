//! Accuracy-aware quantization from Rust with a user's own dataset and metric, in POT's pipeline steps.
//!
//! `Digits` is a dataset type of the user's (here: the first N MNIST digits of the bundled assets, read
//! through a data spec); `ErrorRate` is a metric of the user's, lower-is-better, declared the way POT's
//! `get_attributes` does (`direction` and `type`). Run it with
//! `cargo run --release -p aquant-cli --example custom_metric`.

use std::path::{Path, PathBuf};

use aquant::metric::argmax;
use aquant::pipeline::{self, Algorithm, Engine};
use aquant::quantize::QuantizationParams;
use aquant::search::{AccuracyControlParams, MetricTarget};
use aquant::{Annotation, Dataset, Direction, Metric, Sample, Tensor};

/// The first `count` digits of a data spec.
struct Digits {
    all: Box<dyn Dataset>,
    count: usize,
}

impl Digits {
    fn open(spec: &Path, count: usize) -> aquant::Result<Digits> {
        let all = aquant::open_dataset(spec)?;
        let count = count.min(all.len());
        Ok(Digits { all, count })
    }
}

impl Dataset for Digits {
    fn len(&self) -> usize {
        self.count
    }

    fn get(&self, index: usize) -> aquant::Result<Sample> {
        self.all.get(index)
    }
}

/// The fraction of misclassified digits: POT's `{"direction": "higher-worse", "type": "error"}`.
struct ErrorRate;

impl Metric for ErrorRate {
    fn name(&self) -> &str {
        "error_rate"
    }

    fn direction(&self) -> Direction {
        Direction::HigherWorse
    }

    fn kind(&self) -> &str {
        "error"
    }

    /// Each sample is 0 or 1, which lets the ranking stop evaluating hopeless candidates early.
    fn sample_bounds(&self) -> Option<(f64, f64)> {
        Some((0.0, 1.0))
    }

    fn sample_value(
        &self,
        outputs: &[Tensor],
        annotation: &Annotation,
        _reference: Option<&[Tensor]>,
    ) -> aquant::Result<f64> {
        let Annotation::Label(label) = annotation else {
            return Err(aquant::Error::data("error_rate needs labelled samples"));
        };
        let logits = outputs[0].as_f32("logits")?;
        let predicted = argmax(logits.as_slice().expect("contiguous logits"));
        Ok(f64::from(u8::from(predicted as i64 != *label)))
    }
}

/// What the example measured.
pub struct Measured {
    /// FP32 error rate.
    pub fp32: f64,
    /// Error rate of the saved INT8 model.
    pub int8: f64,
    /// Ops the search returned to FP32.
    pub reverted: usize,
    /// The saved model.
    pub saved: PathBuf,
}

/// Quantizes the bundled MNIST CNN with `ErrorRate` allowed to grow by `maximal_drop`, saving to `out`.
pub fn run(out: &Path, maximal_drop: f64) -> aquant::Result<Measured> {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/mnist_cnn");
    let calibration = Digits::open(&assets.join("calib.json"), 300)?;
    let validation = Digits::open(&assets.join("val.json"), 500)?;
    let backend = aquant_tract::TractBackend::new();
    let metric = ErrorRate;

    let model = pipeline::load_model(&assets.join("mnist_cnn.onnx"))?;
    let engine = Engine::new(&backend, &validation, vec![&metric]).with_calibration(&calibration);
    let control = AccuracyControlParams {
        maximal_drop,
        metrics: vec![MetricTarget {
            name: "error_rate".into(),
            baseline_value: None,
        }],
        ..Default::default()
    };
    let algorithm = Algorithm::AccuracyAware(QuantizationParams::default(), control);
    let pipeline = pipeline::create_pipeline(vec![algorithm], engine)?;
    let mut quantized = pipeline.run(&model)?;
    pipeline::compress_model_weights(&mut quantized)?;
    let saved = pipeline::save_model(&quantized, out, "mnist_cnn_int8")?;
    let fp32 = pipeline.evaluate(&model)?[0].value;
    let int8 = pipeline.evaluate(&quantized)?[0].value;
    let reverted = quantized.report().map_or(0, |r| r.reverted_ops);
    Ok(Measured {
        fp32,
        int8,
        reverted,
        saved,
    })
}

#[allow(dead_code)]
fn main() -> aquant::Result<()> {
    let measured = run(Path::new("results/custom_metric"), 0.002)?;
    println!(
        "error_rate: FP32 {:.4}, INT8 {:.4} ({} ops reverted) → {}",
        measured.fp32,
        measured.int8,
        measured.reverted,
        measured.saved.display()
    );
    Ok(())
}
