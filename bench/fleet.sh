#!/usr/bin/env bash
# Fleet benchmarks on this machine's PostgreSQL, RabbitMQ and Redis (local-directory storage):
#  1. POST /api/jobs throughput and latency with oha (64 KiB PNG, multipart), no worker running,
#     side by side with Celery's apply_async publishing the same payload to the same RabbitMQ;
#  2. worker overhead per job: wall time from the attempt's start to its commit, minus the
#     pipeline's own stage times, over sequential small jobs.
#
#   bash bench/fleet.sh        # DURATION=10 (seconds per oha run), JOBS=40
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
duration=${DURATION:-10}
jobs=${JOBS:-40}

cargo build --release -q -p orfeas
bin="$CARGO_TARGET_DIR/release/orfeas"
if [ ! -x "$tools/oha/bin/oha" ]; then
  CARGO_TARGET_DIR="$tools/oha-build" cargo install --locked --quiet oha --version 1.16.0 --root "$tools/oha"
fi
oha="$tools/oha/bin/oha"
if [ ! -x "$tools/bench-venv/bin/python" ]; then
  python3 -m venv "$tools/bench-venv"
fi
"$tools/bench-venv/bin/pip" install --quiet --disable-pip-version-check celery==5.5.3

tmp="$(mktemp -d)"
tag="bench$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/orfeas_$tag"
export ORFEAS__AMQP__QUEUE="orfeas.$tag"
export ORFEAS__REDIS__KEY_PREFIX="orfeas-$tag"
export ORFEAS__STORAGE__KIND=local ORFEAS__STORAGE__PATH="$tmp/data"
export ORFEAS__API__LISTEN="127.0.0.1:$port" ORFEAS__API__MAX_QUEUED_JOBS=100000000
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for q in "orfeas.$tag" "orfeas.$tag.retry" "orfeas.$tag.dlq" "celery.$tag"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done
  psql -q -U postgres -h 127.0.0.1 -d postgres -c "DROP DATABASE IF EXISTS orfeas_$tag WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
"$bin" migrate
RUST_LOG=warn "$bin" api > "$tmp/api.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
ctype=$(python3 bench/make_upload.py "$tmp/body.bin")

echo
echo "== POST /api/jobs, 64 KiB image, as fast as possible (oha -c 32, ${duration}s)"
"$oha" --no-tui -z "${duration}s" -c 32 -m POST -T "$ctype" -D "$tmp/body.bin" \
  "http://127.0.0.1:$port/api/jobs" | grep -E "Success rate|Requests/sec|Slowest|Fastest|Average|50.00%|95.00%|99.00%|\[202\]|\[[0-9]{3}\]"
echo
echo "== POST /api/jobs at 500 requests/s (oha -q 500 -c 50, ${duration}s)"
"$oha" --no-tui -z "${duration}s" -q 500 -c 50 -m POST -T "$ctype" -D "$tmp/body.bin" \
  "http://127.0.0.1:$port/api/jobs" | grep -E "Success rate|Requests/sec|Average|50.00%|95.00%|99.00%|99.90%|\[[0-9]{3}\]"
accepted=$(psql -tA -U postgres -h 127.0.0.1 -d "orfeas_$tag" -c "SELECT count(*) FROM jobs")
confirmed=$(psql -tA -U postgres -h 127.0.0.1 -d "orfeas_$tag" -c "SELECT count(*) FROM jobs WHERE enqueued_at IS NOT NULL")
echo "jobs accepted: $accepted, confirmed by the queue: $confirmed"

echo
echo "== Celery apply_async, same payload, same RabbitMQ (one producer process)"
"$tools/bench-venv/bin/python" bench/celery_producer.py 5000 "celery.$tag"
"$tools/bench-venv/bin/python" bench/celery_producer.py 2000 "celery.$tag" --confirm

echo
echo "== worker overhead per job ($jobs sequential jobs, resolution 64, GLB)"
rabbitmqctl -q purge_queue "orfeas.$tag" >/dev/null
psql -q -U postgres -h 127.0.0.1 -d "orfeas_$tag" -c "TRUNCATE jobs CASCADE"
RUST_LOG=warn ORFEAS__WORKER__BATCH_WAIT_MS=0 "$bin" worker > "$tmp/worker.log" 2>&1 &
pids+=($!)
for i in $(seq "$jobs"); do
  id=$(curl -sf -F image=@samples/star.png -F 'options={"octree_resolution": 64}' "http://127.0.0.1:$port/api/jobs" \
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  for _ in $(seq 200); do
    st=$(curl -sf "http://127.0.0.1:$port/api/jobs/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$st" = succeeded ] && break
    sleep 0.02
  done
done
psql -tA -U postgres -h 127.0.0.1 -d "orfeas_$tag" -F ' ' -c "
  WITH per_job AS (
    SELECT j.id,
           EXTRACT(EPOCH FROM (j.finished_at - j.started_at)) AS wall,
           sum(s.duration_seconds) AS compute
    FROM jobs j JOIN stage_timings s ON s.job_id = j.id
    WHERE j.status = 'succeeded' GROUP BY j.id, j.finished_at, j.started_at)
  SELECT 'jobs', count(*),
         'median_wall_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY wall) * 1000)::numeric, 1),
         'median_compute_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY compute) * 1000)::numeric, 1),
         'median_overhead_ms', round((percentile_cont(0.5) WITHIN GROUP (ORDER BY wall - compute) * 1000)::numeric, 1),
         'p95_overhead_ms', round((percentile_cont(0.95) WITHIN GROUP (ORDER BY wall - compute) * 1000)::numeric, 1)
  FROM per_job"
