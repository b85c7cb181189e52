#!/usr/bin/env python3
"""Writes the small seed inputs in fuzz/seeds/ (checked in; rerun only to change them).

onnx_load: tiny FP32 models covering what placement quantizes (Conv, Gemm, MatMul, Add, pooling, Concat,
Reshape). data_spec: `<spec JSON> NUL <array bytes>` inputs, see fuzz/src/data_spec.rs.
Needs numpy and onnx (pip install onnx numpy).
"""
import io
import json
import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEEDS = pathlib.Path(__file__).parent / "seeds"
rng = np.random.default_rng(0)


def weight(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def model(nodes, inputs, outputs, initializers, opset=13, check=True):
    graph = helper.make_graph(nodes, "seed", inputs, outputs, initializers)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if check:  # the checker looks for external data files, which live in the fuzz fixture folder
        onnx.checker.check_model(m)
    return m.SerializeToString()


def external(name, dims, location, offset, length):
    """A float tensor stored in an external file (the fixture folder's 64-byte weights.bin)."""
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims, data_location=TensorProto.EXTERNAL)
    for key, value in [("location", location), ("offset", str(offset)), ("length", str(length))]:
        tensor.external_data.add(key=key, value=value)
    return tensor


def value(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def onnx_seeds():
    conv_relu_gemm = model(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
            helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1),
        ],
        [value("x", "N", 1, 4, 4)],
        [value("y", "N", 3)],
        [weight("w", 2, 1, 3, 3), weight("b", 2), weight("fc_w", 3, 8), weight("fc_b", 3)],
    )
    matmul_add = model(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
            helper.make_node("Add", ["m", "b"], ["a"], name="add"),
            helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=-1),
        ],
        [value("x", "N", 4)],
        [value("y", "N", 3)],
        [weight("w", 4, 3), weight("b", 3)],
    )
    residual = model(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["c1", "x"], ["s"], name="residual"),
            helper.make_node("Conv", ["s", "w2", "b2"], ["c2"], name="conv2", group=2),
            helper.make_node("Concat", ["s", "c2"], ["cat"], name="concat", axis=1),
            helper.make_node("GlobalAveragePool", ["cat"], ["g"], name="gap"),
            helper.make_node("Reshape", ["g", "shape"], ["y"], name="reshape"),
        ],
        [value("x", 1, 2, 3, 3)],
        [value("y", 1, 4)],
        [
            weight("w1", 2, 2, 3, 3),
            weight("w2", 2, 1, 1, 1),
            weight("b2", 2),
            numpy_helper.from_array(np.array([1, 4], dtype=np.int64), "shape"),
        ],
    )
    external_weights = model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
        [value("x", "N", 4)],
        [value("y", "N", 3)],
        [external("w", [4, 3], "weights.bin", 8, 48)],
        check=False,
    )
    return {
        "conv_relu_gemm.onnx": conv_relu_gemm,
        "matmul_add.onnx": matmul_add,
        "residual.onnx": residual,
        "external_weights.onnx": external_weights,
        **external_data_seeds(),
    }


def external_data_seeds():
    """External data gone wrong (issue 27): a range past the end of weights.bin, two tensors on overlapping
    bytes (legal: each is a slice of the same mapping), and a file that is not there."""
    def matmul(*initializers):
        return model(
            [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")]
            + [helper.make_node("MatMul", ["x", "w2"], ["y2"], name="matmul2")] * (len(initializers) - 1),
            [value("x", "N", 4)],
            [value("y", "N", 3)] + [value("y2", "N", 3)] * (len(initializers) - 1),
            list(initializers),
            check=False,
        )

    return {
        "external_past_end.onnx": matmul(external("w", [4, 3], "weights.bin", 40, 48)),
        "external_overlapping.onnx": matmul(
            external("w", [4, 3], "weights.bin", 0, 48), external("w2", [4, 3], "weights.bin", 16, 48)
        ),
        "external_missing_file.onnx": matmul(external("w", [4, 3], "missing.bin", 0, 48)),
    }


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def spec_seed(spec, array_bytes=b""):
    return json.dumps(spec, separators=(",", ":")).encode() + b"\0" + array_bytes


def data_spec_seeds():
    x = (np.arange(12, dtype=np.float32) / 4).reshape(3, 1, 2, 2)
    u8 = np.arange(36, dtype=np.uint8).reshape(3, 3, 2, 2)
    y = np.array([3, 1, 2], dtype=np.int64)
    compressed = io.BytesIO()
    np.savez_compressed(compressed, x=x, y=y)
    return {
        "npy_f32.bin": spec_seed({"format": "npy", "inputs": {"input": "fuzz.npy"}, "labels": "y.npy"}, npy(x)),
        "npy_u8_preprocess.bin": spec_seed(
            {
                "format": "npy",
                "inputs": {"input": "fuzz.npy"},
                "labels": "y.npy",
                "preprocess": {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "channel_axis": 1},
            },
            npy(u8),
        ),
        "npy_labels.bin": spec_seed({"format": "npy", "inputs": {"input": "x.npy"}, "labels": "fuzz.npy"}, npy(y)),
        "npz_stored.bin": spec_seed(
            {"format": "npy", "inputs": {"input": "fuzz.npz:x"}, "labels": "fuzz.npz:y"}, npz(x=x, y=y)
        ),
        "npz_deflated.bin": spec_seed(
            {"format": "npy", "inputs": {"a": "fuzz.npz:x", "b": "u8.npy"}}, compressed.getvalue()
        ),
        "images.bin": spec_seed(
            {"format": "images", "root": "img", "label_regex": "_(\\d+)\\.png$", "resize": 4, "center_crop": 2,
             "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "layout": "NHWC"}
        ),
        "images_label_file.bin": spec_seed({"format": "images", "root": "img", "labels": "labels.txt"}),
    }


def main():
    for target, seeds in [("onnx_load", onnx_seeds()), ("data_spec", data_spec_seeds())]:
        folder = SEEDS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
            print(f"{folder / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
