#!/usr/bin/env python3
"""aquant's accuracy-aware search with each evaluation engine (tract, ONNX Runtime, OpenVINO), side by side.

For each engine: wall time, reverted ops, the metric aquant reports for its final model, and that saved file
measured by ONNX Runtime (scripts/ort_eval.py) and by OpenVINO (scripts/ov_eval.py, with the precision its
Convolutions run in); then the top-1 agreement of the saved models' predictions with each other. Prints Markdown.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(script, model, data):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), "--model", model, "--data", data],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run(aquant, backend, model, data, drop, out):
    target = os.path.join(out, backend)
    command = [aquant, "quantize", "--model", model, "--calib", data, "--val", data, "--metric", "top1",
               "--max-drop", drop, "-o", target, "-q", "--backend", backend]
    start = time.time()
    status = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
    seconds = time.time() - start
    if status not in (0, 1):
        raise SystemExit(f"aquant failed ({status}): {' '.join(command)}")
    report = json.load(open(os.path.join(target, "report.json")))
    saved = os.path.join(target, "model.onnx")
    return {"backend": backend, "seconds": seconds, "report": report, "model": saved,
            "ort": measure("ort_eval.py", saved, data), "openvino": measure("ov_eval.py", saved, data)}


def agreement(a, b):
    return sum(x == y for x, y in zip(a, b)) / len(a)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--aquant", required=True)
    parser.add_argument("--case", default="mobilenet_v2")
    parser.add_argument("--max-drop", default="0.003")
    parser.add_argument("--out", default="/tmp/aquant-engines")
    parser.add_argument("--backends", default="tract,ort,openvino")
    args = parser.parse_args()
    model = os.path.join(ROOT, "assets", "imagenet", f"{args.case}.onnx")
    data = os.path.join(ROOT, "assets", "imagenet", "val.json")
    runs = [run(args.aquant, b, model, data, args.max_drop, args.out) for b in args.backends.split(",")]

    print(f"| engine | wall s | reverted ops | FP32 (aquant's engine) | final (aquant's engine) | final, ORT on the file | "
          f"final, OpenVINO on the file | OpenVINO Convolutions |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        m = r["report"]["metrics"][0] if "metrics" in r["report"] else {}
        convs = ", ".join(f"{n} {p}" for p, n in sorted(r["openvino"]["convolutions"].items()))
        print(f"| {r['backend']} | {r['seconds']:.1f} | {r['report']['reverted_ops']} | {m.get('baseline', '')} | "
              f"{m.get('final', '')} | {r['ort']['value']:.4f} | {r['openvino']['value']:.4f} | {convs} |")
    print()
    print("Top-1 prediction agreement of the saved models (rows measured by ONNX Runtime / by OpenVINO):")
    print()
    print("| | " + " | ".join(r["backend"] for r in runs) + " |")
    print("|---|" + "---|" * len(runs))
    for a in runs:
        cells = [f"{agreement(a['ort']['predictions'], b['ort']['predictions']):.4f} / "
                 f"{agreement(a['openvino']['predictions'], b['openvino']['predictions']):.4f}" for b in runs]
        print(f"| {a['backend']} | " + " | ".join(cells) + " |")
    print()
    print("ONNX Runtime ↔ OpenVINO agreement on the same file: " + ", ".join(
        f"{r['backend']} {agreement(r['ort']['predictions'], r['openvino']['predictions']):.4f}" for r in runs))


if __name__ == "__main__":
    main()
