#!/usr/bin/env python3
"""Evaluate an ONNX model (FP32 or QDQ INT8) with ONNX Runtime on an npy-format aquant data spec.

Prints one JSON line: {"metric": "top1", "value": v, "samples": n, "predictions": [...]}.
The tests use it to check that every model aquant writes loads and runs in ONNX Runtime, and to compare
predictions with aquant's own evaluation, so it measures under the conditions aquant's deployed check records in
report.json: one intra-op thread, ORT_ENABLE_ALL, batch 1 unless `--batch` says otherwise (a CPU's int8 kernels
may differ by batch size: AMX). Exit status 2 with a one-line message on any error.

`--cpu avx2-no-vnni` runs the evaluation as a CPU without VNNI computes it, on any x86-64 machine: the script
re-executes itself under `qemu-x86_64 -cpu Haswell` (user-mode emulation of an AVX2 CPU without AVX-512 or
VNNI), where ONNX Runtime picks the kernels such a CPU gets: u8×s8 pairs summed in saturating int16. Checked
bit-identical to logits measured on a real AVX2 CPU without VNNI (assets/saturation/). Exit status 3 when
qemu-x86_64 is not installed (Debian: qemu-user), so callers can skip with that reason.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime as ort


def load_spec(path):
    with open(path) as f:
        spec = json.load(f)
    if spec.get("format") != "npy":
        raise ValueError(f"only npy data specs are supported here, not {spec.get('format')!r}")
    base = os.path.dirname(os.path.abspath(path))
    inputs = {}
    for name, file in spec["inputs"].items():
        if ".npz:" in file:
            raise ValueError("npz members are not supported by this checker")
        inputs[name] = np.load(os.path.join(base, file), mmap_mode="r")
    labels = np.load(os.path.join(base, spec["labels"])) if spec.get("labels") else None
    return inputs, labels, spec.get("preprocess")


def preprocess(x, p):
    """The model's input from the spec's array: int64/int32 arrays without preprocessing (token ids) as they
    are, as aquant reads them; the rest as float32, with the spec's preprocessing."""
    if not p and np.asarray(x).dtype in (np.int64, np.int32):
        return np.asarray(x)
    x = np.asarray(x, dtype=np.float32)
    if not p:
        return x
    axis = p.get("channel_axis", 1)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    scale = np.float32(p.get("scale", 1.0))
    mean = np.asarray(p.get("mean", 0.0), dtype=np.float32)
    std = np.asarray(p.get("std", 1.0), dtype=np.float32)
    if mean.ndim:
        mean = mean.reshape(shape)
    if std.ndim:
        std = std.reshape(shape)
    return (x * scale - mean) / std


# Haswell: AVX2 and FMA, no AVX-512, no VNNI. The features TCG cannot emulate are switched off explicitly so
# that qemu does not warn about each of them.
EMULATED_CPUS = {"avx2-no-vnni": "Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid"}
EMULATED_ENV = "AQUANT_ORT_EVAL_EMULATED"


def reexec_emulated(cpu):
    """Runs this script again under qemu-x86_64 with the CPU model of `cpu`; returns its exit status."""
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        print("error: qemu-x86_64 not found (apt-get install qemu-user): cannot emulate a CPU without VNNI",
              file=sys.stderr)
        return 3
    args = [a for a in sys.argv[1:]]
    env = dict(os.environ, **{EMULATED_ENV: cpu})
    command = [qemu, "-cpu", EMULATED_CPUS[cpu], os.path.realpath(sys.executable), os.path.abspath(__file__)]
    return subprocess.call(command + args, env=env)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--batch", type=int, default=1, help="report.json's deployed.batch")
    parser.add_argument("--no-optim", action="store_true", help="ORT_DISABLE_ALL (unfused reference)")
    parser.add_argument("--cpu", choices=["native", *EMULATED_CPUS], default="native",
                        help="run natively, or under qemu as an AVX2 CPU without VNNI computes")
    parser.add_argument("--logits", help="also save the first output of every row to this .npy file")
    args = parser.parse_args()
    if args.cpu != "native" and os.environ.get(EMULATED_ENV) != args.cpu:
        sys.exit(reexec_emulated(args.cpu))

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    if args.no_optim:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    inputs, labels, prep = load_spec(args.data)
    n = len(next(iter(inputs.values())))
    if args.limit is not None:
        n = min(n, args.limit)
    batch = args.batch
    first_dim = session.get_inputs()[0].shape[0]
    if isinstance(first_dim, int):
        batch = first_dim
    predictions = []
    outputs = []
    for start in range(0, n, batch):
        feed = {name: preprocess(arr[start:min(n, start + batch)], prep) for name, arr in inputs.items()}
        logits = session.run(None, feed)[0]
        predictions.extend(int(p) for p in np.argmax(logits.reshape(len(logits), -1), axis=1))
        if args.logits:
            outputs.append(logits)
    predictions = predictions[:n]
    if args.logits:
        np.save(args.logits, np.concatenate(outputs)[:n])
    value = float(np.mean(np.asarray(predictions) == labels[:n])) if labels is not None else None
    print(json.dumps({"metric": "top1", "value": value, "samples": n, "cpu": args.cpu,
                      "predictions": predictions}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for the calling test
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
