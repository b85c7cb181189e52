#!/usr/bin/env bash
# Peak resident memory of the README's accuracy-aware MobileNetV2 run, checked against the bound README.md states.
#   bench/peak_rss.sh [BOUND_MB]      (default: the README bound, 640)
# Exits 1 when the run fails (status 2) or its peak RSS exceeds the bound. The peak is the kernel's
# ru_maxrss of the aquant process (read through Python's resource module: no GNU time needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bound_mb="${1:-640}"
cargo build --release --quiet -p aquant-cli
aquant="${CARGO_TARGET_DIR:-target}/release/aquant"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python3 - "$bound_mb" "$aquant" quantize --model assets/imagenet/mobilenet_v2.onnx \
    --calib assets/imagenet/val.json --val assets/imagenet/val.json --metric top1 --max-drop 0.003 \
    -o "$out/mobilenet_v2" -q <<'PY'
import resource
import subprocess
import sys
import time

bound_mb, command = float(sys.argv[1]), sys.argv[2:]
start = time.monotonic()
status = subprocess.call(command, stdout=subprocess.DEVNULL)
seconds = time.monotonic() - start
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux reports KiB
print(f"mobilenet_v2 accuracy-aware: peak RSS {peak_mb:.0f} MB (bound {bound_mb:.0f} MB), "
      f"{seconds:.1f} s, exit status {status}")
sys.exit(0 if status in (0, 1) and peak_mb <= bound_mb else 1)
PY
