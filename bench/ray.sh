#!/usr/bin/env bash
# Accuracy control's evaluations on Ray (issue #29): MobileNetV2 at max_drop 0.003 (built-in top1, ONNX Runtime,
# shards of 16 samples) searched locally, then with a RayExecutor of 1, 2 and 4 worker processes on a local Ray.
# Prints the CPU flags and load, then one JSON line per run (bench/ray_bench.py says what the fields are).
#
#   WORKERS="0 1 2 4" bench/ray.sh        (0: the local search; the default)
#   PYTHON=/path/to/venv/bin/python bench/ray.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
echo "cpu: $(grep -o 'avx2\|avx512_vnni\|avx_vnni\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')$(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for workers in ${WORKERS:-0 1 2 4}; do
  "$python" bench/ray_bench.py --workers "$workers" --shard-size "${SHARD_SIZE:-16}"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
