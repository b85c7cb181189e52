#!/usr/bin/env bash
# tract ↔ ONNX Runtime top-1 agreement on each bundled INT8 model (default quantization): tract running aquant's
# evaluation form (what the search judges) against ONNX Runtime with default optimizations (its int8 kernels)
# running the saved QDQ model, with the CPU's int8 features. ONNX Runtime's kernels depend on the CPU: on one
# without VNNI they saturate int16 pair sums, which the evaluation form does not model.
#   bench/agreement.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "$(date -u +%F) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
cargo test --release --quiet -p aquant-cli --test fidelity -- --ignored --exact bench_tract_onnx_runtime_agreement \
  --nocapture 2>&1 | grep '^agreement'
