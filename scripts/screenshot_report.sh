#!/usr/bin/env bash
# Screenshot of a run's report.html as a person sees it: headless Chromium (Debian's `chromium` package) at
# 1280 px width, the whole page, to a PNG.
#
#   scripts/screenshot_report.sh OUT_DIR [PNG]     # default PNG: OUT_DIR/report.png
#
# The page is rendered from OUT_DIR/report.json first (`aquant report OUT_DIR`, through cargo unless AQUANT
# names a binary), so the screenshot always shows this checkout's renderer. Needs `chromium`; with
# `imagemagick` the PNG is cropped to the page, with `pngquant` it is stored with a palette (all three:
# apt-get install chromium imagemagick pngquant).
set -euo pipefail

out_dir=${1:?usage: scripts/screenshot_report.sh OUT_DIR [PNG]}
png=${2:-$out_dir/report.png}
width=1280
repo=$(cd "$(dirname "$0")/.." && pwd)

command -v chromium >/dev/null || { echo "error: chromium is not installed (apt-get install chromium)" >&2; exit 2; }
if [[ -n "${AQUANT:-}" ]]; then
    "$AQUANT" report "$out_dir" >/dev/null
else
    cargo run --release --quiet --manifest-path "$repo/Cargo.toml" -- report "$out_dir" >/dev/null
fi
page=$(cd "$out_dir" && pwd)/report.html

# Chromium needs the page's height for a full-page shot: a first pass at a tall window, then the PNG is
# trimmed to the content below (the page's background is one colour).
height=${HEIGHT:-6000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
    --user-data-dir="$tmp/profile" --window-size="$width,$height" --screenshot="$tmp/shot.png" \
    "file://$page" 2>"$tmp/chromium.log" || { cat "$tmp/chromium.log" >&2; exit 2; }
# ImageMagick (its `identify` finds the real `convert`, not a stand-in of the same name earlier in PATH) crops
# to the content plus the page's bottom margin; pngquant then stores a 24-colour palette (text stays sharp,
# the file small enough to commit).
cp "$tmp/shot.png" "$tmp/page.png"
if identify=$(command -v identify); then
    convert=$(dirname "$identify")/convert
    read -r content_h offset_y < <("$convert" "$tmp/shot.png" -trim -format '%h %Y\n' info:)
    "$convert" "$tmp/shot.png" -crop "${width}x$((content_h + offset_y + 24))+0+0" +repage "$tmp/page.png"
fi
if command -v pngquant >/dev/null; then
    pngquant --force --speed 1 --output "$png" 24 "$tmp/page.png"
else
    cp "$tmp/page.png" "$png"
fi
echo "$png"
