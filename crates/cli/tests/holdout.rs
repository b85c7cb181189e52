//! The held-out confirmation (issue #30): `--holdout-fraction` keeps part of the validation set from the
//! search, which never reads a held-out sample; afterwards FP32 and the saved model are judged there, on the
//! deployed engine, and the report, the summary and the exit status say whether the drop holds.

mod common;

use std::sync::Mutex;

use aquant::data::Sample;
use aquant::job;
use aquant::search::{AccuracyControlParams, RunOptions};
use aquant::{metric, Dataset};
use aquant_tract::TractBackend;
use common::{assets, quantize_mnist, read_report};

/// A dataset that logs every sample read, by index, in order.
struct Logged {
    inner: Box<dyn Dataset>,
    reads: Mutex<Vec<usize>>,
}

impl Dataset for Logged {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn get(&self, index: usize) -> aquant::Result<Sample> {
        self.reads.lock().unwrap().push(index);
        self.inner.get(index)
    }
}

#[test]
fn the_search_never_reads_a_held_out_sample() {
    let validation = Logged {
        inner: aquant::open_dataset(&assets().join("mnist_cnn/val.json")).unwrap(),
        reads: Mutex::new(Vec::new()),
    };
    let calibration = aquant::open_dataset(&assets().join("mnist_cnn/calib.json")).unwrap();
    let model = aquant_onnx::load_model(&assets().join("mnist_cnn/mnist_cnn.onnx")).unwrap();
    // NMSE against FP32 is 0 only in FP32: the search reverts until nothing is left.
    let nmse = metric::builtin("nmse").unwrap();
    let control = AccuracyControlParams {
        maximal_drop: 0.0.into(),
        holdout_fraction: 0.3,
        ..Default::default()
    };
    let outcome = job::quantize_with_accuracy_control(
        &TractBackend::new(),
        model,
        calibration.as_ref(),
        &validation,
        &[nmse.as_ref()],
        &Default::default(),
        &control,
        &RunOptions::default(),
    )
    .unwrap();
    let report = outcome.report;
    assert!(!report.steps.is_empty(), "the search must do some work");
    let confirmation = report.confirmation.expect("a confirmation");
    assert_eq!(confirmation.samples, 300);
    let held: std::collections::BTreeSet<usize> = confirmation.indices.iter().copied().collect();
    let reads = validation.reads.into_inner().unwrap();
    // Every read of a held-out sample comes after the search's last read: FP32 and the saved model judged
    // there, and FP32's outputs again for the NMSE to compare with.
    let first_held = reads.iter().position(|i| held.contains(i)).unwrap();
    assert!(reads[first_held..].iter().all(|i| held.contains(i)));
    assert!(reads[..first_held].iter().all(|i| !held.contains(i)));
    for i in &held {
        let times = reads[first_held..].iter().filter(|r| *r == i).count();
        assert!((2..=3).contains(&times), "sample {i} read {times} times");
    }
    // The search's drops are on the other 700 samples (NMSE is compared with the FP32 outputs of the same
    // samples: read once more per sample for them, all before the held-out ones).
    assert_eq!(report.metrics[0].drop_ci.unwrap().samples, 700);
}

#[test]
fn the_report_summary_and_exit_status_carry_the_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |fraction: &str, out: &std::path::Path| {
        quantize_mnist(out, &["--max-drop", "0.01", "--holdout-fraction", fraction])
    };
    let result = run("0.3", &out);
    let report = read_report(&out);
    let confirmation = &report["confirmation"];
    assert_eq!(confirmation["samples"], 300, "{confirmation}");
    assert!(confirmation["engine"].as_str().unwrap().starts_with("ort "));
    let met = confirmation["met"].as_bool().unwrap();
    let expected_exit = if met && report["target_met"] == true {
        0
    } else {
        1
    };
    assert_eq!(result.status.code(), Some(expected_exit), "{report}");
    let m = &confirmation["metrics"][0];
    let drop = m["drop"].as_f64().unwrap();
    assert_eq!(met, drop <= m["allowed_drop"].as_f64().unwrap() + 1e-12);
    let ci = &m["drop_ci"];
    assert!(ci["low"].as_f64().unwrap() <= drop && drop <= ci["high"].as_f64().unwrap());
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("held out 300 samples, judged on ort "),
        "{stdout}"
    );
    // The seeded split: the same held-out samples again, others with another seed.
    let again = dir.path().join("again");
    run("0.3", &again);
    assert_eq!(
        read_report(&again)["confirmation"]["indices"],
        confirmation["indices"]
    );
    // Without it, no confirmation; a fraction outside [0, 1) is refused.
    let none = dir.path().join("none");
    run("0", &none);
    assert!(read_report(&none)["confirmation"].is_null());
    let refused = run("1", &dir.path().join("refused"));
    common::assert_clean_error(&refused, "holdout_fraction must be in [0, 1)");
}
