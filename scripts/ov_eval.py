#!/usr/bin/env python3
"""Evaluate an ONNX model or an OpenVINO IR (.xml) with Python OpenVINO on an npy-format aquant data spec.

Prints one JSON line: {"metric": "top1", "value": v, "samples": n, "predictions": [...],
"convolutions": {"I8": k, "FP32": m, ...}, "version": "2026.4.1"}: "convolutions" counts the Convolution
nodes of the compiled model's runtime (execution) graph by the precision they run in (its rt_info
runtimePrecision), which says whether OpenVINO executes them in int8 (`i8` or `u8`: which one the CPU plugin
picks depends on the CPU's int8 kernels, AMX or VNNI). The tests use it as OpenVINO's own measure of a model
aquant saved, so it measures under the conditions aquant's deployed check records in report.json: float
layers in f32 (INFERENCE_PRECISION_HINT), one thread per inference, batch 1 unless `--batch` says otherwise
(on AMX CPUs OpenVINO's int8 results depend on the batch). Exit status 2 with a one-line message on any error.
"""
import argparse
import json
import os
import sys
from collections import Counter

import numpy as np
import openvino as ov

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ort_eval import load_spec, preprocess  # noqa: E402  (the same data-spec reader as the ORT checker)


def conv_precisions(compiled):
    """Runtime precision of each Convolution of the execution graph, counted."""
    counts = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["layerType"].astype(str) == "Convolution":
            counts[info["runtimePrecision"].astype(str)] += 1
    return dict(counts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help=".onnx or .xml (weights .bin beside it)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--batch", type=int, default=1, help="report.json's deployed.batch")
    parser.add_argument("--threads", type=int, default=1, help="report.json's deployed.threads")
    parser.add_argument("--logits", help="also save the first output of every row to this .npy file")
    args = parser.parse_args()

    core = ov.Core()
    settings = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": args.threads, "NUM_STREAMS": 1}
    compiled = core.compile_model(args.model, "CPU", settings)
    inputs, labels, prep = load_spec(args.data)
    n = len(next(iter(inputs.values())))
    if args.limit is not None:
        n = min(n, args.limit)
    request = compiled.create_infer_request()
    predictions, outputs = [], []
    for start in range(0, n, args.batch):
        feed = {name: preprocess(arr[start:min(n, start + args.batch)], prep) for name, arr in inputs.items()}
        logits = request.infer(feed)[compiled.output(0)]
        predictions.extend(int(p) for p in np.argmax(logits.reshape(len(logits), -1), axis=1))
        if args.logits:
            outputs.append(np.array(logits))
    if args.logits:
        np.save(args.logits, np.concatenate(outputs)[:n])
    value = float(np.mean(np.asarray(predictions) == labels[:n])) if labels is not None else None
    print(json.dumps({"metric": "top1", "value": value, "samples": n, "predictions": predictions,
                      "convolutions": conv_precisions(compiled), "version": ov.__version__.split("-")[0]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for the calling test
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
