#!/usr/bin/env bash
# Side-by-side run of NNCF quantize_with_accuracy_control and aquant (--backend auto, its default, and tract) on the
# same models, data, metric and max_drop, one after the other on this machine. Creates its own venv with pinned
# packages (bench/requirements.txt) and prints Markdown tables (see bench/compare.py).
#   bench/compare_nncf.sh                     the four standard cases
#   bench/compare_nncf.sh [CASE MAX_DROP]...  chosen cases (mnist_cnn, mobilenet_v2, efficientnet_lite0)
#   bench/compare_nncf.sh --levers CASE DROP  aquant with each evaluation shortcut switched off
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${AQUANT_BENCH_VENV:-$HOME/.cache/aquant-bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
cargo build --release --quiet
aquant="${CARGO_TARGET_DIR:-target}/release/aquant"
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8|amx_bf16' | xargs)
echo "$(date -u +%F) on $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) (int8 flags: ${flags:-none})"
echo
exec "$venv/bin/python" bench/compare.py --aquant "$aquant" "$@"
