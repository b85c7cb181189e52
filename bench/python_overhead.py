#!/usr/bin/env python3
"""One MobileNetV2 run at max_drop 0.003 through Python; prints one JSON line. bench/python_overhead.sh runs it
for each way side by side with the CLI.

--way metric          aquant.quantize_with_accuracy_control with a Python per-sample top-1 (metric=) declared
                      to lie in [0, 1] (metric_bounds=(0, 1)), so the ranking stops early as for the built-in
--way metric_unbounded  the same without metric_bounds: every ranking candidate evaluated on the whole subset
--way validation_fn   aquant with the NNCF validation_fn below, returning (value, per-sample values)
--way nncf            nncf.quantize_with_accuracy_control with the same validation_fn (run in NNCF's venv)
"""
import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "assets", "imagenet")
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def transform(item):
    """The data spec's preprocessing (scale 1/255, mean, std), batched."""
    image, _ = item
    return ((image.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD)[None]


def infer(model, x):
    """aquant lends a callable model; NNCF's ONNX backend hands an onnx.ModelProto."""
    if callable(model):
        return model(x)[0]
    import onnxruntime as ort

    if not hasattr(infer, "session") or infer.model is not model:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        infer.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        infer.model = model
    return infer.session.run(None, {infer.session.get_inputs()[0].name: x})[0]


def validation_fn(model, data):
    hits = [float(np.argmax(infer(model, transform(item))) == item[1]) for item in data]
    return float(np.mean(hits)), hits


def top1(outputs, label):
    return float(np.argmax(outputs[0]) == label)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--way", choices=["metric", "metric_unbounded", "validation_fn", "nncf"], required=True)
    parser.add_argument("--backend", default="tract")
    args = parser.parse_args()
    x, y = np.load(os.path.join(DATA, "val_u8.npy")), np.load(os.path.join(DATA, "val_y.npy"))
    items = [(x[i], int(y[i])) for i in range(len(y))]
    model = os.path.join(DATA, "mobilenet_v2.onnx")
    start = time.time()
    if args.way == "nncf":
        import nncf
        import onnx

        name = onnx.load(model).graph.input[0].name
        dataset = nncf.Dataset(items, lambda item: {name: transform(item)})  # NNCF's ONNX backend feeds dicts
        quantized = nncf.quantize_with_accuracy_control(
            onnx.load(model), dataset, dataset, validation_fn, max_drop=0.003)
        final, _ = validation_fn(quantized, items)
        result = {"final": final}
    else:
        import aquant

        dataset = aquant.Dataset(items, transform)
        kwargs = {
            "metric": {"metric": top1, "metric_bounds": (0, 1)},
            "metric_unbounded": {"metric": top1},
            "validation_fn": {"validation_fn": validation_fn},
        }[args.way]
        _, report = aquant.quantize_with_accuracy_control(
            model, dataset, dataset, max_drop=0.003, backend=args.backend, progress=False, return_report=True,
            **kwargs)
        result = {
            "final": report.metrics[0].final,
            "reverted_ops": report.reverted_ops,
            "samples_inferred": report.evaluations["samples_inferred"],
        }
    result.update(way=args.way, backend=args.backend, seconds=round(time.time() - start, 1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
