#!/usr/bin/env python3
"""Run NNCF's quantize_with_accuracy_control on one bundled case and print one JSON line.

Used by bench/compare_nncf.sh; the same model, data (300-row ImageNet set or the MNIST digits), metric (top-1)
and max_drop as aquant, with NNCF's defaults otherwise. The validation function scores with ONNX Runtime.
"""
import argparse
import json
import os
import time

import nncf
import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def load(case):
    if case == "mnist_cnn":
        d = os.path.join(ROOT, "assets", "mnist_cnn")
        calib = np.load(os.path.join(d, "calib_x.npy"))
        return os.path.join(d, "mnist_cnn.onnx"), calib, np.load(os.path.join(d, "val_x.npy")), np.load(os.path.join(d, "val_y.npy"))
    d = os.path.join(ROOT, "assets", "imagenet")
    x = (np.load(os.path.join(d, "val_u8.npy")).astype(np.float32) * np.float32(1 / 255) - MEAN) / STD
    return os.path.join(d, f"{case}.onnx"), x, x, np.load(os.path.join(d, "val_y.npy"))


def top1(model, x, y):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if hasattr(model, "run"):  # NNCF may hand over a ready session
        session = model
    else:
        data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    hits = [float(session.run(None, {name: x[i:i + 1]})[0].argmax() == y[i]) for i in range(len(x))]
    return float(np.mean(hits)), hits


def quantized_ops(model):
    producers = {o: n for n in model.graph.node for o in n.output}
    ops = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose")]
    # An op counts as quantized when its weight comes out of a DequantizeLinear (NNCF may move activation
    # quantizers above pooling, so input 0 need not).
    quantized = [n for n in ops if len(n.input) > 1 and n.input[1] in producers
                 and producers[n.input[1]].op_type == "DequantizeLinear"]
    return len(ops), len(quantized)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", required=True)
    parser.add_argument("--max-drop", type=float, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    path, calib_x, val_x, val_y = load(args.case)
    model = onnx.load(path)
    calibration = nncf.Dataset([{"input": calib_x[i:i + 1]} for i in range(len(calib_x))])
    validation = nncf.Dataset([({"input": val_x[i:i + 1]}, val_y[i]) for i in range(len(val_x))])

    def validate(m, dataset):
        items = list(dataset)
        x = np.concatenate([it[0]["input"] for it in items])
        y = np.array([it[1] for it in items])
        return top1(m, x, y)

    start = time.time()
    quantized = nncf.quantize_with_accuracy_control(
        model, calibration, validation, validation_fn=validate, max_drop=args.max_drop,
        drop_type=nncf.DropType.ABSOLUTE,
    )
    seconds = time.time() - start
    onnx.save(quantized, args.output)
    total, quantized_count = quantized_ops(quantized)
    print(json.dumps({"tool": "nncf", "version": nncf.__version__, "case": args.case, "max_drop": args.max_drop,
                      "seconds": seconds, "ops": total, "quantized_ops": quantized_count,
                      "reverted_ops": total - quantized_count}))


if __name__ == "__main__":
    main()
