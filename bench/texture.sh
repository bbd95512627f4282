#!/usr/bin/env bash
# The non-diffusion half of texturing on this CPU, and our atlases beside xatlas's.
#
#   1. A 40k-face mesh from the default path (samples/apple.jpg, inflate, R 256, the default
#      face budget): unwrap + normal/position maps of the six reference views at 2048² + a bake
#      of six 2048² view images into a 2048² texture + inpainting (pipeline/examples/texture_bench).
#   2. UV quality, side by side with xatlas (the reference's unwrapper, default options) on
#      analytic meshes, a bumpy 40k-face sphere, inflate's 40k-face apple and a hunyuan3d mesh:
#      bench/uv_quality.py (charts, stretch, packing, overlaps, time).
#
#   bash bench/texture.sh
#
# Needs the venv of bench/uv_quality.py at $UVQ_PY (its header gives the recipe).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
UVQ_PY="${UVQ_PY:-$HOME/.cache/orfeas/tools/uvq-venv/bin/python}"
cargo build -q --release -p orfeas
cargo build -q --release --workspace --example texture_bench
bin="$CARGO_TARGET_DIR/release"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

"$bin/orfeas" generate samples/apple.jpg --resolution 256 --texture none --format obj --out "$tmp" --quiet > /dev/null
# A mesh of the other engine: hunyuan3d on the bundled tiny random-weight checkpoint (its
# surfaces are noisy blobs, a harder case for charting than inflate's smooth solids).
"$bin/orfeas" generate samples/vase.png --engine hunyuan3d --weights pipeline/tests/fixtures/hunyuan3d/tiny \
  --resolution 128 --steps 4 --texture none --format obj --out "$tmp/h3d" --quiet > /dev/null
echo "== stages, both cores"
"$bin/examples/texture_bench" stages "$tmp/apple.obj" --render 2048 --texture 2048
echo "== stages, one core"
RAYON_NUM_THREADS=1 taskset -c 0 "$bin/examples/texture_bench" stages "$tmp/apple.obj" --render 2048 --texture 2048

echo "== atlases: ours (uvunwrap) beside xatlas"
"$UVQ_PY" bench/uv_quality.py --make-samples "$tmp/samples" > /dev/null
inputs=()
ours=()
for m in "$tmp"/samples/icosphere.obj "$tmp"/samples/torus.obj "$tmp"/samples/cube.obj "$tmp"/samples/bumpy40k.obj "$tmp/apple.obj" "$tmp/h3d/vase.obj"; do
  name="$(basename "$m" .obj)"
  "$bin/examples/texture_bench" unwrap "$m" "$tmp/$name.ours.obj" --texture 1024
  inputs+=("$m"); ours+=(--ours "$tmp/$name.ours.obj")
done
taskset -c 0 "$UVQ_PY" bench/uv_quality.py "${inputs[@]}" "${ours[@]}"

# Before/after pictures for docs/texture.md (UPDATE_DOCS=1 writes them): each bundled sample
# with yesterday's default (vertex colours, every face) beside today's (a baked 1024² texture on
# the 40k-face mesh).
if [ "${UPDATE_DOCS:-0}" = 1 ]; then
  for s in apple star vase; do
    img="samples/$s.png"; [ -f "$img" ] || img="samples/$s.jpg"
    "$bin/orfeas" generate "$img" --format obj --texture vertex --faces all --out "$tmp/before" --quiet > /dev/null
    "$bin/orfeas" generate "$img" --format obj --out "$tmp/after" --quiet > /dev/null
    "$bin/examples/texture_bench" show "docs/texture/$s.png" "$tmp/before/$s.obj" "$tmp/after/$s.obj"
  done
  echo "wrote docs/texture/{apple,star,vase}.png"
fi
