#!/usr/bin/env bash
# MobileNetV2 at max_drop 0.003, side by side in one run: the CLI's built-in top1; aquant from Python with a
# Python per-sample top-1 (with metric_bounds, and without: every ranking candidate on the whole subset); aquant
# with an NNCF validation_fn; and NNCF's quantize_with_accuracy_control with that same validation_fn (NNCF from
# the bench venv, see bench/compare_nncf.sh). Prints the CPU flags and load, then one JSON line per way.
#
#   WAYS="cli metric metric_unbounded validation_fn:ort nncf" bench/python_overhead.sh   (the default)
#
# A way is one of cli, metric, metric_unbounded, validation_fn, nncf, with :BACKEND (tract, ort, openvino) for the
# aquant ways run from Python (default tract, as the CLI's).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
venv="${AQUANT_BENCH_VENV:-$HOME/.cache/aquant-bench-venv}"
ways="${WAYS:-cli metric metric_unbounded validation_fn:ort nncf}"
echo "cpu: $(grep -o 'avx2\|avx512_vnni\|avx_vnni' /proc/cpuinfo | sort -u | tr '\n' ' ')$(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
for way in $ways; do
  name=${way%%:*}; backend=tract; [[ $way == *:* ]] && backend=${way#*:}
  case $name in
    cli)
      start=$(date +%s.%N)
      "$CARGO_TARGET_DIR/release/aquant" quantize --model assets/imagenet/mobilenet_v2.onnx \
        --calib assets/imagenet/val.json --val assets/imagenet/val.json --metric top1 --max-drop 0.003 \
        -o "$out/cli" --quiet >/dev/null || true
      python3 -c "import json; r=json.load(open('$out/cli/report.json')); print(json.dumps({'way': 'cli', 'backend': 'tract', 'final': r['metrics'][0]['final'], 'reverted_ops': r['reverted_ops'], 'samples_inferred': r['evaluations']['samples_inferred'], 'seconds': round($(date +%s.%N) - $start, 1)}))"
      ;;
    nncf) "$venv/bin/python" bench/python_overhead.py --way nncf ;;
    *) python3 bench/python_overhead.py --way "$name" --backend "$backend" ;;
  esac
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
