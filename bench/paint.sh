#!/usr/bin/env bash
# Side-by-side CPU timing of Hunyuan3D-Paint's two diffusion loops: the reference (diffusers
# 0.32.2 InstructPix2Pix and hy3dgen 2.0.2 HunyuanPaintPipeline on PyTorch) and the port, on the
# same seeded random-weight models and the same inputs, in one run.
#   1. bench/paint_reference.py builds the models of each size (cached under $PAINT_BENCH_DIR)
#      and the inputs, and times the reference (delight: whole call at its 50 steps; multiview:
#      whole call at its 30 steps, six views, guidance 2.0);
#   2. the port's example `paint_bench` times the same calls on the same folders and inputs
#      (and the multiview loop for two meshes in one batch);
#   3. prints port/reference per loop and size.
# Sizes: tiny (the parity fixtures' widths, 64² views) and mid (UNet [128, 256, 512, 512],
# 256² views); SIZES="tiny" for a quick run, DELIGHT_STEPS / VIEW_STEPS to shorten the loops.
# Needs the paint-fixtures venv ($PAINT_PY) and hy3dgen 2.0.2's source ($HY3DGEN_SRC); see
# pipeline/tests/reference/paint_pipeline_fixtures.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
PAINT_PY="${PAINT_PY:-/root/.cache/orfeas/paint-venv/bin/python}"
export HY3DGEN_SRC="${HY3DGEN_SRC:-/tmp/hy3dgen_src}"
DIR="${PAINT_BENCH_DIR:-$HOME/.cache/orfeas/paint-bench}"
SIZES="${SIZES:-tiny mid}"
DELIGHT_STEPS="${DELIGHT_STEPS:-50}"
VIEW_STEPS="${VIEW_STEPS:-30}"
THREADS="${THREADS:-$(nproc)}"
# --workspace: the features the test suite's build resolves, so its cached build is reused.
cargo build -q --release --workspace --example paint_bench
bin="$CARGO_TARGET_DIR/release/examples/paint_bench"
for size in $SIZES; do
  ref=$("$PAINT_PY" bench/paint_reference.py --size "$size" --out "$DIR/$size" --threads "$THREADS" \
        --delight-steps "$DELIGHT_STEPS" --view-steps "$VIEW_STEPS" 2>/dev/null | tail -1)
  echo "$ref"
  args=(--delight "$DIR/$size/delight" --paint "$DIR/$size/multiview" --inputs "$DIR/$size/inputs"
        --delight-steps "$DELIGHT_STEPS" --view-steps "$VIEW_STEPS")
  ours=$(RAYON_NUM_THREADS="$THREADS" "$bin" "${args[@]}"); echo "$ours"
  two=$(RAYON_NUM_THREADS="$THREADS" "$bin" "${args[@]}" --meshes 2); echo "$two"
  python3 - "$ref" "$ours" "$two" <<'PY'
import json, sys
r, o, t = (json.loads(a) for a in sys.argv[1:])
for loop in ("delight", "multiview"):
    print(f"{r['size']} {loop}: port {o['seconds'][loop]:.2f} s, reference {r['seconds'][loop]:.2f} s, "
          f"port/reference = {o['seconds'][loop] / r['seconds'][loop]:.2f}")
print(f"{r['size']} multiview, two meshes in one batch: {t['seconds']['multiview']:.2f} s "
      f"({t['seconds']['multiview'] / 2:.2f} s per mesh)")
PY
done
