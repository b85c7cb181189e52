#!/usr/bin/env bash
# aquant's accuracy-aware search evaluated by tract, ONNX Runtime and OpenVINO, side by side (bench/engines.py):
# time, reverted ops, final metric, each saved model measured by ONNX Runtime and OpenVINO, agreement.
# Needs scripts/requirements.txt and scripts/requirements-openvino.txt installed.
#   bench/engines.sh [CASE [MAX_DROP]]        default: mobilenet_v2 0.003
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p aquant-cli
aquant="${CARGO_TARGET_DIR:-target}/release/aquant"
echo "$(date -u '+%F %H:%M') on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "CPU flags: $(grep -o 'avx2\|avx512_vnni\|avx512_bf16\|amx_int8' /proc/cpuinfo | sort -u | xargs)," \
  "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 bench/engines.py --aquant "$aquant" --case "${1:-mobilenet_v2}" --max-drop "${2:-0.003}"
echo
echo "done $(date -u '+%F %H:%M'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
