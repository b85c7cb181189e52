//! ONNX external data in and out (issue #27): a model whose weights are in `model.onnx.data` is quantized without
//! touching its files, and the saved model keeps its weights outside (`--external-data auto`), in ONNX's layout,
//! which ONNX Runtime and OpenVINO load and measure as the report says.

mod common;
mod ov_common;

use std::path::{Path, PathBuf};

use common::{aquant, assert_clean_error, assert_finished, assets, ort_eval, read_report};
use ov_common::ov_eval;

/// The MNIST CNN saved with external data as `dir/name`; returns its path.
fn mnist_with_external_data(dir: &Path, name: &str) -> PathBuf {
    let model = aquant_onnx::load_model(&assets().join("mnist_cnn/mnist_cnn.onnx")).unwrap();
    let path = dir.join(name);
    aquant_onnx::save_model_external(&model, &path).unwrap();
    path
}

/// `aquant quantize` DefaultQuantization of `model` on the MNIST sets into `out`, with `extra` flags.
fn quantize(model: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let val = assets().join("mnist_cnn/val.json");
    let calib = assets().join("mnist_cnn/calib.json");
    let args = [
        "quantize",
        "--model",
        model.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "--val",
        val.to_str().unwrap(),
        "--algorithm",
        "default",
        "--no-sensitivity",
        "--latency-runs",
        "0",
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ];
    aquant(&[&args[..], extra].concat())
}

/// The external data entries of the saved model's initializers that have them.
fn external_tensors(model: &Path) -> usize {
    let bytes = std::fs::read(model).unwrap();
    let model = aquant_onnx::decode_model(&bytes, model).unwrap();
    let graph = model.graph.unwrap();
    graph
        .initializer
        .iter()
        .filter(|t| !t.external_data.is_empty())
        .count()
}

#[test]
fn external_data_in_gives_external_data_out_that_ort_and_openvino_load_and_measure_as_reported() {
    let dir = tempfile::tempdir().unwrap();
    let input = mnist_with_external_data(dir.path(), "fp32.onnx");
    let input_data = aquant_onnx::external_data_path(&input);
    let before = (
        std::fs::read(&input).unwrap(),
        std::fs::read(&input_data).unwrap(),
    );
    let out = dir.path().join("out");
    assert_finished(&quantize(&input, &out, &[]), "the external-data run");
    assert_eq!(
        (
            std::fs::read(&input).unwrap(),
            std::fs::read(&input_data).unwrap()
        ),
        before,
        "the input model's files changed"
    );

    let saved = out.join("model.onnx");
    assert!(out.join("model.onnx.data").is_file());
    assert!(external_tensors(&saved) > 0, "no tensor saved externally");
    let report = read_report(&out);
    let reported = report["deployed"]["metrics"][0]["value"].as_f64().unwrap();
    let data = assets().join("mnist_cnn/val.json");
    let ort = ort_eval(&saved, &data)["value"].as_f64().unwrap();
    assert_eq!(ort, reported, "ONNX Runtime's measure of the saved model");
    let openvino = ov_eval(&saved, &data)["value"].as_f64().unwrap();
    assert!(
        (openvino - reported).abs() <= 0.01,
        "OpenVINO {openvino} vs reported {reported}"
    );
}

#[test]
fn external_data_flag_chooses_the_layout_and_an_inline_save_removes_a_stale_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let inline = assets().join("mnist_cnn/mnist_cnn.onnx");
    let out = dir.path().join("out");
    assert_finished(
        &quantize(&inline, &out, &["--external-data", "always"]),
        "the external-data run",
    );
    let external = std::fs::read(out.join("model.onnx.data")).unwrap();
    assert!(external_tensors(&out.join("model.onnx")) > 0);
    let with_data = aquant_onnx::load_model(&out.join("model.onnx")).unwrap();

    // The same run saved inline: the same model, and the data file of the run before is gone.
    assert_finished(
        &quantize(&inline, &out, &["--external-data", "never"]),
        "the external-data run",
    );
    assert!(!out.join("model.onnx.data").exists());
    assert_eq!(external_tensors(&out.join("model.onnx")), 0);
    let inline_model = aquant_onnx::load_model(&out.join("model.onnx")).unwrap();
    assert!(aquant_onnx::encode_model(&inline_model) == aquant_onnx::encode_model(&with_data));
    assert!(!external.is_empty());

    // An external input with `never` is saved inline too.
    let input = mnist_with_external_data(dir.path(), "fp32.onnx");
    assert_finished(
        &quantize(&input, &out, &["--external-data", "never"]),
        "the external-data run",
    );
    assert!(!out.join("model.onnx.data").exists());
}

#[test]
fn external_data_with_an_ir_output_and_outputs_over_the_input_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inline = assets().join("mnist_cnn/mnist_cnn.onnx");
    let out = dir.path().join("out");
    let ir = ["--output-format", "ir", "--external-data", "always"];
    assert_clean_error(
        &quantize(&inline, &out, &ir),
        "external data applies to an ONNX output only",
    );
    assert!(!out.exists());

    // fp32.onnx reads model.onnx.data: saving into its directory would replace the input's weights.
    let input = mnist_with_external_data(dir.path(), "model.onnx");
    let renamed = dir.path().join("fp32.onnx");
    std::fs::rename(&input, &renamed).unwrap();
    assert_clean_error(&quantize(&renamed, dir.path(), &[]), "model.onnx.data");
}
