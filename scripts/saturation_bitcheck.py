#!/usr/bin/env python3
"""Check aquant's model of the non-VNNI int8 kernels (aquant::saturation) bit for bit against ONNX Runtime.

Cuts one QDQ Conv (with its input QuantizeLinear and output Q/DQ) out of a QDQ model, feeds it the tensor the
full model computes there (ORT_DISABLE_ALL, first N images of an npy data spec), runs the cut model in ONNX
Runtime natively and under `qemu-x86_64 -cpu Haswell` (AVX2 without VNNI), and compares both with a numpy
simulation of the model: u8 codes (int8 activations shifted by +128), NHWC im2col with K ordered
(kh, kw, cin), adjacent products paired and saturated to int16, zero points folded after the products.

    python3 scripts/saturation_bitcheck.py assets/saturation/mobilenet_v2_int8_full_range.onnx \
        /features/features.0/features.0.0/Conv assets/imagenet/val.json --samples 8

Measured 2026-11-29 (ONNX Runtime 1.32): the saturating simulation equals the Haswell outputs on every value,
the non-saturating one equals the native (VNNI) outputs on every value, for MobileNetV2's first Conv (im2col
GEMM path) and /features/features.2/conv/conv.0/conv.0.0/Conv (symmetric-conv path).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh
from onnx import utils

QEMU = ["qemu-x86_64", "-cpu", "Haswell"]


def cut(src, conv_name, out):
    g = onnx.load(src).graph
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    conv = next(n for n in g.node if n.name == conv_name)
    t = conv.output[0]
    while True:  # forward to the DequantizeLinear after the output QuantizeLinear
        nxt = cons[t][0]
        t = nxt.output[0]
        if nxt.op_type == "DequantizeLinear":
            break
    src_in = prod[prod[conv.input[0]].input[0]].input[0]
    utils.extract_model(src, out, [src_in], [t])
    return src_in


def inputs(src, tensor, spec_path, samples):
    spec = json.load(open(spec_path))
    base = os.path.dirname(os.path.abspath(spec_path))
    name, file = next(iter(spec["inputs"].items()))
    x = np.load(os.path.join(base, file))[:samples].astype(np.float32)
    p = spec.get("preprocess") or {}
    shape = [1, -1, 1, 1]
    x = (x * np.float32(p.get("scale", 1.0)) - np.asarray(p.get("mean", 0.0), np.float32).reshape(shape)) / np.asarray(
        p.get("std", 1.0), np.float32
    ).reshape(shape)
    m = onnx.load(src)
    m.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run([tensor], {name: x[i : i + 1]})[0] for i in range(len(x))])


RUN = """
import sys, numpy as np, onnxruntime as ort
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
x = np.load(sys.argv[2])
np.save(sys.argv[3], np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i+1]})[0] for i in range(len(x))]))
"""


def run(model, x_path, out, emulate):
    cmd = (QEMU if emulate else []) + [sys.executable, "-c", RUN, model, x_path, out]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return np.load(out)


def simulate(model, x):
    g = onnx.load(model).graph
    init = {i.name: nh.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            init[n.output[0]] = nh.to_array(n.attribute[0].t)
    prod = {o: n for n in g.node for o in n.output}
    conv = next(n for n in g.node if n.op_type == "Conv")
    dqx = prod[conv.input[0]]
    sx, zx = init[dqx.input[1]], init[dqx.input[2]]
    dqw = prod[conv.input[1]]
    w, sw = init[dqw.input[0]].astype(np.int64), init[dqw.input[1]]
    b = init[prod[conv.input[2]].input[0]].astype(np.int64)
    qy = [n for n in g.node if n.op_type == "QuantizeLinear"][-1]
    sy, zy = init[qy.input[1]], init[qy.input[2]]
    att = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    st, pads = att.get("strides", [1, 1]), att.get("pads", [0, 0, 0, 0])
    assert att.get("group", 1) == 1, "grouped convolutions are not simulated here"
    signed = zx.dtype == np.int8
    lo, hi = (-128, 127) if signed else (0, 255)
    u = np.clip(np.round(x / sx) + int(zx), lo, hi).astype(np.int64) + (128 if signed else 0)
    zk = int(zx) + (128 if signed else 0)
    m_, c, kh, kw = w.shape
    n, _, h, wd = u.shape
    up = np.full((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), zk, np.int64)
    up[:, :, pads[0] : pads[0] + h, pads[1] : pads[1] + wd] = u
    oh = (h + pads[0] + pads[2] - kh) // st[0] + 1
    ow = (wd + pads[1] + pads[3] - kw) // st[1] + 1
    cols = np.stack(
        [up[:, :, ky : ky + st[0] * oh : st[0], kx : kx + st[1] * ow : st[1]] for ky in range(kh) for kx in range(kw)], 1
    ).reshape(n, kh * kw * c, oh, ow)
    wk = w.transpose(0, 2, 3, 1).reshape(m_, -1)
    if wk.shape[1] % 2:
        cols = np.concatenate([cols, np.zeros((n, 1, oh, ow), np.int64)], 1)
        wk = np.concatenate([wk, np.zeros((m_, 1), np.int64)], 1)
    products = np.einsum("nkhw,mk->nmkhw", cols, wk)
    pairs = products[:, :, 0::2] + products[:, :, 1::2]
    clipped = np.clip(pairs, -32768, 32767)
    ylo, yhi = (0, 255) if zy.dtype == np.uint8 else (-128, 127)

    def finish(p):
        acc = p.sum(2) - zk * w.reshape(m_, -1).sum(1)[None, :, None, None] + b[None, :, None, None]
        scale = (sx * sw / sy).astype(np.float32)[None, :, None, None]
        return (np.clip(np.round(acc.astype(np.float32) * scale) + int(zy), ylo, yhi) - int(zy)) * sy

    touched = float(np.mean((pairs != clipped).any(2)))
    return finish(clipped), finish(pairs), sy, touched


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("conv")
    ap.add_argument("data")
    ap.add_argument("--samples", type=int, default=8)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        sub = os.path.join(d, "conv.onnx")
        tensor = cut(a.model, a.conv, sub)
        x = inputs(a.model, tensor, a.data, a.samples)
        xp = os.path.join(d, "x.npy")
        np.save(xp, x)
        native = run(sub, xp, os.path.join(d, "native.npy"), False)
        haswell = run(sub, xp, os.path.join(d, "haswell.npy"), True)
        sat, free, sy, touched = simulate(sub, x)
    for name, ours, theirs in [
        ("saturating model vs ORT on Haswell (no VNNI)", sat, haswell),
        ("non-saturating model vs ORT native", free, native),
        ("non-saturating model vs ORT on Haswell", free, haswell),
    ]:
        steps = np.abs(ours - theirs) / sy
        print(f"{name}: equal {np.mean(steps < 0.5):.4f}, max {steps.max():.0f} output steps")
    print(f"outputs touched by a saturated pair: {touched:.4f}")


if __name__ == "__main__":
    main()
