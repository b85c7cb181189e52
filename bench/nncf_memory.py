#!/usr/bin/env python3
"""NNCF's post-training quantization of a model written by scripts/make_big_model.py, as a new user runs it:
the model loaded with its external data, ``nncf.quantize`` on the data spec's inputs, the result saved with
external data. bench/memory.sh measures this process's peak RSS.

    python3 bench/nncf_memory.py MODEL_DIR OUTPUT.onnx
"""
import os
import sys

import nncf
import numpy as np
import onnx


def main():
    model_dir, output = sys.argv[1], sys.argv[2]
    model = onnx.load(os.path.join(model_dir, "model.onnx"))  # external data loaded beside it
    inputs = np.load(os.path.join(model_dir, "data_x.npy"))
    dataset = nncf.Dataset(list(inputs), lambda x: {"input": x[None, :]})
    quantized = nncf.quantize(model, dataset, subset_size=len(inputs))
    onnx.save(quantized, output, save_as_external_data=True, location=os.path.basename(output) + ".data")


if __name__ == "__main__":
    main()
