#!/usr/bin/env bash
# The cost of authentication and per-key rate limiting:
#  1. microbenchmark: the API's router in-process, open vs key vs key + Redis rate limit;
#  2. A/B in one run of the submit benchmark: POST /api/jobs at a fixed 300 requests/s with oha,
#     first with keys not in force, then with a rate-limited key (same process, same database).
#
#   bash bench/auth.sh        # DURATION=10
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
duration=${DURATION:-10}
cargo build --release -q -p orfeas -p orfeas-api --example auth_bench
bin="$CARGO_TARGET_DIR/release/orfeas"
if [ ! -x "$tools/oha/bin/oha" ]; then
  CARGO_TARGET_DIR="$tools/oha-build" cargo install --locked --quiet oha --version 1.16.0 --root "$tools/oha"
fi
oha="$tools/oha/bin/oha"
tag="authbench$$"
tmp="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/orfeas_$tag"
export ORFEAS__AMQP__QUEUE="orfeas.$tag" ORFEAS__REDIS__KEY_PREFIX="orfeas-$tag"
export ORFEAS__STORAGE__KIND=local ORFEAS__STORAGE__PATH="$tmp/data"
export ORFEAS__API__LISTEN="127.0.0.1:$port" ORFEAS__API__METRICS_LISTEN=off
export ORFEAS__API__MAX_QUEUED_JOBS=100000000 ORFEAS__API__KEY_CACHE_MS=2000
api=""
cleanup() {
  [ -n "$api" ] && kill "$api" 2>/dev/null || true
  wait 2>/dev/null || true
  for q in "orfeas.$tag" "orfeas.$tag.dlq"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done
  psql -q -U postgres -h 127.0.0.1 -d postgres -c "DROP DATABASE IF EXISTS orfeas_$tag WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo
echo "== 1. middleware microbenchmark"
RUST_LOG=warn "$CARGO_TARGET_DIR/release/examples/auth_bench"
psql -q -U postgres -h 127.0.0.1 -d postgres -c "DROP DATABASE IF EXISTS orfeas_$tag WITH (FORCE)" >/dev/null
"$bin" migrate > /dev/null 2>&1
ctype=$(python3 bench/make_upload.py "$tmp/body.bin")
RUST_LOG=warn "$bin" api > "$tmp/api.log" 2>&1 &
api=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
echo
echo "== 2a. POST /api/jobs at 300/s, keys not in force"
"$oha" --no-tui -z "${duration}s" -q 300 -c 20 -m POST -T "$ctype" -D "$tmp/body.bin" \
  "http://127.0.0.1:$port/api/jobs" | grep -E "Success rate|Requests/sec|50.00%|99.00%|\[[0-9]{3}\]"
# The same queue for both runs: the accepted jobs of run A leave it first (a queued job's
# position is counted at submission).
psql -q -U postgres -h 127.0.0.1 -d "orfeas_$tag" -c "UPDATE jobs SET status = 'canceled', finished_at = now() WHERE status = 'queued'" >/dev/null
psql -q -U postgres -h 127.0.0.1 -d "orfeas_$tag" -c "VACUUM ANALYZE jobs" >/dev/null
key=$("$bin" keys create --name bench --rate 100000/s 2>/dev/null)
sleep 2.5   # the API's cached "no keys" answer expires
echo
echo "== 2b. POST /api/jobs at 300/s, with a rate-limited key"
"$oha" --no-tui -z "${duration}s" -q 300 -c 20 -m POST -T "$ctype" -D "$tmp/body.bin" \
  -H "Authorization: Bearer $key" \
  "http://127.0.0.1:$port/api/jobs" | grep -E "Success rate|Requests/sec|50.00%|99.00%|\[[0-9]{3}\]"
