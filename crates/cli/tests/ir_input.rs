//! OpenVINO IR in: IRs made from the bundled ONNX models by OpenVINO itself (at test time, scripts/make_ir.py)
//! are read by aquant into its graph, compute what OpenVINO computes from them, and quantize from the command
//! line and from a POT-layout config with `model` + `weights`; a damaged IR is one clear error, exit 2.

mod common;
mod ov_common;

use std::path::Path;

use aquant::data::open_dataset;
use aquant::graph::Graph;
use aquant::{Backend, Tensor};
use common::{aquant, assets, json_stdout};
use ov_common::{make_ir, python_json};

/// OpenVINO's outputs for the first `n` samples of `data` from the IR at `xml`, flattened.
fn openvino_logits(xml: &Path, data: &Path, n: usize, dir: &Path) -> Vec<f32> {
    let logits = dir.join("ov_logits.npy");
    let limit = n.to_string();
    python_json(
        "ov_eval.py",
        &[
            "--model".as_ref(),
            xml.as_ref(),
            "--data".as_ref(),
            data.as_ref(),
            "--limit".as_ref(),
            limit.as_ref(),
            "--logits".as_ref(),
            logits.as_ref(),
        ],
    );
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, json, numpy; print(json.dumps(numpy.load(sys.argv[1]).ravel().tolist()))",
        ])
        .arg(&logits)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// tract's outputs for the same samples from the model aquant read from the IR.
fn aquant_logits(xml: &Path, data: &Path, n: usize) -> Vec<f32> {
    let model = Graph::load(xml).unwrap().into_model();
    let order: Vec<String> = aquant::graph::runtime_inputs(model.graph.as_ref().unwrap())
        .into_iter()
        .map(|p| p.name)
        .collect();
    let session = aquant_tract::TractBackend::new()
        .prepare(&model, &[])
        .unwrap();
    let dataset = open_dataset(data).unwrap();
    let mut logits = Vec::new();
    for i in 0..n {
        let mut sample = dataset.get(i).unwrap();
        // The session takes the model's inputs in graph order, the sample holds them by name.
        let inputs = order
            .iter()
            .map(|name| {
                let at = sample.inputs.iter().position(|(n, _)| n == name).unwrap();
                sample.inputs.remove(at).1
            })
            .collect();
        match session.run(inputs).unwrap().remove(0) {
            Tensor::F32(a) => logits.extend(a.iter().copied()),
            other => panic!("unexpected output {other:?}"),
        }
    }
    logits
}

fn assert_close(ours: &[f32], theirs: &[f32], tolerance: f32) {
    assert_eq!(ours.len(), theirs.len());
    let worst = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance,
        "largest difference {worst} > {tolerance}"
    );
}

#[test]
fn mobilenet_v2_ir_computes_what_openvino_computes() {
    let dir = tempfile::tempdir().unwrap();
    let data = assets().join("imagenet/val.json");
    for fp16 in [false, true] {
        let xml = make_ir("imagenet/mobilenet_v2.onnx", dir.path(), fp16);
        let theirs = openvino_logits(&xml, &data, 8, dir.path());
        let ours = aquant_logits(&xml, &data, 8);
        assert_close(&ours, &theirs, 1e-4);
    }
}

#[test]
fn a_transformer_encoder_ir_computes_what_openvino_computes() {
    let dir = tempfile::tempdir().unwrap();
    let made = python_json("make_encoder.py", &[dir.path().as_os_str()]);
    let onnx = Path::new(made["model"].as_str().unwrap());
    let data = Path::new(made["data"].as_str().unwrap());
    let xml = dir.path().join("encoder_ir.xml");
    python_json("make_ir.py", &[onnx.as_os_str(), xml.as_os_str()]);
    // OpenVINO fuses the attention (ScaledDotProductAttention) and the LayerNorms (MVN): aquant unfuses them.
    let ir = std::fs::read_to_string(&xml).unwrap();
    assert!(ir.contains("ScaledDotProductAttention") && ir.contains("\"MVN\""));
    let theirs = openvino_logits(&xml, data, 16, dir.path());
    let ours = aquant_logits(&xml, data, 16);
    assert_close(&ours, &theirs, 1e-4);
}

#[test]
fn ir_models_evaluate_as_their_onnx_sources() {
    let dir = tempfile::tempdir().unwrap();
    for (model, data, top1) in [
        ("mnist_cnn/mnist_cnn.onnx", "mnist_cnn/val.json", 0.983),
        (
            "imagenet/efficientnet_lite0.onnx",
            "imagenet/val.json",
            0.73,
        ),
    ] {
        let xml = make_ir(model, dir.path(), false);
        let result = json_stdout(&aquant(&[
            "eval",
            "--backend",
            "ort",
            "--model",
            xml.to_str().unwrap(),
            "--data",
            assets().join(data).to_str().unwrap(),
            "--json",
            "--quiet",
        ]));
        assert!(
            (result["value"].as_f64().unwrap() - top1).abs() < 1e-9,
            "{model}: {result}"
        );
    }
}

#[test]
fn quantize_reads_an_ir_from_flags_and_from_a_pot_config_with_weights() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("mnist_cnn/mnist_cnn.onnx", dir.path(), false);
    let calib = assets().join("mnist_cnn/calib.json");
    let val = assets().join("mnist_cnn/val.json");
    let out = dir.path().join("flags");
    let run = aquant(&[
        "quantize",
        "--model",
        xml.to_str().unwrap(),
        "--calib",
        calib.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("model.xml").is_file() && out.join("model.bin").is_file());

    // POT's layout: the weights somewhere else, named by the config.
    let weights = dir.path().join("weights");
    std::fs::create_dir(&weights).unwrap();
    std::fs::rename(xml.with_extension("bin"), weights.join("mnist.bin")).unwrap();
    let config = dir.path().join("pot.json");
    let text = serde_json::json!({
        "model": {"model_name": "mnist", "model": xml, "weights": "weights/mnist.bin"},
        "engine": {"device": "CPU", "calibration": calib, "validation": val, "metric": "top1"},
        "compression": {"target_device": "ANY", "algorithms": [
            {"name": "AccuracyAwareQuantization", "params": {"maximal_drop": 0.01}}]}
    });
    std::fs::write(&config, text.to_string()).unwrap();
    let out = dir.path().join("pot");
    let run = aquant(&[
        "quantize",
        "-c",
        config.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.join("model.xml").is_file() && out.join("model.bin").is_file());
}

/// Runs `aquant eval` on a damaged copy of the MNIST IR and returns its one-line error.
fn eval_error(xml: &Path) -> String {
    let out = aquant(&[
        "eval",
        "--model",
        xml.to_str().unwrap(),
        "--data",
        assets().join("mnist_cnn/val.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn a_damaged_ir_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let xml = make_ir("mnist_cnn/mnist_cnn.onnx", dir.path(), false);
    let text = std::fs::read_to_string(&xml).unwrap();
    let bin = std::fs::read(xml.with_extension("bin")).unwrap();
    let damaged = |name: &str, xml_text: &str, bin: &[u8]| {
        let path = dir.path().join(format!("{name}.xml"));
        std::fs::write(&path, xml_text).unwrap();
        std::fs::write(path.with_extension("bin"), bin).unwrap();
        eval_error(&path)
    };
    let truncated = damaged("truncated", &text, &bin[..bin.len() / 2]);
    assert!(
        truncated.contains("truncated or does not belong"),
        "{truncated}"
    );

    // Another model's weights: a pair that does not match.
    let other = make_ir("imagenet/mobilenet_v2.onnx", dir.path(), false);
    let other_bin = std::fs::read(other.with_extension("bin")).unwrap();
    let mismatched = damaged("mismatched", &text, &other_bin);
    assert!(
        mismatched.contains("does not belong to this .xml"),
        "{mismatched}"
    );

    let unknown = damaged(
        "unknown",
        &text.replacen("type=\"ReLU\"", "type=\"Swish\"", 1),
        &bin,
    );
    assert!(unknown.contains("IR operation 'Swish'"), "{unknown}");

    let malformed = damaged("malformed", &text[..text.len() / 2], &bin);
    assert!(malformed.contains("not well-formed XML"), "{malformed}");
}
