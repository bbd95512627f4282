#!/usr/bin/env bash
# Builds what the GPU check (scripts/gpu_hunyuan3d.sh) carries to the device machine:
#   .gpu/hunyuan3d-tests.gz   the pipeline's Hunyuan3D parity tests, built with --features cuda
#   .gpu/u2net-tests.gz       the U²-Net parity tests (masks and timing on CUDA), --features cuda
#   .gpu/dit_bench.gz         the DiT timing example, --features cuda
#   .gpu/shape_bench.gz       the whole-pipeline timing example, --features cuda
#   .gpu/raster-tests.gz      the rasterizer comparisons (tensor on CUDA vs host), --features cuda
#   .gpu/texture_bench.gz     the non-diffusion texturing stages, --features cuda
#   .gpu/paint_bench.gz       the paint diffusion loops' timing example, --features cuda
#   .gpu/apple40k.obj.gz      the default path's 40 000-face apple (CPU build of `orfeas generate`)
# (gzipped: what travels is capped at 64 MiB)
#   .whl/                  wheels for the PyTorch reference (hy3dgen, einops, diffusers, transformers
#                          and what they import) for Python 3.12
# CUDA libraries are loaded at run time (CUDARC_CUDA_VERSION=13000 matches the device's CUDA 13.0),
# so this builds on a machine without a GPU. Its own target directory keeps the CPU build's cache
# untouched. Then, with the device tool:
#   run(command="bash scripts/gpu_hunyuan3d.sh", carry=[".gpu", ".whl"], timeout_s=540)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${ORFEAS_CUDA_TARGET_DIR:-$HOME/.cache/orfeas/target-cuda}"
export CUDARC_CUDA_VERSION=13000
mkdir -p .gpu .whl
cargo build --release -p orfeas-pipeline --features cuda --example dit_bench --example shape_bench \
  --example texture_bench --example paint_bench
test_binary() {
  cargo test --release -p orfeas-pipeline --features cuda --test "$1" --no-run \
    --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
test_bin=$(test_binary hunyuan3d)
u2net_bin=$(test_binary u2net)
raster_bin=$(test_binary raster_backends)
rm -f .gpu/*
# The mesh step 5 textures: made by the CPU build (its own target directory), as bench/texture.sh
# makes it.
CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CPU:-$HOME/.cache/orfeas/target}" cargo build -q --release -p orfeas
mesh_tmp="$(mktemp -d)"
"${CARGO_TARGET_DIR_CPU:-$HOME/.cache/orfeas/target}/release/orfeas" generate samples/apple.jpg \
  --resolution 256 --texture none --format obj --out "$mesh_tmp" --quiet > /dev/null
gzip -9c "$mesh_tmp/apple.obj" > .gpu/apple40k.obj.gz
rm -rf "$mesh_tmp"
cp "$CARGO_TARGET_DIR/release/examples/dit_bench" .gpu/dit_bench
cp "$CARGO_TARGET_DIR/release/examples/shape_bench" .gpu/shape_bench
cp "$test_bin" .gpu/hunyuan3d-tests
cp "$u2net_bin" .gpu/u2net-tests
cp "$raster_bin" .gpu/raster-tests
cp "$CARGO_TARGET_DIR/release/examples/texture_bench" .gpu/texture_bench
cp "$CARGO_TARGET_DIR/release/examples/paint_bench" .gpu/paint_bench
bins=(.gpu/dit_bench .gpu/shape_bench .gpu/hunyuan3d-tests .gpu/u2net-tests .gpu/raster-tests .gpu/texture_bench
  .gpu/paint_bench)
strip "${bins[@]}"
gzip -9 "${bins[@]}"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" -d .whl hy3dgen==2.0.2 einops==0.8.1 diffusers==0.32.2 transformers==4.49.0 \
  tokenizers==0.21.4 huggingface_hub==0.36.0 safetensors regex importlib_metadata zipp tqdm pyyaml \
  requests urllib3 certifi idna charset_normalizer pillow
du -sh .gpu .whl
