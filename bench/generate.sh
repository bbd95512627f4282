#!/usr/bin/env bash
# End-to-end `orfeas generate` on a 1024x1024 photo-like JPEG (samples/apple.jpg, background
# removed by segmentation) at resolution 256, GLB output, pinned to one core. Prints the wall
# time of each run (process start to exit, model-free) and the per-stage table of the last run.
#
#   bash bench/generate.sh            # RUNS=7 by default
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
cargo build --release -q -p orfeas
bin="$CARGO_TARGET_DIR/release/orfeas"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
runs=${RUNS:-7}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; one core used"
times=()
for i in $(seq "$runs"); do
  start=$(date +%s.%N)
  taskset -c 0 "$bin" generate samples/apple.jpg --resolution 256 --format glb --out "$tmp" --quiet > "$tmp/table.txt"
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc -l)")
done
printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "wall seconds over %d runs: best %.3f, median %.3f, worst %.3f\n", NR, a[1], a[int((NR + 1) / 2)], a[NR] }'
cat "$tmp/table.txt"
