#!/usr/bin/env bash
# Live-event throughput of one `orfeas api` process: 1,000 SSE streams over 50 running jobs,
# events recorded in PostgreSQL as fast as 6 connections go, delivered through LISTEN/NOTIFY;
# memory per open stream from the API's RSS. Same machine for API, database and clients.
#
#   bash bench/sse.sh            # JOBS=50 STREAMS=1000 EVENTS=400 PRODUCERS=6
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
cargo build --release -q -p orfeas --example sse_bench
bin="$CARGO_TARGET_DIR/release/orfeas"
tag="ssebench$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp="$(mktemp -d)"
export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/orfeas_$tag"
export ORFEAS__DATABASE__MAX_CONNECTIONS=20
export ORFEAS__AMQP__QUEUE="orfeas.$tag" ORFEAS__REDIS__KEY_PREFIX="orfeas-$tag"
export ORFEAS__STORAGE__KIND=local ORFEAS__STORAGE__PATH="$tmp/data"
export ORFEAS__API__LISTEN="127.0.0.1:$port" ORFEAS__API__METRICS_LISTEN=off
export ORFEAS__API__MAX_CONNECTIONS=4096
api=""
cleanup() {
  [ -n "$api" ] && kill "$api" 2>/dev/null || true
  wait 2>/dev/null || true
  psql -q -U postgres -h 127.0.0.1 -d postgres -c "DROP DATABASE IF EXISTS orfeas_$tag WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
"$bin" migrate > /dev/null
RUST_LOG=warn "$bin" api > "$tmp/api.log" 2>&1 &
api=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
"$CARGO_TARGET_DIR/release/examples/sse_bench" "http://127.0.0.1:$port" "$ORFEAS__DATABASE__URL" "$api" \
  "${JOBS:-50}" "${STREAMS:-1000}" "${EVENTS:-400}" "${PRODUCERS:-6}"
