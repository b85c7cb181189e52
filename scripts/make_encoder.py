#!/usr/bin/env python3
"""Write a BERT-like encoder (ONNX, opset 17, seeded random weights) and an npy data spec for it.

    make_encoder.py OUT_DIR [--layers N --hidden H --heads A --ffn F --seq S --samples K]

OUT_DIR gets encoder.onnx (token + position embeddings, LayerNormalization, N self-attention layers with an
attention mask, each with an erf-GELU feed-forward, a classifier on the first token: the graph of a transformer
encoder as exporters write it, sequence length dynamic) and data.json with input_ids.npy / attention_mask.npy
(K sequences of S tokens). The defaults (1 layer, hidden 64, 4 heads, 16 sequences of 12 tokens) are the small
model the tests use (they turn it into an IR with scripts/make_ir.py to check aquant's IR reader on transformer
ops); bench/latency.py times a realistic size (6 layers, hidden 384, 6 heads, seq 64), the size of
all-MiniLM-L6-v2. Prints one JSON line {"model": ..., "data": ...}.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, CLASSES = 100, 2


def main(out, size):
    HIDDEN, HEADS, FFN, SEQ = size.hidden, size.heads, size.ffn or 2 * size.hidden, size.seq
    MAX_LEN = max(32, SEQ)
    rng = np.random.default_rng(0)
    inits = []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(name, *shape, scale=0.1):
        return const(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    nodes = []

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def layer_norm(x, name):
        return node("LayerNormalization", [x, const(f"{name}.g", np.ones(HIDDEN, np.float32) + 0.05),
                                           weight(f"{name}.b", HIDDEN)], name, axis=-1, epsilon=1e-12)

    def dense(x, name, n_in, n_out):
        return node("Add", [node("MatMul", [x, weight(f"{name}.w", n_in, n_out)], f"{name}/mm"),
                            weight(f"{name}.bias", n_out)], name)

    dh = HIDDEN // HEADS
    words = node("Gather", [weight("emb.words", VOCAB, HIDDEN, scale=1.0), "input_ids"], "emb/words", axis=0)
    length = node("Gather", [node("Shape", ["input_ids"], "emb/shape"), const("one_i", np.array(1))],
                  "emb/len", axis=0)
    positions = node("Range", [const("zero_i", np.array(0)), length, const("step_i", np.array(1))], "emb/range")
    pos = node("Gather", [weight("emb.pos", MAX_LEN, HIDDEN, scale=1.0), positions], "emb/pos", axis=0)
    x = layer_norm(node("Add", [words, pos], "emb/sum"), "emb/ln")

    heads_shape = const("heads_shape", np.array([0, 0, HEADS, dh]))

    def split(t, name, perm):
        return node("Transpose", [node("Reshape", [t, heads_shape], f"{name}/reshape")], name, perm=perm)

    shared_names = {}

    def shared(name, array):
        """A constant every layer reads: one initializer."""
        if name not in shared_names:
            shared_names[name] = const(name, array)
        return shared_names[name]

    for layer in range(size.layers):
        p = "" if layer == 0 else f"l{layer}/"
        q = split(dense(x, f"{p}att/q", HIDDEN, HIDDEN), f"{p}att/qh", [0, 2, 1, 3])
        k = split(dense(x, f"{p}att/k", HIDDEN, HIDDEN), f"{p}att/kh", [0, 2, 3, 1])
        v = split(dense(x, f"{p}att/v", HIDDEN, HIDDEN), f"{p}att/vh", [0, 2, 1, 3])
        scores = node("Div", [node("MatMul", [q, k], f"{p}att/qk"), shared("sqrt_dh", np.float32(np.sqrt(dh)))],
                      f"{p}att/scaled")
        mask = node("Cast", ["attention_mask"], f"{p}att/mask_f", to=TensorProto.FLOAT)
        mask = node("Unsqueeze", [mask, shared("mask_axes", np.array([1, 2]))], f"{p}att/mask_4d")
        bias = node("Mul", [node("Sub", [shared("one_f", np.float32(1)), mask], f"{p}att/inv"),
                            shared("neg", np.float32(-10000))], f"{p}att/mask_bias")
        probs = node("Softmax", [node("Add", [scores, bias], f"{p}att/masked")], f"{p}att/probs", axis=-1)
        context = node("Transpose", [node("MatMul", [probs, v], f"{p}att/ctx")], f"{p}att/ctx_t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, shared("merge_shape", np.array([0, 0, HIDDEN]))], f"{p}att/merged")
        x = layer_norm(node("Add", [x, dense(context, f"{p}att/out", HIDDEN, HIDDEN)], f"{p}att/residual"), f"{p}att/ln")
        h = dense(x, f"{p}ffn/in", HIDDEN, FFN)
        erf = node("Erf", [node("Div", [h, shared("sqrt2", np.float32(np.sqrt(2)))], f"{p}ffn/div")], f"{p}ffn/erf")
        gelu = node("Mul", [node("Mul", [h, node("Add", [erf, shared("one_g", np.float32(1))], f"{p}ffn/add1")],
                                 f"{p}ffn/mul"), shared("half", np.float32(0.5))], f"{p}ffn/gelu")
        x = layer_norm(node("Add", [x, dense(gelu, f"{p}ffn/out", FFN, HIDDEN)], f"{p}ffn/residual"), f"{p}ffn/ln")
    first = node("Gather", [x, const("zero_idx", np.array(0))], "pool/first", axis=1)
    logits = dense(node("Tanh", [dense(first, "pool/dense", HIDDEN, HIDDEN)], "pool/tanh"), "logits",
                   HIDDEN, CLASSES)

    graph = helper.make_graph(
        nodes, "encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["N", "S"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["N", "S"])],
        [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["N", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "encoder.onnx"))

    ids = rng.integers(0, VOCAB, (size.samples, SEQ)).astype(np.int64)
    attention = np.ones((size.samples, SEQ), np.int64)
    for i in range(size.samples):
        attention[i, SEQ - i % 5:] = 0  # padded tails of 0 to 4 tokens
    np.save(os.path.join(out, "input_ids.npy"), ids)
    np.save(os.path.join(out, "attention_mask.npy"), attention)
    with open(os.path.join(out, "data.json"), "w") as f:
        json.dump({"format": "npy", "inputs": {"input_ids": "input_ids.npy",
                                               "attention_mask": "attention_mask.npy"}}, f)
    print(json.dumps({"model": os.path.join(out, "encoder.onnx"), "data": os.path.join(out, "data.json")}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=0, help="feed-forward width (default: 2 × hidden)")
    parser.add_argument("--seq", type=int, default=12)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    try:
        main(args.out, args)
    except Exception as e:  # one clear line for the calling test
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
