#!/usr/bin/env python3
"""What a validation_fn written as NNCF's ONNX examples write it costs on aquant (issue #26): it builds its own
ONNX Runtime session from ``model.SerializeToString()`` on every call and runs every sample itself, while the
faster form calls the lent model (``model(inputs)``), which aquant answers from the outputs it has just computed
(no inference) or runs in Rust without the GIL. Same data, metric, engine and search; prints one JSON line per
way: wall seconds, seconds inside validation_fn, its calls, the final metric and the ops reverted.

    python3 bench/validation_fn_session.py --model mobilenet_v2 --backend ort --max-drop 0.003
    python3 bench/validation_fn_session.py --model mnist_cnn --backend tract --max-drop 0
"""
import argparse
import json
import os
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def data(model):
    """(model path, items, transform) of a bundled model."""
    if model == "mnist_cnn":
        d = os.path.join(ROOT, "assets", "mnist_cnn")
        x, y = np.load(os.path.join(d, "val_x.npy")), np.load(os.path.join(d, "val_y.npy"))
        return os.path.join(d, "mnist_cnn.onnx"), [(x[i], int(y[i])) for i in range(len(y))], lambda it: it[0][None]
    d = os.path.join(ROOT, "assets", "imagenet")
    x, y = np.load(os.path.join(d, "val_u8.npy")), np.load(os.path.join(d, "val_y.npy"))
    items = [(x[i], int(y[i])) for i in range(len(y))]
    return os.path.join(d, f"{model}.onnx"), items, lambda it: ((it[0].astype(np.float32) / 255 - MEAN) / STD)[None]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--backend", default="ort")
    parser.add_argument("--max-drop", type=float, default=0.003)
    parser.add_argument("--ways", default="own_session,lent_model")
    args = parser.parse_args()
    import aquant
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # not the initializer-cleanup warnings of every session
    path, items, transform = data(args.model)
    spent = {"seconds": 0.0, "calls": 0}

    def own_session(model, items):
        """As NNCF's ONNX examples: the input name from model.graph, a session from SerializeToString()."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        name = model.graph.input[0].name
        hits = [float(np.argmax(session.run(None, {name: transform(item)})[0]) == item[1]) for item in items]
        return float(np.mean(hits)), hits

    def lent_model(model, items):
        """The faster form: the lent model called on the transformed items."""
        hits = [float(np.argmax(model(transform(item))[0]) == item[1]) for item in items]
        return float(np.mean(hits)), hits

    for way in args.ways.split(","):
        function = {"own_session": own_session, "lent_model": lent_model}[way]

        def timed(model, items):
            start = time.perf_counter()
            try:
                return function(model, items)
            finally:
                spent["seconds"] += time.perf_counter() - start
                spent["calls"] += 1

        spent.update(seconds=0.0, calls=0)
        dataset = aquant.Dataset(items, transform)
        start = time.perf_counter()
        _, report = aquant.quantize_with_accuracy_control(
            path, dataset, dataset, timed, max_drop=args.max_drop, backend=args.backend, progress=False,
            return_report=True)
        print(json.dumps({
            "way": way, "model": args.model, "backend": args.backend, "samples": len(items),
            "wall_s": round(time.perf_counter() - start, 2), "in_validation_fn_s": round(spent["seconds"], 2),
            "validation_fn_calls": spent["calls"], "final": report.metrics[0].final,
            "reverted_ops": report.reverted_ops,
        }), flush=True)


if __name__ == "__main__":
    main()
