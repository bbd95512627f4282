#!/usr/bin/env bash
# The operator summary on a million-job ledger: 1,000,000 finished jobs spread over 30 days with
# five stage rows each (5,000,000 rows), in this machine's PostgreSQL; then
# GET /api/performance/summary for 24 h (raw ledger) and 30 d (hourly rollups) through a real
# `orfeas api`, each timed with curl, plus the time the API's retention pass at start takes to
# roll up the 720 hours of history (in the background).
#
#   bash bench/ledger.sh            # JOBS=1000000 DAYS=30
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
jobs=${JOBS:-1000000}
days=${DAYS:-30}
db="orfeas_ledger_bench_$$"
export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db"
export ORFEAS__STORAGE__KIND=memory ORFEAS__AMQP__QUEUE="orfeas.ledgerbench$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ORFEAS__API__LISTEN="127.0.0.1:$port" ORFEAS__RETENTION__INTERVAL_S=86400 \
  ORFEAS__RETENTION__FINISHED_JOBS_DAYS=0
cargo build --release -q -p orfeas
bin="$CARGO_TARGET_DIR/release/orfeas"
"$bin" migrate > /dev/null 2>&1
psql_db() { psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -U postgres -d "$db" "$@"; }
cleanup() { kill "${api:-0}" 2>/dev/null || true; psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null; }
trap cleanup EXIT

start=$(date +%s)
psql_db <<SQL
SET synchronous_commit = off;
INSERT INTO jobs (id, status, engine, spec, input_key, input_bytes, attempt, counted_attempts,
                  outputs, error_code, created_at, started_at, finished_at, enqueued_at)
SELECT gen_random_uuid(),
       CASE WHEN g % 50 = 0 THEN 'failed'::job_status ELSE 'succeeded' END,
       CASE WHEN g % 4 = 0 THEN 'hunyuan3d' ELSE 'inflate' END,
       jsonb_build_object('engine', 'inflate', 'seed', 1234, 'steps', 50, 'guidance_scale', 5.0,
                          'octree_resolution', 256 + 128 * (g % 3), 'num_chunks', 8000,
                          'face_count', null, 'formats', jsonb_build_array('glb'),
                          'remove_background', 'auto', 'texture', true, 'priority', 0,
                          'deadline', null),
       'inputs/x/input.png', 200000 + g % 1000000, 1, 1,
       CASE WHEN g % 50 = 0 THEN '{}'::text[] ELSE '{glb}' END,
       CASE WHEN g % 50 = 0 THEN 'no_foreground' END,
       t - interval '20 seconds', t - interval '15 seconds', t, t - interval '20 seconds'
FROM (SELECT g, now() - (g::float8 / $jobs) * interval '$days days' AS t
      FROM generate_series(1, $jobs) g) s;
INSERT INTO stage_timings (job_id, stage, attempt, worker_id, device, batch_size, started_at,
                           duration_seconds)
SELECT j.id, st.stage, 1, 'bench', 'cuda:0', 1 + (hashtext(j.id::text) & 3), j.finished_at,
       st.base * (0.8 + random() * 0.4)
FROM jobs j
CROSS JOIN (VALUES ('image_loading'::pipeline_stage, 0.05), ('image_preprocessing', 0.4),
                   ('shape_generation', 9.0), ('texture_synthesis', 2.0), ('mesh_export', 0.3))
           AS st(stage, base)
WHERE j.status = 'succeeded';
UPDATE rollup_state SET rolled_until = date_trunc('hour', now() - interval '$days days' - interval '1 hour');
ANALYZE jobs; ANALYZE stage_timings;
SQL
echo "ledger: $jobs jobs over $days days, $(psql_db -tAc 'SELECT count(*) FROM stage_timings') stage rows, built in $(( $(date +%s) - start )) s"

RUST_LOG=warn "$bin" api > /dev/null 2>&1 &
api=$!
started=$(date +%s.%N)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
time_get() { curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$port/api/performance/summary?window=$1"; }
printf 'window 24h while the rollups catch up: %s s\n' "$(time_get 24h)"
# The retention pass at start rolls up every complete hour (5 minutes' grace after each).
until [ "$(psql_db -tAc "SELECT rolled_until >= date_trunc('hour', now() - interval '5 minutes') FROM rollup_state")" = t ]; do
  sleep 0.2
done
printf 'rollups caught up (%s days of hours) %.1f s after start\n' "$days" "$(echo "$(date +%s.%N) - $started" | bc)"
printf 'window 24h (raw ledger):  %s s, %s s, %s s\n' "$(time_get 24h)" "$(time_get 24h)" "$(time_get 24h)"
printf 'window 30d (rollups):     %s s, %s s, %s s\n' "$(time_get 30d)" "$(time_get 30d)" "$(time_get 30d)"
curl -s "http://127.0.0.1:$port/api/performance/summary?window=30d" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print("30d summary: total_pipelines", s["total_pipelines"], "failed", s["failed"],
      "avg_duration %.2f s, p95 %.2f s" % (s["avg_duration"], s["duration"]["p95_seconds"]))'
