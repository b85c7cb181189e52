//! The tract backend on models built in code: batches, extra outputs, errors.

use aquant::builder::ModelBuilder;
use aquant::{Backend, Tensor};
use aquant_tract::TractBackend;
use ndarray::{ArrayD, IxDyn};

fn matmul_relu(batch: Option<usize>) -> aquant_onnx::ModelProto {
    ModelBuilder::new(13)
        .input("x", &[batch, Some(2)])
        .initializer("w", &[2, 2], &[1.0, -1.0, 2.0, 0.5])
        .node("MatMul", "mm", &["x", "w"], &["h"])
        .node("Relu", "relu", &["h"], &["y"])
        .output("y", &[batch, Some(2)])
        .build()
}

fn input(rows: usize) -> Tensor {
    Tensor::F32(ArrayD::from_shape_fn(IxDyn(&[rows, 2]), |i| {
        (i[0] as f32) - (i[1] as f32) * 2.0
    }))
}

#[test]
fn symbolic_batch_runs_any_batch_size_and_returns_extra_outputs() {
    let session = TractBackend::new()
        .prepare(&matmul_relu(None), &["h".to_string()])
        .unwrap();
    for rows in [1, 3] {
        let out = session.run(vec![input(rows)]).unwrap();
        assert_eq!(out.len(), 2, "model output then the extra one");
        let (y, h) = (out[0].as_f32("y").unwrap(), out[1].as_f32("h").unwrap());
        assert_eq!(y.shape(), &[rows, 2]);
        // row 1: x = [1, -1]; h = [1*1 + -1*2, 1*-1 + -1*0.5] = [-1, -1.5]; y = relu(h) = [0, 0]
        if rows == 3 {
            assert_eq!(h.as_slice().unwrap()[2..4], [-1.0, -1.5]);
            assert_eq!(y.as_slice().unwrap()[2..4], [0.0, 0.0]);
        }
    }
}

#[test]
fn fixed_batch_one_model_runs_with_batch_one() {
    let session = TractBackend::new()
        .prepare(&matmul_relu(Some(1)), &[])
        .unwrap();
    let out = session.run(vec![input(1)]).unwrap();
    assert_eq!(out[0].shape(), &[1, 2]);
}

#[test]
fn engine_errors_are_one_line_backend_errors() {
    let session = TractBackend::new()
        .prepare(&matmul_relu(None), &[])
        .unwrap();
    let bad = Tensor::F32(ArrayD::zeros(IxDyn(&[2, 3])));
    let err = session.run(vec![bad]).unwrap_err().to_string();
    assert!(err.starts_with("tract backend: "), "{err}");
    assert!(!err.contains('\n'), "{err}");

    let err = TractBackend::new()
        .prepare(&matmul_relu(None), &["no_such_tensor".to_string()])
        .err()
        .expect("unknown extra output is an error")
        .to_string();
    assert!(err.contains("no_such_tensor"), "{err}");
}
