#!/usr/bin/env bash
# Side-by-side CPU figures for the Hunyuan3D-2 port and the PyTorch reference in one run:
#   1. one DiT forward, v2-mini width/depth, 512 latents + 65 condition tokens, CFG (2 rows);
#   2. the whole shape pipeline at a reduced configuration (--small), B = 2, 5 steps, R = 64,
#      dense decoding, and hierarchical (ours) / FlashVDM (reference, B = 1 only) decoding.
# Needs the reference venv (see pipeline/tests/reference/hunyuan3d_fixtures.py) at $REF_PY.
# Results: one JSON line per run on stdout. The GPU counterpart is scripts/gpu_hunyuan3d.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
REF_PY="${REF_PY:-/work/tools/refvenv/bin/python}"
cargo build -q --release --workspace --example dit_bench --example shape_bench
bin="$CARGO_TARGET_DIR/release/examples"
"$bin/dit_bench" --preset v2-mini --latents 512 --cond-tokens 65 --iters 3 --warmup 1
"$REF_PY" bench/dit_reference.py --preset v2-mini --device cpu --dtype f32 --iters 3 --warmup 1 --cond-tokens 65
for dec in dense hierarchical; do
  "$bin/shape_bench" --small --steps 5 --resolution 64 --batch 2 --chunks 8000 --decoding "$dec" --repeats 2
done
"$REF_PY" bench/shape_reference.py --small --device cpu --dtype f32 --steps 5 --resolution 64 --batch 2 --chunks 8000 --repeats 2 2>/dev/null
"$bin/shape_bench" --small --preset v2-0-turbo --steps 5 --resolution 64 --batch 1 --chunks 8000 --decoding hierarchical --repeats 2
"$REF_PY" bench/shape_reference.py --small --preset v2-0-turbo --decoding flashvdm --device cpu --dtype f32 --steps 5 --resolution 64 --batch 1 --chunks 8000 --repeats 2 2>/dev/null
