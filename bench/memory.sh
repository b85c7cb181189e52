#!/usr/bin/env bash
# Peak resident memory over model size (issue #27): aquant's DefaultQuantization and accuracy control on MLPs of
# seeded random weights stored as ONNX external data (scripts/make_big_model.py), and NNCF's quantize on the same
# models beside them.
#   bench/memory.sh [SIZES]     SIZES: any of small (90 MB), mid (420 MB), large (1.68 GB); default "small mid"
# Models go in ${AQUANT_MEMORY_DIR:-/tmp/aquant-memory} (made once, kept). The peak is the kernel's ru_maxrss of the
# process (file pages of the mapped model included); NNCF runs in the python3 on PATH (give a venv's first).
# Accuracy control stops after 3 revert steps (--max-iter 3): a deep random MLP's int8 model disagrees with FP32 on
# many of the 32 samples, and the large one would search for an hour; the peak comes in the first ranking pass.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-small mid}"
work="${AQUANT_MEMORY_DIR:-/tmp/aquant-memory}"
cargo build --release --quiet -p aquant-cli
aquant="$(realpath "${CARGO_TARGET_DIR:-target}")/release/aquant"
mkdir -p "$work"

layers() {
    case "$1" in
        small) echo "5 2120" ;;   # 90 MB, all-MiniLM-L6-v2's size
        mid) echo "25 2048" ;;    # 420 MB
        large) echo "100 2048" ;; # 1.68 GB
        *) echo "unknown size '$1' (small, mid, large)" >&2; exit 2 ;;
    esac
}

# peak LABEL MODEL_DIR COMMAND...: runs COMMAND, prints its peak RSS over the model's weight bytes.
peak() {
    python3 - "$@" <<'PY'
import json, resource, subprocess, sys, time
label, model_dir, command = sys.argv[1], sys.argv[2], sys.argv[3:]
weights = json.load(open(f"{model_dir}/made.json"))["weight_bytes"]
start = time.monotonic()
status = subprocess.call(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
seconds = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
print(f"| {model_dir.rsplit('/', 1)[-1]} | {weights / 1e6:.0f} MB | {label} | {peak / 1e9:.2f} GB | "
      f"**{peak / weights:.2f}×** | {seconds:.0f} s | {status} |")
PY
}

echo "| model | weights | run | peak RSS | peak / model | time | exit |"
echo "|---|---|---|---|---|---|---|"
for size in $sizes; do
    read -r n width <<<"$(layers "$size")"
    dir="$work/$size"
    if [ ! -f "$dir/made.json" ]; then
        python3 scripts/make_big_model.py "$dir" --layers "$n" --width "$width" --samples 32 > "$dir.json"
        mv "$dir.json" "$dir/made.json"
    fi
    peak "aquant default" "$dir" "$aquant" quantize --model "$dir/model.onnx" --calib "$dir/data.json" \
        --algorithm default -o "$work/out-$size-default" -q
    peak "aquant accuracy control (agreement, 32 samples)" "$dir" "$aquant" quantize --model "$dir/model.onnx" \
        --calib "$dir/data.json" --val "$dir/data.json" --metric agreement --max-drop 0.01 --max-iter 3 -o "$work/out-$size-aa" -q
    peak "NNCF $(python3 -c 'import nncf; print(nncf.__version__)') quantize" "$dir" \
        python3 bench/nncf_memory.py "$dir" "$work/out-$size-nncf.onnx"
done
