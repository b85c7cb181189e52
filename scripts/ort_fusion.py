#!/usr/bin/env python3
"""What ONNX Runtime runs of a model: its optimized graph, read for ops left in float.

ONNX Runtime fuses a QDQ model into integer kernels (QLinearConv, QLinearAdd, QGemm, MatMulIntegerToFloat…) only
where the quantizers sit as its QDQ selectors expect; anywhere else it keeps the float op beside
DequantizeLinear nodes and the INT8 model runs at FP32 speed. This script dumps the optimized graph
(`SessionOptions.optimized_model_filepath`, at `ORT_ENABLE_EXTENDED` by default: the QDQ fusions without the
machine-dependent layout transforms) and prints one JSON object:

- `ops`: op type → count in the optimized graph;
- `float_weighted`: the Conv/Gemm/MatMul (plain or fused) that still compute in float with a constant weight
  (an initializer, or a DequantizeLinear of one): weights ONNX Runtime did not take into an integer kernel;
- `dq_q_pairs`: DequantizeLinear nodes read by a QuantizeLinear: a requantization an integer kernel could have
  absorbed;
- `float_compute`: how many nodes compute in float (every node but Q/DQ, integer kernels and data movement).

The tests use it to check that aquant's placement is the one ONNX Runtime fuses; bench/latency.py prints its
counts beside each model's latency. Exit status 2 with a one-line message on any error.
"""
import argparse
import collections
import json
import os
import sys
import tempfile

import onnx
import onnxruntime as ort

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# Ops whose second input is a weight when it is constant.
WEIGHTED = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
# Ops that compute nothing in float: quantizers, integer kernels, data movement and shape computation.
NOT_FLOAT_COMPUTE = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Reshape", "Flatten", "Transpose", "Squeeze",
    "Unsqueeze", "Shape", "Gather", "Slice", "Concat", "Identity", "Constant", "MaxPool", "Cast", "Expand", "Pad",
}


def integer_kernel(op_type):
    """Whether `op_type` computes on integers (QLinear*, QGemm, *Integer*, …)."""
    return op_type.startswith("QLinear") or op_type in {"QGemm", "QAttention", "QEmbedLayerNormalization"} \
        or "Integer" in op_type or op_type.startswith("DynamicQuantize")


def optimized_graph(model, level):
    """ONNX Runtime's optimized graph of `model` at `level`, on one thread of the CPU provider."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "optimized.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = LEVELS[level]
        options.optimized_model_filepath = path
        options.intra_op_num_threads = 1
        ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return onnx.load(path).graph


def analyse(graph):
    """The counts this script prints, for an optimized graph."""
    initializers = {t.name for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)

    def constant(name):
        node = producer.get(name)
        if name in initializers or (node is not None and node.op_type == "Constant"):
            return True
        return node is not None and node.op_type == "DequantizeLinear" and constant(node.input[0])

    float_weighted = [n.name for n in graph.node
                      if n.op_type in WEIGHTED and len(n.input) > 1 and constant(n.input[1])]
    dq_q_pairs = [n.name for n in graph.node if n.op_type == "DequantizeLinear"
                  and any(r.op_type == "QuantizeLinear" for r in readers[n.output[0]])]
    float_compute = [n for n in graph.node
                     if n.op_type not in NOT_FLOAT_COMPUTE and not integer_kernel(n.op_type)]
    return {
        "ops": dict(sorted(collections.Counter(n.op_type for n in graph.node).items())),
        "float_weighted": float_weighted,
        "dq_q_pairs": dq_q_pairs,
        "float_compute": len(float_compute),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--level", choices=sorted(LEVELS), default="extended")
    args = parser.parse_args()
    try:
        print(json.dumps(analyse(optimized_graph(args.model, args.level))))
    except Exception as error:  # one line for the test that runs this script
        print(f"ort_fusion.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
