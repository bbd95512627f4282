#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the external mesh validators it needs
# (Khronos glTF-Validator from npm, trimesh from PyPI) into a cache outside the clone, then runs
# formatting and lint checks and every test of the workspace.
#
#   bash scripts/test.sh
#
# Cargo builds into $CARGO_TARGET_DIR (default ~/.cache/orfeas/target) so later runs reuse it;
# validators live in $ORFEAS_TOOLS_DIR (default ~/.cache/orfeas/tools).
# No service is needed by today's tests; later suites start theirs here.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
mkdir -p "$CARGO_TARGET_DIR" "$tools"

step() { printf '\n== %s\n' "$*"; }

step "validators (cached in $tools)"
req="$root/tools/validate/requirements.txt"
if ! cmp -s "$req" "$tools/venv/requirements.txt" 2>/dev/null; then
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$tools/venv/requirements.txt"
fi
validator_version="2.0.0-dev.3.10"
if [ ! -f "$tools/node/node_modules/gltf-validator/package.json" ] \
   || ! grep -q "\"version\": \"$validator_version\"" "$tools/node/node_modules/gltf-validator/package.json"; then
  npm install --silent --no-audit --no-fund --prefix "$tools/node" "gltf-validator@$validator_version"
fi
export ORFEAS_NODE_MODULES="$tools/node/node_modules"
export ORFEAS_PYTHON="$tools/venv/bin/python"
export ORFEAS_REQUIRE_VALIDATORS=1

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (release profile, all targets, warnings are errors)"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo test (release profile: one build serves the binary, the tests and the benchmarks)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --release --workspace 2>&1 | tee "$log"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
