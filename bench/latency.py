#!/usr/bin/env python3
"""INT8 latency side by side (issue #25): does a quantized model run faster than FP32, engine by engine?

For each bundled model: FP32, aquant's default (`aquant quantize`, no flags: placed for ONNX Runtime), aquant
placed for OpenVINO (`--deploy openvino`, the default of IR output), onnxruntime's `quantize_static`
(QDQ, per-channel int8 weights, uint8 activations, 300 calibration samples) and NNCF's `quantize` when the
package is installed; for the transformer encoder (scripts/make_encoder.py at all-MiniLM-L6-v2's size: 6 layers,
hidden 384, 6 heads, 64 tokens, seeded random weights) also onnxruntime's `quantize_dynamic`, the quantizer ONNX
Runtime recommends for transformers, and NNCF with `model_type=TRANSFORMER`. Each model runs in ONNX Runtime
(CPU provider, default optimizations) and OpenVINO (CPU), one thread, batch 1; latency is the median over all
timed runs after a warm-up, the variants interleaved in rounds so that a slow moment of the machine hits all of
them. Beside ONNX Runtime's latency: each variant's top-1 on ONNX Runtime over the validation set (for the
encoder, whose weights are random, its agreement with FP32's class instead: accuracy held is the other half of
the claim), and how many weighted ops and nodes its optimized graph (`ORT_ENABLE_EXTENDED`,
scripts/ort_fusion.py) still computes in float; the same count in OpenVINO's CPU runtime model (the layers the
plugin compiled to run at f32). Prints Markdown.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from onnxruntime import quantization as ortq

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import ort_eval  # noqa: E402  (the data-spec reader and preprocessing the tests use)
import ort_fusion  # noqa: E402

ENCODER_SIZE = ["--layers", "6", "--hidden", "384", "--heads", "6", "--seq", "64", "--samples", "64"]
MODELS = {
    "mnist_cnn": ("assets/mnist_cnn/mnist_cnn.onnx", "assets/mnist_cnn/calib.json",
                  "assets/mnist_cnn/val.json"),
    "mobilenet_v2": ("assets/imagenet/mobilenet_v2.onnx", "assets/imagenet/val.json",
                     "assets/imagenet/val.json"),
    "efficientnet_lite0": ("assets/imagenet/efficientnet_lite0.onnx", "assets/imagenet/val.json",
                           "assets/imagenet/val.json"),
    # Made at run time by scripts/make_encoder.py: (model, calibration, validation) inside the run's directory.
    "encoder": ("encoder.onnx", "data.json", "data.json"),
}
TRANSFORMERS = {"encoder"}
CALIBRATION_SAMPLES = 300


def paths(key, out):
    """The model, calibration and validation spec of `key`: bundled, or the encoder made into `out`."""
    if key not in TRANSFORMERS:
        return tuple(os.path.join(ROOT, p) for p in MODELS[key])
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_encoder.py"), out, *ENCODER_SIZE],
                   check=True, stdout=subprocess.DEVNULL)
    return tuple(os.path.join(out, p) for p in MODELS[key])


def samples(spec):
    """The preprocessed samples of a data spec, by input name (token ids as they are: ort_eval's rule)."""
    inputs, _, preprocess = ort_eval.load_spec(spec)
    return {name: ort_eval.preprocess(x[:CALIBRATION_SAMPLES], preprocess) for name, x in inputs.items()}


def sample(feeds, i):
    """Sample `i` of every input, as a batch of one."""
    return {name: np.ascontiguousarray(x[i:i + 1]) for name, x in feeds.items()}


class Reader(ortq.CalibrationDataReader):
    """onnxruntime's calibration reader over the samples, one at a time."""

    def __init__(self, feeds):
        count = len(next(iter(feeds.values())))
        self.items = iter(sample(feeds, i) for i in range(count))

    def get_next(self):
        return next(self.items, None)


def aquant_default(aquant, model, calib, out, extra=()):
    target = os.path.join(out, "aquant" + "".join(extra).replace("-", "_"))
    subprocess.run([aquant, "quantize", "--model", model, "--calib", calib, "-o", target, "-q", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(target, "model.onnx")


def quantize_static(model, feeds, out):
    path = os.path.join(out, "quantize_static.onnx")
    ortq.quantize_static(model, path, Reader(feeds), quant_format=ortq.QuantFormat.QDQ, per_channel=True,
                         activation_type=ortq.QuantType.QUInt8, weight_type=ortq.QuantType.QInt8)
    return path


def quantize_dynamic(model, out):
    """onnxruntime's `quantize_dynamic` (int8 weights, activations quantized at run time), as its docs advise
    for transformers."""
    path = os.path.join(out, "quantize_dynamic.onnx")
    ortq.quantize_dynamic(model, path, weight_type=ortq.QuantType.QInt8)
    return path


def nncf_quantize(model, feeds, out, transformer):
    """NNCF's `quantize` with its defaults (`model_type=TRANSFORMER` for a transformer, as NNCF's docs say), or
    None when NNCF is not installed."""
    try:
        import nncf
        import onnx
    except ImportError:
        return None
    count = len(next(iter(feeds.values())))
    dataset = nncf.Dataset([sample(feeds, i) for i in range(count)])
    extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    quantized = nncf.quantize(onnx.load(model), dataset, subset_size=count, **extra)
    path = os.path.join(out, "nncf.onnx")
    onnx.save(quantized, path)
    return path


def ort_runner(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda feed: session.run(None, feed)


def openvino_runner(path):
    import openvino as ov
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
                                                     "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda feed: request.infer(feed)


def medians(runners, x, warmup, rounds, per_round):
    """Median milliseconds per runner, after `warmup` runs each, over `rounds` interleaved rounds."""
    times = {key: [] for key in runners}
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    for _ in range(rounds):
        for key, run in runners.items():
            for _ in range(per_round):
                start = time.perf_counter()
                run(x)
                times[key].append((time.perf_counter() - start) * 1e3)
    return {key: statistics.median(values) for key, values in times.items()}


def float_ops(path):
    """"weighted / all": the Conv/Gemm/MatMul with a float weight, and every node computing in float, in ONNX
    Runtime's optimized graph."""
    graph = ort_fusion.analyse(ort_fusion.optimized_graph(path, "extended"))
    return f"{len(graph['float_weighted'])} / {graph['float_compute']}"


# OpenVINO's layer types that hold a weight, and those that only move or hold data.
OV_WEIGHTED = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "Gemm"}
OV_DATA = {"Const", "Input", "Output", "Parameter", "Result", "Reorder", "Reshape", "Transpose", "Concatenation",
           "Split", "Gather", "Broadcast", "ShapeOf", "FakeQuantize"}


def openvino_float_ops(path):
    """"weighted / all" in OpenVINO's CPU runtime model (`compiled_model.get_runtime_model()`): the layers with a
    weight, and every computing layer, that run at f32 (`runtimePrecision`), as the plugin compiled them."""
    import openvino as ov
    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": 1})
    weighted = compute = 0
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else ""
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else ""
        if precision != "f32" or kind in OV_DATA:
            continue
        compute += 1
        weighted += kind in OV_WEIGHTED
    return f"{weighted} / {compute}"


def top1(path, spec, reference=None):
    """Top-1 of `path` on ONNX Runtime (one thread, default optimizations: as deployed) over the spec's samples;
    against `reference`'s classes (the FP32 model's) when the spec has no labels."""
    inputs, labels, preprocess = ort_eval.load_spec(spec)
    feeds = {name: ort_eval.preprocess(x, preprocess) for name, x in inputs.items()}
    count = len(next(iter(feeds.values())))

    def classes(model):
        run = ort_runner(model)
        return [int(np.argmax(run(sample(feeds, i))[0])) for i in range(count)]

    expected = [int(label) for label in labels] if labels is not None else classes(reference)
    return float(np.mean(np.array(classes(path)) == np.array(expected)))


def cpu():
    text = open("/proc/cpuinfo").read()
    model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(shown)}" + \
        ("" if flags & {"avx512_vnni", "avx_vnni", "amx_int8"} else " (no VNNI)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aquant", required=True)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=10)
    args = parser.parse_args()
    print(f"CPU: {cpu()}; onnxruntime {ort.__version__}; median of {args.rounds}×{args.per_round} runs after "
          f"{args.warmup} warm-up, 1 thread, batch 1, load average {os.getloadavg()[0]:.2f}\n")
    print("| model | variant | ORT top-1 | ORT ms | × FP32 | ORT float ops (weighted / all) | OpenVINO ms | × FP32 "
          "| OpenVINO float ops (weighted / all) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in args.models:
        with tempfile.TemporaryDirectory() as out:
            model, calib, val = paths(key, out)
            feeds = samples(calib)
            transformer = key in TRANSFORMERS
            variants = {"FP32": model, "aquant default": aquant_default(args.aquant, model, calib, out),
                        # What a user deploying on OpenVINO asks for (the default of IR output).
                        "aquant --deploy openvino": aquant_default(args.aquant, model, calib, out,
                                                                   ("--deploy", "openvino")),
                        "quantize_static": quantize_static(model, feeds, out)}
            if transformer:
                variants["quantize_dynamic"] = quantize_dynamic(model, out)
            nncf_model = nncf_quantize(model, feeds, out, transformer)
            if nncf_model:
                variants["NNCF quantize"] = nncf_model
            one = sample(feeds, 0)
            on_ort = medians({k: ort_runner(p) for k, p in variants.items()}, one, args.warmup, args.rounds,
                             args.per_round)
            on_ov = medians({k: openvino_runner(p) for k, p in variants.items()}, one, args.warmup, args.rounds,
                            args.per_round)
            label = f"{key} (agreement with FP32)" if transformer else key
            for variant, path in variants.items():
                print(f"| {label} | {variant} | {top1(path, val, model):.4f} | {on_ort[variant]:.3f} | "
                      f"{on_ort['FP32'] / on_ort[variant]:.2f} | {float_ops(path)} | {on_ov[variant]:.3f} | "
                      f"{on_ov['FP32'] / on_ov[variant]:.2f} | {openvino_float_ops(path)} |")
        if "NNCF quantize" not in variants:
            print(f"| {key} | NNCF quantize | not installed | | | | | | |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
