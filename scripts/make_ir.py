#!/usr/bin/env python3
"""Convert an ONNX model to an OpenVINO IR (.xml + .bin) with the openvino package, as users make theirs.

    make_ir.py MODEL.onnx OUT.xml [--fp16]

Weights stay f32 unless --fp16 (OpenVINO's default compress_to_fp16: f16 Consts behind Converts). Prints one
JSON line: {"xml": ..., "bin": ..., "ops": {type: count}, "version": ...}. The tests make their IR fixtures with
it at test time, so no IR is checked in. Exit status 2 with a one-line message on any error.
"""
import argparse
import json
import os
import sys
from collections import Counter

import openvino as ov


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("xml")
    parser.add_argument("--fp16", action="store_true")
    args = parser.parse_args()
    model = ov.convert_model(args.model)
    ov.save_model(model, args.xml, compress_to_fp16=args.fp16)
    ops = Counter(op.get_type_name() for op in model.get_ordered_ops())
    print(json.dumps({"xml": args.xml, "bin": os.path.splitext(args.xml)[0] + ".bin", "ops": dict(ops),
                      "version": ov.__version__.split("-")[0]}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line for the calling test
        print(f"error: {type(e).__name__}: {e}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
