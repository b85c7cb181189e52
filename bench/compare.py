#!/usr/bin/env python3
"""Side-by-side benchmark: NNCF quantize_with_accuracy_control vs aquant (`--backend auto`, its default, and tract).

Run through bench/compare_nncf.sh, which makes the venv and builds aquant. For each case (model, max_drop) it
runs NNCF, then aquant with each backend, one after the other on this machine, and prints a Markdown table:
FP32 / INT8 / final top-1 (all measured by ONNX Runtime on each tool's saved model), reverted ops, wall time,
aquant/NNCF, aquant's lower bound (calibration + one FP32 + one INT8 full evaluation on its engine, from its own
report) and its time over that bound. `auto` is named with the engine it chose (`auto (= ort)`). With --levers CASE DROP it instead runs aquant with each evaluation shortcut switched off
(AQUANT_LEVERS=a,b,... to measure only some: without early-stop a run takes several minutes).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CASES = ["mnist_cnn", "0.01", "mobilenet_v2", "0.01", "mobilenet_v2", "0.003", "efficientnet_lite0", "0.003"]
LEVERS = os.environ.get("AQUANT_LEVERS", "early-stop,reuse,cohorts,prefix-cache").split(",")


def paths(case):
    if case == "mnist_cnn":
        d = os.path.join(ROOT, "assets", "mnist_cnn")
        return os.path.join(d, "mnist_cnn.onnx"), os.path.join(d, "calib.json"), os.path.join(d, "val.json")
    d = os.path.join(ROOT, "assets", "imagenet")
    return os.path.join(d, f"{case}.onnx"), os.path.join(d, "val.json"), os.path.join(d, "val.json")


def ort_top1(model, data):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "ort_eval.py"), "--model", model,
                          "--data", data], check=True, capture_output=True, text=True).stdout
    return json.loads(out)["value"]


def run_nncf(case, drop, out):
    output = os.path.join(out, f"nncf_{case}_{drop}.onnx")
    log = open(os.path.join(out, "nncf.log"), "a")
    line = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "nncf_run.py"), "--case", case,
                           "--max-drop", drop, "--output", output],
                          check=True, stdout=subprocess.PIPE, stderr=log, text=True).stdout.strip().splitlines()[-1]
    result = json.loads(line)
    result["model"] = output
    return result


def run_aquant(aquant, case, drop, out, backend, without=()):
    model, calib, val = paths(case)
    target = os.path.join(out, f"aquant_{case}_{drop}_{backend}_{'-'.join(without) or 'all'}")
    command = [aquant, "quantize", "--model", model, "--calib", calib, "--val", val, "--metric", "top1",
               "--max-drop", drop, "-o", target, "-q", "--backend", backend]
    if without:
        command += ["--without", ",".join(without)]
    start = time.time()
    status = subprocess.run(command, stdout=subprocess.DEVNULL).returncode
    seconds = time.time() - start
    if status not in (0, 1):
        raise SystemExit(f"aquant failed ({status}): {' '.join(command)}")
    report = json.load(open(os.path.join(target, "report.json")))
    t = report["timings_s"]
    return {"seconds": seconds, "reverted_ops": report["reverted_ops"], "report": report,
            "model": os.path.join(target, "model.onnx"),
            "lower_bound": t["calibration"] + t["fp32_eval"] + t["int8_eval"]}


def compare(aquant, cases, out):
    print("| case | max_drop | tool | FP32 | INT8 | final | reverted ops | wall s | aquant/NNCF | lower bound s "
          "| aquant/lower bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case, drop in zip(cases[::2], cases[1::2]):
        model, _, val = paths(case)
        fp32 = ort_top1(model, val)
        nncf = run_nncf(case, drop, out)
        print(f"| {case} | {drop} | NNCF {nncf['version']} | {fp32:.4f} | | {ort_top1(nncf['model'], val):.4f} "
              f"| {nncf['reverted_ops']} | {nncf['seconds']:.1f} | | | |", flush=True)
        for backend in ("auto", "tract"):
            a = run_aquant(aquant, case, drop, out, backend)
            metric = a["report"]["metrics"][0]
            int8 = ort_top1(os.path.join(os.path.dirname(a["model"]), "intermediate", "00_quantized.onnx"), val) \
                if os.path.exists(os.path.join(os.path.dirname(a["model"]), "intermediate", "00_quantized.onnx")) \
                else metric["quantized"]
            chosen = a["report"]["backend"]["name"]
            tool = f"aquant {backend}" + (f" (= {chosen})" if chosen != backend else "")
            print(f"| {case} | {drop} | {tool} | {fp32:.4f} | {int8:.4f} | {ort_top1(a['model'], val):.4f} "
                  f"| {a['reverted_ops']} | {a['seconds']:.1f} | {a['seconds'] / nncf['seconds']:.3f} "
                  f"| {a['lower_bound']:.1f} | {a['seconds'] / a['lower_bound']:.2f} |", flush=True)


def levers(aquant, case, drop, out):
    print(f"Levers on {case} max_drop {drop}: aquant with every shortcut, then with one switched off.\n")
    print("| backend | switched off | wall s | ranking s | samples inferred | engine run s | reverted | same result |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in ("auto", "tract"):
        base = None
        for without in [()] + [(lever,) for lever in LEVERS]:
            a = run_aquant(aquant, case, drop, out, backend, without)
            r = a["report"]
            key = (r["reverted"], [(s["group"], s["metric"], s["kept"]) for s in r["steps"]])
            base = base or key
            print(f"| {backend} | {', '.join(without) or '(none)'} | {a['seconds']:.1f} | {r['timings_s']['ranking']:.1f} "
                  f"| {r['evaluations']['samples_inferred']} | {r['profile']['run_s']:.1f} | {r['reverted_ops']} "
                  f"| {'yes' if key == base else 'NO'} |", flush=True)


def use_this_onnxruntime():
    """aquant's ONNX Runtime backend loads the library of the venv's onnxruntime package (the one NNCF uses)."""
    import glob
    import onnxruntime
    libs = sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))
    if libs:
        os.environ.setdefault("ORT_DYLIB_PATH", libs[-1])


def main():
    use_this_onnxruntime()
    parser = argparse.ArgumentParser()
    parser.add_argument("--aquant", required=True)
    parser.add_argument("--levers", action="store_true", help="measure each evaluation shortcut on one case")
    parser.add_argument("cases", nargs="*", help="CASE MAX_DROP pairs")
    args = parser.parse_args()
    cases = args.cases or DEFAULT_CASES
    if len(cases) % 2:
        raise SystemExit("cases come in CASE MAX_DROP pairs")
    with tempfile.TemporaryDirectory() as out:
        if args.levers:
            levers(args.aquant, cases[0], cases[1], out)
        else:
            compare(args.aquant, cases, out)


if __name__ == "__main__":
    main()
