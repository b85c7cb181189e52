//! Metrics that compare with the FP32 model read its outputs from a cache bounded in bytes: within a small
//! budget an evaluation scores every sample exactly as with room for all, holds no more than the budget (and
//! the chunk being scored), and pays for it by computing the dropped FP32 outputs again.

mod common;

use aquant::metric::builtin;
use aquant::{Evaluator, Graph, NoProgress};
use aquant_tract::TractBackend;
use common::assets;

#[test]
fn a_small_reference_budget_changes_no_score_and_bounds_the_fp32_outputs_held() {
    let fp32 = Graph::load(&assets().join("mnist_cnn/mnist_cnn.onnx"))
        .unwrap()
        .into_model();
    let int8 = Graph::load(&assets().join("saturation/mnist_cnn_int8_full_range.onnx"))
        .unwrap()
        .into_model();
    let dataset = aquant::open_dataset(&assets().join("mnist_cnn/val.json")).unwrap();
    let metrics = [builtin("mse").unwrap(), builtin("agreement").unwrap()];
    let tract = TractBackend::new();
    let evaluator = || {
        Evaluator::new(
            &tract,
            dataset.as_ref(),
            metrics.iter().map(|m| m.as_ref()).collect(),
            Some(&fp32),
            1,
            &NoProgress,
        )
        .unwrap()
    };
    let indices: Vec<usize> = (0..300).collect();

    let unbounded = evaluator();
    let expected = unbounded.evaluate(&int8, &indices, "unbounded").unwrap();
    let all_bytes = unbounded.reference_bytes();
    assert_eq!(
        all_bytes,
        300 * 10 * 4,
        "ten f32 logits per sample, all kept"
    );
    let before = unbounded.samples_inferred();
    unbounded.evaluate(&int8, &indices, "again").unwrap();
    assert_eq!(
        unbounded.samples_inferred() - before,
        300,
        "FP32 outputs reused"
    );

    let bounded = evaluator().with_reference_budget(all_bytes / 10);
    let first = bounded.evaluate(&int8, &indices, "bounded").unwrap();
    assert_eq!(first.metrics, expected.metrics, "same per-sample values");
    assert!(
        expected.metrics[0].per_sample.iter().all(|&v| v > 0.0),
        "the INT8 logits differ from the FP32 ones: the metric really compares"
    );
    assert!(
        bounded.reference_bytes() < all_bytes / 3,
        "held {} bytes of {all_bytes}",
        bounded.reference_bytes()
    );
    let before = bounded.samples_inferred();
    let second = bounded.evaluate(&int8, &indices, "bounded again").unwrap();
    assert_eq!(second.metrics, expected.metrics);
    assert!(
        bounded.samples_inferred() - before > 300 + 200,
        "dropped FP32 outputs are computed again"
    );
}
