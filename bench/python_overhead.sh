#!/usr/bin/env bash
# MobileNetV2 at max_drop 0.003, side by side in one run: the CLI's built-in top1, aquant from Python with a
# Python per-sample top-1 (with and without metric_bounds) and with an NNCF validation_fn (tract and ONNX Runtime), and NNCF's quantize_with_accuracy_control with that
# same validation_fn (NNCF from the bench venv, see bench/compare_nncf.sh). Prints one JSON line per way.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
venv="${AQUANT_BENCH_VENV:-$HOME/.cache/aquant-bench-venv}"
grep -o 'avx2\|avx512_vnni' /proc/cpuinfo | sort -u | tr '\n' ' '; echo
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
"$CARGO_TARGET_DIR/release/aquant" quantize --model assets/imagenet/mobilenet_v2.onnx --calib assets/imagenet/val.json \
  --val assets/imagenet/val.json --metric top1 --max-drop 0.003 -o "$out/cli" --quiet >/dev/null || true
python3 -c "import json,sys; r=json.load(open('$out/cli/report.json')); print(json.dumps({'way': 'cli', 'final': r['metrics'][0]['final'], 'reverted_ops': r['reverted_ops'], 'samples_inferred': r['evaluations']['samples_inferred'], 'seconds': round($(date +%s.%N) - $start, 1)}))"
python3 bench/python_overhead.py --way metric
python3 bench/python_overhead.py --way metric_unbounded
python3 bench/python_overhead.py --way validation_fn
python3 bench/python_overhead.py --way validation_fn --backend ort
"$venv/bin/python" bench/python_overhead.py --way nncf
