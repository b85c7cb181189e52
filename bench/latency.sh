#!/usr/bin/env bash
# INT8 latency side by side (issue #25, bench/latency.py): FP32, aquant's default, onnxruntime quantize_static
# (and quantize_dynamic for the transformer encoder) and NNCF (if installed) on ONNX Runtime and OpenVINO,
# 1 thread, batch 1, with the CPU's flags: on a CPU without VNNI int8 kernels may not be faster than FP32.
# Needs scripts/requirements.txt and scripts/requirements-openvino.txt installed (nncf optional).
#   bench/latency.sh [MODEL ...]        default: mnist_cnn mobilenet_v2 efficientnet_lite0 encoder
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p aquant-cli
aquant="${CARGO_TARGET_DIR:-target}/release/aquant"
echo "$(date -u '+%F %H:%M')"
python3 bench/latency.py --aquant "$aquant" ${1:+--models "$@"}
echo
echo "done $(date -u '+%F %H:%M'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
