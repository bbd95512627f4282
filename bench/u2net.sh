#!/usr/bin/env bash
# Side-by-side CPU timing of U²-Net at 320×320: onnxruntime (rembg's runtime, default session
# options) and the port, on the same weights and the same input, in one run.
#   1. makes sure the full-size U2NET export exists (formula weights, as the parity fixtures);
#   2. u2net and u2netp: onnxruntime batch 1; the port's host executor (the CPU path) batch 1
#      and batch 4 (per-image time), with a profile of where its time goes; burn's executor on
#      burn-ndarray batch 1 (the graph CUDA runs, for comparison);
#   3. prints the port/onnxruntime ratio per model.
# Needs the reference venv of pipeline/tests/reference/u2net_fixtures.py at $U2NET_PY.
# Results: one JSON line per run on stdout, then the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
U2NET_PY="${U2NET_PY:-/root/.cache/orfeas/u2net-venv/bin/python}"
FULL="${U2NET_FULL_ONNX:-/root/.cache/orfeas/u2net/u2net.onnx}"
ITERS="${ITERS:-5}"
if [ ! -f "$FULL" ]; then
  "$U2NET_PY" pipeline/tests/reference/u2net_fixtures.py --full-onnx "$FULL" >&2
fi
# --workspace: `-p` alone resolves the features differently and rebuilds burn.
cargo build -q --release --workspace --example u2net_bench
bin="$CARGO_TARGET_DIR/release/examples/u2net_bench"
ratio() { # port-json ort-json label
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
p, o, label = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
r = p["per_image_s"] / o["per_image_s"]
print(f"{label}: port {p['per_image_s']:.3f} s/image, onnxruntime {o['per_image_s']:.3f} s/image, port/ort = {r:.2f}")
PY
}
for model in "$FULL" pipeline/tests/fixtures/u2net/u2netp.onnx; do
  ort=$("$U2NET_PY" bench/u2net_ort.py "$model" 1 "$ITERS"); echo "$ort"
  port=$("$bin" "$model" 1 "$ITERS" --profile); echo "$port"
  port=$(echo "$port" | head -1)
  port4=$("$bin" "$model" 4 "$(( (ITERS + 1) / 2 ))"); echo "$port4"
  burn=$("$bin" "$model" 1 2 --exec burn); echo "$burn"
  ratio "$port" "$ort" "$(basename "$model") batch 1"
  ratio "$port4" "$ort" "$(basename "$model") batch 4 (port) vs 1 (ort)"
  ratio "$burn" "$ort" "$(basename "$model") burn-ndarray executor, batch 1"
done
