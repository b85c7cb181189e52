//! 16-bit quantizers: ONNX's QuantizeLinear/DequantizeLinear at 16 bits (as ONNX Runtime computes them) equal
//! aquant's quantizer math, and the evaluation form the search judges equals the exported opset-21 file.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use aquant::numerics::Quantizer;
use aquant::quantize::{ModelForm, QuantizationParams, RestoreMode};
use aquant::Backend;
use aquant_onnx::proto::tensor_proto::DataType;
use aquant_onnx::proto::{
    tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use aquant_onnx::tensor;
use aquant_tract::TractBackend;
use common::{assets, f32_npy, npy_f32, ort_eval_with, write};

fn float_port(name: &str, len: usize) -> ValueInfoProto {
    let dim = |v: i64| tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimValue(v)),
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: vec![dim(1), dim(len as i64)],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `y = DequantizeLinear(QuantizeLinear(x))` with `quantizer`'s scale and zero point, at opset 21.
fn qdq_model(quantizer: &Quantizer, len: usize) -> ModelProto {
    let storage = if quantizer.signed {
        DataType::Int16
    } else {
        DataType::Uint16
    };
    let node = |op: &str, inputs: [&str; 3], output: &str| NodeProto {
        op_type: Some(op.into()),
        name: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    ModelProto {
        ir_version: Some(10),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(21),
        }],
        graph: Some(GraphProto {
            name: Some("qdq16".into()),
            node: vec![
                node("QuantizeLinear", ["x", "scale", "zero_point"], "q"),
                node("DequantizeLinear", ["q", "scale", "zero_point"], "y"),
            ],
            initializer: vec![
                tensor::from_f32("scale", &[], &quantizer.scale),
                tensor::from_quantized("zero_point", &[], storage, &quantizer.zero_point),
            ],
            input: vec![float_port("x", len)],
            output: vec![float_port("y", len)],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn quantizer_math_is_onnx_s_at_16_bits_round_half_to_even_and_saturation() {
    let dir = tempfile::tempdir().unwrap();
    for (signed, zero_point, qmin, qmax) in [(true, 3, -32768, 32767), (false, 40000, 0, 65535)] {
        let quantizer = Quantizer {
            scale: vec![0.25],
            zero_point: vec![zero_point],
            axis: None,
            qmin,
            qmax,
            bits: 16,
            signed,
        };
        // Ties on both sides of zero (x/s = k + 0.5), values inside, and values far beyond both ends.
        let mut x: Vec<f32> = (-6..6).map(|k| (k as f32 + 0.5) * 0.25).collect();
        x.extend([
            1000.0, -1000.0, 8190.0, -8192.125, 1.0e6, -1.0e6, 4100.375, 0.0,
        ]);
        let model = dir.path().join("qdq.onnx");
        aquant_onnx::save_model(&qdq_model(&quantizer, x.len()), &model).unwrap();
        write(dir.path(), "x.npy", f32_npy(&[1, x.len()], &x));
        let spec = write(
            dir.path(),
            "x.json",
            r#"{"format":"npy","inputs":{"x":"x.npy"}}"#,
        );
        let logits = dir.path().join("y.npy");
        ort_eval_with(
            &model,
            Path::new(&spec),
            &["--logits", logits.to_str().unwrap()],
        );
        let onnx_runtime = npy_f32(&logits);
        let ours: Vec<f32> = x
            .iter()
            .map(|&v| quantizer.dequantize(quantizer.quantize(v, 0), 0))
            .collect();
        assert_eq!(ours, onnx_runtime, "signed {signed}: x = {x:?}");
        // Saturation did happen on both ends, so the check covers it.
        assert!(ours.contains(&((qmax - zero_point) as f32 * 0.25)));
        assert!(ours.contains(&((qmin - zero_point) as f32 * 0.25)));
    }
}

#[test]
fn the_evaluation_form_computes_what_onnx_runtime_computes_from_the_saved_16_bit_model() {
    let tract = TractBackend::new();
    let fp32 = aquant_onnx::load_model(&assets().join("mnist_cnn/mnist_cnn.onnx")).unwrap();
    let calibration = aquant::open_dataset(&assets().join("mnist_cnn/calib.json")).unwrap();
    let mut params = QuantizationParams::default();
    params.weights.bits = 16;
    params.activations.bits = 16;
    let (quantized, _) = aquant::quantize::quantize(
        &tract,
        fp32,
        calibration.as_ref(),
        &params,
        1,
        &aquant::NoProgress,
    )
    .unwrap();
    let none = BTreeSet::new();
    let build = |form| {
        quantized
            .build(&none, RestoreMode::default(), form)
            .unwrap()
    };
    let export = build(ModelForm::Export {
        compress_weights: true,
    });
    assert_eq!(aquant_onnx::default_opset(&export), 21);
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("model.onnx");
    aquant_onnx::save_model(&export, &saved).unwrap();
    let rows = 64;
    let logits = dir.path().join("logits.npy");
    let data = assets().join("mnist_cnn/val.json");
    ort_eval_with(
        &saved,
        &data,
        &[
            "--limit",
            "64",
            "--batch",
            "1",
            "--logits",
            logits.to_str().unwrap(),
        ],
    );
    let onnx_runtime = npy_f32(&logits);
    let session = tract.prepare(&build(ModelForm::Evaluation), &[]).unwrap();
    let dataset = aquant::open_dataset(&data).unwrap();
    let mut evaluation = Vec::new();
    for i in 0..rows {
        let outputs = session
            .run(common::sample_inputs(dataset.as_ref(), i))
            .unwrap();
        evaluation.extend(outputs[0].as_f32("logits").unwrap().iter().copied());
    }
    assert_eq!(evaluation.len(), onnx_runtime.len());
    let scale = onnx_runtime.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = evaluation
        .iter()
        .zip(&onnx_runtime)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Both compute float convolutions of the same 16-bit values; only the summation order differs.
    assert!(
        worst <= 1e-4 * scale,
        "worst {worst} (logits up to {scale})"
    );
}
