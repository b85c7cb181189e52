#!/usr/bin/env bash
# Side-by-side run of NNCF quantize_with_accuracy_control and aquant on the same model, data, metric and
# max_drop, one after the other on this machine. Creates its own venv with pinned packages.
#   bench/compare_nncf.sh [CASE MAX_DROP]...      (default: mobilenet_v2 0.003)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${AQUANT_BENCH_VENV:-$HOME/.cache/aquant-bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
cargo build --release --quiet
aquant=target/release/aquant
[ -x "$aquant" ] || aquant="${CARGO_TARGET_DIR:-target}/release/aquant"
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(mobilenet_v2 0.003)
out=$(mktemp -d)
printf '| case | max_drop | tool | FP32 (ORT) | INT8 final (ORT) | reverted ops | wall s | aquant/NNCF |\n|---|---|---|---|---|---|---|---|\n'
for ((i = 0; i < ${#cases[@]}; i += 2)); do
  case="${cases[i]}"; drop="${cases[i+1]}"
  if [ "$case" = mnist_cnn ]; then model=assets/mnist_cnn/mnist_cnn.onnx calib=assets/mnist_cnn/calib.json val=assets/mnist_cnn/val.json
  else model=assets/imagenet/$case.onnx calib=assets/imagenet/val.json val=assets/imagenet/val.json; fi
  nncf_json=$("$venv/bin/python" bench/nncf_run.py --case "$case" --max-drop "$drop" --output "$out/nncf_$case.onnx" 2>"$out/nncf.log" | tail -1)
  start=$(date +%s.%N)
  "$aquant" quantize --model "$model" --calib "$calib" --val "$val" --metric top1 --max-drop "$drop" -o "$out/aquant_$case" -q >/dev/null || true
  aquant_s=$(echo "$(date +%s.%N) - $start" | bc)
  fp32=$("$venv/bin/python" scripts/ort_eval.py --model "$model" --data "$val" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  n_final=$("$venv/bin/python" scripts/ort_eval.py --model "$out/nncf_$case.onnx" --data "$val" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  a_final=$("$venv/bin/python" scripts/ort_eval.py --model "$out/aquant_$case/model.onnx" --data "$val" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["value"])')
  n_s=$(echo "$nncf_json" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  n_rev=$(echo "$nncf_json" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["reverted_ops"])')
  a_rev=$("$venv/bin/python" -c "import json; print(json.load(open('$out/aquant_$case/report.json'))['reverted_ops'])")
  ratio=$(echo "scale=3; $aquant_s / $n_s" | bc)
  printf '| %s | %s | NNCF | %.4f | %.4f | %s | %.1f | |\n' "$case" "$drop" "$fp32" "$n_final" "$n_rev" "$n_s"
  printf '| %s | %s | aquant | %.4f | %.4f | %s | %.1f | %s |\n' "$case" "$drop" "$fp32" "$a_final" "$a_rev" "$aquant_s" "$ratio"
done
