#!/usr/bin/env bash
# Marching cubes on 257³ volumes (a 256³ grid of cells): ORFEAS against scikit-image's Lewiner
# implementation, side by side on the same samples, both pinned to one core.
#
#   bash bench/mc_vs_skimage.sh
#
# Needs python3; scikit-image is installed into $ORFEAS_TOOLS_DIR/bench-venv on first use.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
if [ ! -x "$tools/bench-venv/bin/python" ]; then
  python3 -m venv "$tools/bench-venv"
  "$tools/bench-venv/bin/pip" install --quiet --disable-pip-version-check scikit-image==0.26.0 numpy==2.4.6
fi
cargo build --release -q --workspace --example mc_bench
bin="$CARGO_TARGET_DIR/release/examples/mc_bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
n=257
repeat=${REPEAT:-5}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one core used"
for shape in sphere inflate gyroid; do
  ours=$(taskset -c 0 "$bin" "$shape" "$n" "$tmp/$shape.raw" "$repeat")
  theirs=$(taskset -c 0 "$tools/bench-venv/bin/python" bench/mc_vs_skimage.py "$tmp/$shape.raw" "$n" "$repeat" "$shape")
  echo "$ours"
  echo "$theirs"
  python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'{a[\"shape\"]}: orfeas {a[\"median_s\"]*1000:.1f} ms, skimage {b[\"median_s\"]*1000:.1f} ms, speed-up {b[\"median_s\"]/a[\"median_s\"]:.2f}x')" "$ours" "$theirs"
done
