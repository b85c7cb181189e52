#!/usr/bin/env python3
"""Write a big MLP with seeded random weights as ONNX external data, and a data spec to quantize it with.

The model is LAYERS blocks of MatMul(WIDTH×WIDTH) + Add(bias) + Relu, then a MatMul to CLASSES logits: about
4·LAYERS·WIDTH² bytes of float32 weights (25 layers of 2048: 420 MB; 100: 1.68 GB; 128 of 2048 past 2 GiB).
Weights are written as external data (one file per tensor, as `onnx.save_model(..., all_tensors_to_one_file=
False)` does, or `--one-file` for ONNX's single `.data` file), never held in memory all at once, so a model
bigger than the machine's free memory can be written. `data.json` (npy spec) has SAMPLES random inputs; no
labels (quantize it with `--metric agreement`).

    python3 scripts/make_big_model.py OUT_DIR [--layers 25] [--width 2048] [--samples 64] [--seed 0] [--one-file]

bench/memory.sh writes its models with it.
"""
import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper


def external_tensor(name, array, out_dir, location, offset):
    """A TensorProto pointing at `array`'s bytes, appended to `out_dir/location` at `offset`."""
    with open(os.path.join(out_dir, location), "ab") as f:
        f.write(array.tobytes())
    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=array.shape)
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(array.nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--layers", type=int, default=25)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one-file", action="store_true", help="every tensor in model.onnx.data")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for name in os.listdir(args.out_dir):
        if name.startswith("model.onnx") or name.endswith(".bin"):
            os.remove(os.path.join(args.out_dir, name))
    rng = np.random.default_rng(args.seed)
    offset = 0

    def weight(name, shape, scale):
        nonlocal offset
        array = (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)
        location = "model.onnx.data" if args.one_file else f"{name}.bin"
        start = offset if args.one_file else 0
        offset = offset + array.nbytes if args.one_file else 0
        return external_tensor(name, array, args.out_dir, location, start)

    initializers, nodes, x = [], [], "input"
    scale = np.sqrt(2.0 / args.width)  # He initialisation keeps activations of a deep ReLU MLP in range
    for i in range(args.layers):
        initializers += [weight(f"w{i}", (args.width, args.width), scale), weight(f"b{i}", (args.width,), 0.01)]
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"], name=f"matmul{i}"),
            helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"], name=f"add{i}"),
            helper.make_node("Relu", [f"add{i}"], [f"relu{i}"], name=f"relu{i}"),
        ]
        x = f"relu{i}"
    initializers.append(weight("w_out", (args.width, args.classes), scale))
    nodes.append(helper.make_node("MatMul", [x, "w_out"], ["logits"], name="classifier"))
    graph = helper.make_graph(
        nodes, "big_mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", args.width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", args.classes])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_big_model")
    model.ir_version = 8
    with open(os.path.join(args.out_dir, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    inputs = rng.standard_normal((args.samples, args.width), dtype=np.float32)
    np.save(os.path.join(args.out_dir, "data_x.npy"), inputs)
    with open(os.path.join(args.out_dir, "data.json"), "w") as f:
        json.dump({"format": "npy", "inputs": {"input": "data_x.npy"}}, f)
    weights = sum(4 * np.prod(t.dims) for t in initializers)
    print(json.dumps({"model": os.path.join(args.out_dir, "model.onnx"), "weight_bytes": int(weights)}))


if __name__ == "__main__":
    main()
