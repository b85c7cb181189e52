#!/usr/bin/env python3
"""Write a small BERT-like encoder (ONNX, opset 17, seeded random weights) and an npy data spec for it.

    make_encoder.py OUT_DIR

OUT_DIR gets encoder.onnx (token + position embeddings, LayerNormalization, one 4-head self-attention layer
with an attention mask, an erf-GELU feed-forward, a classifier on the first token: the graph of a transformer
encoder as exporters write it, sequence length dynamic) and data.json with input_ids.npy / attention_mask.npy
(16 sequences of 12 tokens). The tests turn it into an IR with scripts/make_ir.py to check aquant's IR reader
on transformer ops. Prints one JSON line {"model": ..., "data": ...}.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB, HIDDEN, HEADS, FFN, MAX_LEN, CLASSES = 100, 64, 4, 128, 32, 2


def main(out):
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

    q = split(dense(x, "att/q", HIDDEN, HIDDEN), "att/qh", [0, 2, 1, 3])
    k = split(dense(x, "att/k", HIDDEN, HIDDEN), "att/kh", [0, 2, 3, 1])
    v = split(dense(x, "att/v", HIDDEN, HIDDEN), "att/vh", [0, 2, 1, 3])
    scores = node("Div", [node("MatMul", [q, k], "att/qk"), const("sqrt_dh", np.float32(np.sqrt(dh)))],
                  "att/scaled")
    mask = node("Cast", ["attention_mask"], "att/mask_f", to=TensorProto.FLOAT)
    mask = node("Unsqueeze", [mask, const("mask_axes", np.array([1, 2]))], "att/mask_4d")
    bias = node("Mul", [node("Sub", [const("one_f", np.float32(1)), mask], "att/inv"),
                        const("neg", np.float32(-10000))], "att/mask_bias")
    probs = node("Softmax", [node("Add", [scores, bias], "att/masked")], "att/probs", axis=-1)
    context = node("Transpose", [node("MatMul", [probs, v], "att/ctx")], "att/ctx_t", perm=[0, 2, 1, 3])
    context = node("Reshape", [context, const("merge_shape", np.array([0, 0, HIDDEN]))], "att/merged")
    x = layer_norm(node("Add", [x, dense(context, "att/out", HIDDEN, HIDDEN)], "att/residual"), "att/ln")
    h = dense(x, "ffn/in", HIDDEN, FFN)
    erf = node("Erf", [node("Div", [h, const("sqrt2", np.float32(np.sqrt(2)))], "ffn/div")], "ffn/erf")
    gelu = node("Mul", [node("Mul", [h, node("Add", [erf, const("one_g", np.float32(1))], "ffn/add1")],
                             "ffn/mul"), const("half", np.float32(0.5))], "ffn/gelu")
    x = layer_norm(node("Add", [x, dense(gelu, "ffn/out", FFN, HIDDEN)], "ffn/residual"), "ffn/ln")
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

    ids = rng.integers(0, VOCAB, (16, 12)).astype(np.int64)
    attention = np.ones((16, 12), np.int64)
    for i in range(16):
        attention[i, 12 - i % 5:] = 0  # padded tails of 0 to 4 tokens
    np.save(os.path.join(out, "input_ids.npy"), ids)
    np.save(os.path.join(out, "attention_mask.npy"), attention)
    with open(os.path.join(out, "data.json"), "w") as f:
        json.dump({"format": "npy", "inputs": {"input_ids": "input_ids.npy",
                                               "attention_mask": "attention_mask.npy"}}, f)
    print(json.dumps({"model": os.path.join(out, "encoder.onnx"), "data": os.path.join(out, "data.json")}))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # one clear line for the calling test
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
