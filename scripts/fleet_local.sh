#!/usr/bin/env bash
# A whole fleet on this machine, in the foreground: `orfeas migrate`, the API, N inflate workers
# and optionally Prometheus, against this machine's PostgreSQL, RabbitMQ and Redis, with an
# S3-compatible store (s3s-fs) of its own. Each run gets its own database, queues, Redis prefix
# and bucket, and an admin key; Ctrl-C (or SIGTERM) stops everything cleanly.
#
#   bash scripts/fleet_local.sh [--workers N] [--database NAME] [--prometheus]
#                               [--storage s3|local] [--port PORT] [--run-dir DIR] [--keep]
#
#   --workers N       inflate workers (default 1); each serves /metrics and its probes on its
#                     own port: 9187, 9190, 9191, … (a free port when one is taken)
#   --database NAME   use (and keep) this database instead of a fresh one
#   --prometheus      also run Debian's prometheus with deploy/prometheus/prometheus-local.yml,
#                     its targets rewritten to this fleet's ports, storage in the run directory
#   --storage KIND    s3 (default): s3s-fs from the tools cache, as scripts/test.sh installs it;
#                     local: a directory in the run directory
#   --port PORT       the API's port (default: a free one)
#   --run-dir DIR     where logs (and the store) go (default: a new directory under /tmp)
#   --keep            keep the fresh database and queues at the end (default: dropped)
#
# When everything is up it prints the API URL and the admin key and writes them, as shell
# assignments, to RUN_DIR/fleet.env (ORFEAS_API_URL, ORFEAS_API_KEY, the processes' ids as
# ORFEAS_FLEET_PIDS="api:PID worker-1:PID …", …), which scripts can wait for and source.
# Other ORFEAS__… variables in the environment reach every process
# (e.g. ORFEAS__WORKER__BATCH_SIZE=8).
#
# Why S3 by default: the deployed fleet reads and writes its inputs and meshes through the S3
# client (signed HTTP requests to a separate server), and a load test should pay that cost as
# the deployment does; a local directory skips it. `--storage local` needs nothing installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
bin="$CARGO_TARGET_DIR/release/orfeas"

die() { echo "fleet_local.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

workers=1 database="" prometheus=0 storage=s3 port="" run_dir="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers="${2:-}"; shift 2 ;;
    --database) database="${2:-}"; shift 2 ;;
    --prometheus) prometheus=1; shift ;;
    --storage) storage="${2:-}"; shift 2 ;;
    --port) port="${2:-}"; shift 2 ;;
    --run-dir) run_dir="${2:-}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument \`$1\` (--help lists them)" ;;
  esac
done
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "--workers: expected a positive number, got \`$workers\`"
[[ "$storage" =~ ^(s3|local)$ ]] || die "--storage: expected s3 or local, got \`$storage\`"
[ -z "$port" ] || [[ "$port" =~ ^[0-9]+$ ]] || die "--port: expected a number, got \`$port\`"
[ -z "$database" ] || [[ "$database" =~ ^[a-z_][a-z0-9_]*$ ]] \
  || die "--database: expected a lower-case SQL name, got \`$database\`"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The preferred port when nothing listens on it, else a free one.
port_or_free() { if port_open "$1"; then free_port; else echo "$1"; fi; }
wait_http() { # URL SECONDS [CURL ARGS…]: until it answers 2xx
  local url="$1" seconds="$2"; shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    curl -sf -o /dev/null "$@" "$url" && return 0
    sleep 0.2
  done
  return 1
}

for svc in "PostgreSQL 5432" "RabbitMQ 5672" "Redis 6379"; do
  set -- $svc
  port_open "$2" || die "$1 is not listening on 127.0.0.1:$2 (scripts/test.sh shows how to start it)"
done
if [ "$storage" = s3 ] && [ ! -x "$tools/s3s/bin/s3s-fs" ]; then
  die "s3s-fs is not installed at $tools/s3s/bin/s3s-fs: run scripts/test.sh once (it installs it), or pass --storage local"
fi
if [ "$prometheus" = 1 ] && ! command -v prometheus > /dev/null; then
  die "--prometheus: no prometheus binary (apt-get install prometheus)"
fi
if [ ! -x "$bin" ]; then
  echo "building $bin"
  (cd "$root" && cargo build --release -p orfeas)
fi

tag="fleet$(date +%m%d%H%M%S)$$"
db="${database:-orfeas_$tag}"
run_dir="${run_dir:-$(mktemp -d "${TMPDIR:-/tmp}/orfeas-fleet.XXXXXX")}"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
rm -f "$run_dir/fleet.env"
port="${port:-$(free_port)}"
api_metrics=$(port_or_free 9188)

export ORFEAS__DATABASE__URL="postgres://postgres@127.0.0.1:5432/$db"
export ORFEAS__AMQP__QUEUE="orfeas.$tag"
export ORFEAS__REDIS__KEY_PREFIX="orfeas-$tag"
export ORFEAS__API__LISTEN="127.0.0.1:$port"
export ORFEAS__API__METRICS_LISTEN="127.0.0.1:$api_metrics"
# The broker backstop (delivery limit, dead-lettering) is applied through the management API.
if port_open 15672; then
  export ORFEAS__AMQP__MANAGEMENT_URL="http://guest:guest@127.0.0.1:15672"
fi

# name:pid of each child, in start order; stopped in reverse.
children=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "stopping the fleet (logs stay in $run_dir)" >&2
  local i entry name pid
  for ((i = ${#children[@]} - 1; i >= 0; i--)); do
    entry="${children[$i]}"; name="${entry%%:*}"; pid="${entry##*:}"
    kill -TERM "$pid" 2>/dev/null || continue
    # A worker drains its batch on SIGTERM; give each process that long, then stop it hard.
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop in 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [ -z "$database" ] && [ "$keep" = 0 ]; then
    psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
      > /dev/null 2>&1 || true
    # This run's queues: through the management API when it is there (one request each),
    # else rabbitmqctl (a second or so each).
    local mgmt="${ORFEAS__AMQP__MANAGEMENT_URL:-}" q
    if [ -n "$mgmt" ]; then
      for q in $(curl -sf "$mgmt/api/queues/%2f?columns=name" \
                   | python3 -c 'import json,sys; print(" ".join(q["name"] for q in json.load(sys.stdin)))' 2>/dev/null \
                   | tr ' ' '\n' | grep -F "orfeas.$tag"); do
        curl -sf -X DELETE "$mgmt/api/queues/%2f/$q" > /dev/null || true
      done
    else
      rabbitmqctl -q list_queues name 2>/dev/null | grep -F "orfeas.$tag" \
        | xargs -r -n1 rabbitmqctl -q delete_queue > /dev/null 2>&1 || true
    fi
  fi
  rm -rf "$run_dir/s3" "$run_dir/data" "$run_dir/prometheus"
  rm -f "$run_dir/fleet.env"
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

start() { # NAME LOG COMMAND…: in the background, remembered for the shutdown
  local name="$1" log="$2"; shift 2
  "$@" > "$log" 2>&1 &
  children+=("$name:$!")
}

if [ "$storage" = s3 ]; then
  s3port=$(free_port)
  mkdir -p "$run_dir/s3/orfeas"
  start s3s-fs "$run_dir/s3s-fs.log" "$tools/s3s/bin/s3s-fs" --host 127.0.0.1 --port "$s3port" \
    --access-key orfeas-local --secret-key orfeas-local-secret "$run_dir/s3"
  for _ in $(seq 1 100); do port_open "$s3port" && break; sleep 0.1; done
  port_open "$s3port" || die "s3s-fs did not start: $run_dir/s3s-fs.log"
  export ORFEAS__STORAGE__KIND=s3 ORFEAS__STORAGE__BUCKET=orfeas \
    ORFEAS__STORAGE__ENDPOINT="http://127.0.0.1:$s3port" ORFEAS__STORAGE__ACCESS_KEY_ID=orfeas-local \
    ORFEAS__STORAGE__SECRET_ACCESS_KEY=orfeas-local-secret ORFEAS__STORAGE__ALLOW_HTTP=true
else
  export ORFEAS__STORAGE__KIND=local ORFEAS__STORAGE__PATH="$run_dir/data"
fi

"$bin" migrate > "$run_dir/migrate.log" 2>&1 || die "orfeas migrate failed: $run_dir/migrate.log"
export RUST_LOG="${RUST_LOG:-info}"
start api "$run_dir/api.log" "$bin" api
api_url="http://127.0.0.1:$port"
wait_http "$api_url/healthz" 60 || die "the API did not come up: $run_dir/api.log"
key=$("$bin" keys create --name "fleet-admin-$tag" --scope admin 2>> "$run_dir/keys.log") \
  || die "orfeas keys create failed: $run_dir/keys.log"

worker_ports=()
for i in $(seq 1 "$workers"); do
  if [ "$i" = 1 ]; then preferred=9187; else preferred=$((9188 + i)); fi
  wport=$(port_or_free "$preferred")
  worker_ports+=("$wport")
  start "worker-$i" "$run_dir/worker-$i.log" env ORFEAS__WORKER__ID="fleet-w$i" \
    ORFEAS__WORKER__METRICS_LISTEN="127.0.0.1:$wport" "$bin" worker
done
for i in $(seq 1 "$workers"); do
  wait_http "http://127.0.0.1:${worker_ports[$((i - 1))]}/readyz" 120 \
    || die "worker $i is not ready: $run_dir/worker-$i.log"
done

prom_url=""
if [ "$prometheus" = 1 ]; then
  prom_port=$(port_or_free 9090)
  targets=$(printf "'127.0.0.1:%s', " "${worker_ports[@]}")
  # The local configuration names the default ports; this fleet's are rewritten in, and the
  # rule files found where they live.
  python3 - "$root/deploy/prometheus/prometheus-local.yml" "$run_dir/prometheus.yml" \
    "$root/deploy/prometheus/rules" "$api_metrics" "[${targets%, }]" "$prom_port" <<'EOF'
import re, sys
src, dst, rules, api, workers, prom = sys.argv[1:]
job, out = None, []
for line in open(src):
    m = re.match(r"\s*- job_name:\s*(\S+)", line)
    if m:
        job = m.group(1)
    line = line.replace("rules/*.yml", rules + "/*.yml")
    t = re.match(r"(\s*- targets:\s*)\[.*\]", line)
    if t and job == "orfeas-api":
        line = f"{t.group(1)}['127.0.0.1:{api}']\n"
    elif t and job == "orfeas-worker":
        line = f"{t.group(1)}{workers}\n"
    elif t and job == "prometheus":
        line = f"{t.group(1)}['127.0.0.1:{prom}']\n"
    out.append(line)
open(dst, "w").write("".join(out))
EOF
  mkdir -p "$run_dir/prometheus"
  start prometheus "$run_dir/prometheus.log" prometheus --config.file="$run_dir/prometheus.yml" \
    --storage.tsdb.path="$run_dir/prometheus" --web.listen-address="127.0.0.1:$prom_port"
  prom_url="http://127.0.0.1:$prom_port"
  wait_http "$prom_url/-/ready" 60 || die "prometheus did not start: $run_dir/prometheus.log"
fi

worker_metrics=$(printf 'http://127.0.0.1:%s/metrics ' "${worker_ports[@]}")
cat > "$run_dir/fleet.env.tmp" <<EOF
ORFEAS_API_URL=$api_url
ORFEAS_API_KEY=$key
ORFEAS_FLEET_DATABASE=$db
ORFEAS_FLEET_QUEUE=orfeas.$tag
ORFEAS_FLEET_WORKERS=$workers
ORFEAS_FLEET_API_METRICS=http://127.0.0.1:$api_metrics/metrics
ORFEAS_FLEET_WORKER_METRICS="${worker_metrics% }"
ORFEAS_FLEET_PROMETHEUS=$prom_url
ORFEAS_FLEET_RUN_DIR=$run_dir
ORFEAS_FLEET_PIDS="${children[*]}"
EOF
# Renamed into place so a reader never sees half of it.
mv "$run_dir/fleet.env.tmp" "$run_dir/fleet.env"

cat <<EOF
fleet up: API, $workers inflate worker(s), storage $storage, database $db
  API          $api_url
  admin key    $key
  API metrics  http://127.0.0.1:$api_metrics/metrics
  workers      ${worker_metrics% }
${prom_url:+  prometheus   $prom_url
}  logs         $run_dir
  env          source $run_dir/fleet.env   (ORFEAS_API_URL, ORFEAS_API_KEY for orfeas jobs / loadtest)
Ctrl-C stops it.
EOF

# In the foreground until a signal, or until a process of the fleet ends on its own.
while true; do
  wait -n 2>/dev/null || true
  for entry in "${children[@]}"; do
    if ! kill -0 "${entry##*:}" 2>/dev/null; then
      echo "${entry%%:*} exited; see $run_dir/${entry%%:*}.log" >&2
      stop_all
      exit 1
    fi
  done
done
