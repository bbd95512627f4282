#!/usr/bin/env bash
# The chaos run: JOBS jobs (default 200) through 3 `orfeas worker` processes while a random
# worker is SIGKILLed and restarted every few seconds, RabbitMQ is restarted once and PostgreSQL
# once; then every job must be terminal, every stored output's SHA-256 must equal what the
# ledger recorded for the attempt that finished the job, failed and canceled jobs have no
# outputs, no object is an orphan, no job used more than worker.max_attempts, none is lost.
# Figures go to stdout (RELIABILITY.md holds a run's).
#
#   bash bench/chaos.sh                 # JOBS=200 KILL_EVERY=4 (seconds)
#
# It stops and starts this machine's RabbitMQ and PostgreSQL: run it alone.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
jobs=${JOBS:-200}
kill_every=${KILL_EVERY:-4}
tag="chaos$$"
tmp="$(mktemp -d)"
db="orfeas_$tag"
export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db"
export ORFEAS__AMQP__QUEUE="orfeas.$tag" ORFEAS__REDIS__KEY_PREFIX="orfeas-$tag"
export ORFEAS__STORAGE__KIND=local ORFEAS__STORAGE__PATH="$tmp/data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ORFEAS__API__LISTEN="127.0.0.1:$port" ORFEAS__API__MAX_QUEUED_JOBS=100000
export ORFEAS__API__REAPER_INTERVAL_MS=500 ORFEAS__API__OUTBOX_INTERVAL_MS=300
export ORFEAS__WORKER__LEASE_TTL_MS=3000 ORFEAS__WORKER__HEARTBEAT_INTERVAL_MS=500
export ORFEAS__WORKER__MAX_ATTEMPTS=5 ORFEAS__WORKER__RETRY_BASE_MS=200 ORFEAS__WORKER__RETRY_MAX_MS=2000
export ORFEAS__WORKER__METRICS_LISTEN=off ORFEAS__WORKER__BATCH_SIZE=2
cargo build --release -q -p orfeas
bin="$CARGO_TARGET_DIR/release/orfeas"
pg_version=$(ls /etc/postgresql | head -n1)
"$bin" migrate > "$tmp/migrate.log" 2>&1

declare -a workers=()
start_worker() { RUST_LOG=warn ORFEAS__WORKER__ID="w$1-$RANDOM" "$bin" worker >> "$tmp/worker-$1.log" 2>&1 & workers[$1]=$!; }
cleanup() {
  for p in "${workers[@]}" "${api:-}"; do kill -9 "$p" 2>/dev/null || true; done
  rabbitmqctl -q start_app > /dev/null 2>&1 || true
  pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start > /dev/null 2>&1 || true
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" > /dev/null 2>&1 || true
  rabbitmqctl -q list_queues name 2>/dev/null | grep -F "orfeas.$tag" | xargs -r -n1 rabbitmqctl -q delete_queue > /dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

RUST_LOG=warn "$bin" api > "$tmp/api.log" 2>&1 &
api=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
for i in 0 1 2; do start_worker "$i"; done

started=$(date +%s)
ids=()
for n in $(seq 1 "$jobs"); do
  img=(samples/star.png samples/vase.png samples/apple.jpg)
  res=$(( 192 + 64 * (n % 4) ))
  id=$(curl -s -F "image=@${img[$((n % 3))]}" -F "options={\"octree_resolution\": $res, \"formats\": [\"glb\", \"stl\"]}" \
       "http://127.0.0.1:$port/api/jobs" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
  ids+=("$id")
done
echo "submitted $jobs jobs in $(( $(date +%s) - started )) s"

kills=0; rabbit_restarts=0; pg_restarts=0
terminal() {
  psql -tA -h 127.0.0.1 -U postgres -d "$db" -c \
    "SELECT count(*) FROM jobs WHERE status IN ('succeeded','failed','canceled')" 2>/dev/null || echo 0
}
deadline=$(( $(date +%s) + 900 ))
round=0
while [ "$(terminal)" -lt "$jobs" ] && [ "$(date +%s)" -lt "$deadline" ]; do
  sleep "$kill_every"
  round=$(( round + 1 ))
  victim=$(( RANDOM % 3 ))
  kill -9 "${workers[$victim]}" 2>/dev/null && kills=$(( kills + 1 ))
  wait "${workers[$victim]}" 2>/dev/null || true
  start_worker "$victim"
  if [ "$round" -eq 3 ]; then
    rabbitmqctl -q stop_app; sleep 3; rabbitmqctl -q start_app; rabbitmqctl -q await_startup
    rabbit_restarts=1
  fi
  if [ "$round" -eq 6 ]; then
    pg_ctlcluster --skip-systemctl-redirect "$pg_version" main restart
    pg_restarts=1
  fi
done
# The chaos stops; the fleet finishes what is left.
while [ "$(terminal)" -lt "$jobs" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 1; done
wall=$(( $(date +%s) - started ))

python3 - "$db" "$tmp/data" "$jobs" "$kills" "$rabbit_restarts" "$pg_restarts" "$wall" <<'PY'
import hashlib, os, subprocess, sys
db, data, jobs, kills, rabbit, pg, wall = sys.argv[1:8]
def q(sql):
    out = subprocess.run(["psql", "-tA", "-F", "\t", "-h", "127.0.0.1", "-U", "postgres", "-d", db,
                          "-c", sql], capture_output=True, text=True, check=True).stdout
    return [l.split("\t") for l in out.splitlines() if l]
rows = q("SELECT id, status, attempt, counted_attempts, COALESCE(max_attempts, 0), "
         "array_to_string(outputs, ','), array_to_string(output_sha256, ','), "
         "COALESCE(error_code, '') FROM jobs")
problems = []
by_status = {}
ids = set()
for id, status, attempt, counted, max_attempts, outputs, digests, code in rows:
    ids.add(id)
    by_status[status] = by_status.get(status, 0) + 1
    if status not in ("succeeded", "failed", "canceled"):
        problems.append(f"{id}: still {status}")
    if int(max_attempts) and int(counted) > int(max_attempts):
        problems.append(f"{id}: {counted} attempts counted, limit {max_attempts}")
    folder = os.path.join(data, "outputs", id)
    stored = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if status != "succeeded":
        if stored:
            problems.append(f"{id}: {status} with outputs {stored}")
        continue
    names = {"glb": "mesh.glb", "stl": "mesh.stl", "obj": "mesh.obj", "ply": "mesh.ply", "cutout": "cutout.png"}
    for artifact, digest in zip(outputs.split(","), digests.split(",")):
        path = os.path.join(folder, names[artifact])
        if not os.path.exists(path):
            problems.append(f"{id}: {artifact} missing")
            continue
        got = hashlib.sha256(open(path, "rb").read()).hexdigest()
        if got != digest:
            problems.append(f"{id}: {artifact} hash {got} != ledger {digest}")
for sub in ("outputs", "inputs"):
    base = os.path.join(data, sub)
    for id in (os.listdir(base) if os.path.isdir(base) else []):
        if id not in ids:
            problems.append(f"orphan {sub}/{id}")
rerun = q("SELECT COALESCE(sum(EXTRACT(EPOCH FROM (s.first_stage - j.started_at))), 0) FROM jobs j "
          "JOIN (SELECT job_id, attempt, min(started_at) AS first_stage FROM stage_timings GROUP BY job_id, attempt) s "
          "ON s.job_id = j.id AND s.attempt = j.attempt WHERE j.attempt > 1")[0][0]
attempts = q("SELECT count(*) FILTER (WHERE attempt > 1), max(attempt) FROM jobs")[0]
lost = int(jobs) - len(rows) + sum(1 for r in rows if r[1] not in ("succeeded", "failed", "canceled"))
print(f"jobs {jobs}; by status {by_status}; worker kills {kills}; RabbitMQ restarts {rabbit}; "
      f"PostgreSQL restarts {pg}; wall {wall} s")
print(f"jobs that needed more than one attempt: {attempts[0]} (most attempts: {attempts[1]}); "
      f"time from first start to the finishing attempt, summed over them: {float(rerun):.1f} s")
print(f"lost: {lost}; problems: {len(problems)}")
for p in problems[:20]:
    print("  " + p)
sys.exit(1 if problems or lost else 0)
PY
