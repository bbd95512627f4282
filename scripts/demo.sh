#!/usr/bin/env bash
# A scripted demo of the fleet on this machine: starts scripts/fleet_local.sh (migrate, the API,
# N inflate workers), submits the bundled samples through the job API with curl, prints one line
# per job event as the jobs run (one Server-Sent Events stream for all of them), then each job's
# result, the operator read-outs (performance summary and recommendations) and the Studio's URL,
# and keeps the fleet running until Ctrl-C.
#
#   bash scripts/demo.sh [IMAGE...]          # default: samples/*.png samples/*.jpg
#
# Needs what scripts/fleet_local.sh needs — PostgreSQL on 5432, RabbitMQ on 5672 and Redis on
# 6379 on 127.0.0.1 (scripts/test.sh shows how to start them), the release binary under
# $CARGO_TARGET_DIR (default ~/.cache/orfeas/target; fleet_local.sh builds it if missing, which
# takes a while) — plus curl and python3.
#
# Settings (environment variables; each maps onto a fleet_local.sh option):
#   ORFEAS_DEMO_WORKERS=N        --workers N (default 2)
#   ORFEAS_DEMO_STORAGE=KIND     --storage local|s3 (default local: needs nothing installed;
#                                s3 needs the s3s-fs that scripts/test.sh installs)
#   ORFEAS_DEMO_PORT=PORT        --port PORT (default 8080, the Studio's documented address;
#                                a free port instead if something already listens there)
#   ORFEAS_DEMO_PROMETHEUS=1     --prometheus (Debian's prometheus binary)
#   ORFEAS_DEMO_RUN_DIR=DIR      --run-dir DIR (default: a new directory under $TMPDIR or /tmp)
#   ORFEAS_DEMO_KEEP=1           --keep (keep the run's database and queues afterwards)
# and for the demo itself:
#   ORFEAS_DEMO_OPTIONS=JSON     the jobs' options (default {"formats":["glb"],"cutout":true})
#   ORFEAS_DEMO_HOLD=0           stop the fleet after the read-outs instead of waiting for Ctrl-C
#   ORFEAS_DEMO_START_TIMEOUT=S  how long to wait for the fleet to come up (default 1200 s,
#                                enough for a first build)
# As with fleet_local.sh, ORFEAS__… variables reach every process of the fleet
# (e.g. ORFEAS__WORKER__BATCH_SIZE=8), and CARGO_TARGET_DIR, ORFEAS_TOOLS_DIR and RUST_LOG apply.
#
# Keys: fleet_local.sh gives each run a fresh database and creates an admin key in it, so keys
# are in force (api.auth = "auto" requires one once any key exists). This script reads that key
# from RUN_DIR/fleet.env and sends it as `Authorization: Bearer` on every request; the admin scope
# also reaches the operator routes. Paste the same key into the Studio when it asks.
#
# Ctrl-C (or SIGTERM) stops what this script started: fleet_local.sh is sent SIGTERM, which
# stops the workers first (they finish their batch), then the API and the store, and drops the
# run's database and queues unless ORFEAS_DEMO_KEEP=1. Logs stay in the run directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() { echo "demo.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac

workers="${ORFEAS_DEMO_WORKERS:-2}"
storage="${ORFEAS_DEMO_STORAGE:-local}"
port="${ORFEAS_DEMO_PORT:-8080}"
prometheus="${ORFEAS_DEMO_PROMETHEUS:-0}"
keep="${ORFEAS_DEMO_KEEP:-0}"
hold="${ORFEAS_DEMO_HOLD:-1}"
start_timeout="${ORFEAS_DEMO_START_TIMEOUT:-1200}"
default_options='{"formats":["glb"],"cutout":true}'
options="${ORFEAS_DEMO_OPTIONS:-$default_options}"

[[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "ORFEAS_DEMO_WORKERS: expected a positive number, got \`$workers\`"
[[ "$storage" =~ ^(s3|local)$ ]] || die "ORFEAS_DEMO_STORAGE: expected s3 or local, got \`$storage\`"
[[ "$port" =~ ^[0-9]+$ ]] || die "ORFEAS_DEMO_PORT: expected a number, got \`$port\`"
[[ "$start_timeout" =~ ^[0-9]+$ ]] || die "ORFEAS_DEMO_START_TIMEOUT: expected seconds, got \`$start_timeout\`"
for tool in curl python3; do
  command -v "$tool" > /dev/null || die "$tool is needed"
done
python3 -c 'import json, sys; json.loads(sys.argv[1])' "$options" 2> /dev/null \
  || die "ORFEAS_DEMO_OPTIONS is not JSON: $options"

# The images: the arguments, or the bundled samples.
images=()
if [ $# -gt 0 ]; then
  images=("$@")
else
  shopt -s nullglob
  images=("$root"/samples/*.png "$root"/samples/*.jpg)
  shopt -u nullglob
fi
[ ${#images[@]} -gt 0 ] || die "no images (samples/ is empty?)"
[ ${#images[@]} -le 100 ] || die "at most 100 images: one event stream follows at most 100 jobs"
for img in "${images[@]}"; do
  [ -f "$img" ] || die "no such image: $img"
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

run_dir="${ORFEAS_DEMO_RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/orfeas-demo.XXXXXX")}"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"

# A fleet.env left by an earlier run in this directory must not be taken for this one's.
rm -f "$run_dir/fleet.env"

fleet_args=(--workers "$workers" --storage "$storage" --run-dir "$run_dir")
if port_open "$port"; then
  echo "demo.sh: something already listens on 127.0.0.1:$port; the API takes a free port instead" >&2
else
  fleet_args+=(--port "$port")
fi
[ "$prometheus" = 1 ] && fleet_args+=(--prometheus)
[ "$keep" = 1 ] && fleet_args+=(--keep)

# --- start the fleet, and stop it whatever way this script ends ---------------------------------

fleet_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$fleet_pid" ] && kill -0 "$fleet_pid" 2> /dev/null; then
    echo "demo.sh: stopping the fleet (logs stay in $run_dir)" >&2
    kill -TERM "$fleet_pid" 2> /dev/null || true
    wait "$fleet_pid" 2> /dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "== starting the fleet: fleet_local.sh ${fleet_args[*]}"
echo "   (its own output: $run_dir/fleet.log)"
# In a session of its own when setsid exists, so the terminal's Ctrl-C reaches only this script,
# whose trap then stops the fleet in fleet_local.sh's order (workers first).
if command -v setsid > /dev/null; then
  setsid bash "$root/scripts/fleet_local.sh" "${fleet_args[@]}" > "$run_dir/fleet.log" 2>&1 &
else
  bash "$root/scripts/fleet_local.sh" "${fleet_args[@]}" > "$run_dir/fleet.log" 2>&1 &
fi
fleet_pid=$!

# fleet_local.sh writes RUN_DIR/fleet.env once the API and every worker are ready.
waited=0
until [ -f "$run_dir/fleet.env" ]; do
  if ! kill -0 "$fleet_pid" 2> /dev/null; then
    echo "demo.sh: the fleet did not start; the end of $run_dir/fleet.log:" >&2
    tail -n 20 "$run_dir/fleet.log" >&2 || true
    exit 1
  fi
  if [ "$waited" -ge $((start_timeout * 2)) ]; then
    die "the fleet was not up after ${start_timeout}s (see $run_dir/fleet.log)"
  fi
  sleep 0.5
  waited=$((waited + 1))
done
set -a
# shellcheck source=/dev/null
. "$run_dir/fleet.env"
set +a
api="${ORFEAS_API_URL:?fleet.env names no ORFEAS_API_URL}"
key="${ORFEAS_API_KEY:-}"

# Keys are in force in a fleet_local.sh run (it created an admin key); without one, no header.
auth=()
[ -n "$key" ] && auth=(-H "Authorization: Bearer $key")

for _ in $(seq 1 300); do
  curl -sf -o /dev/null "$api/readyz" && break
  sleep 0.2
done
curl -sf -o /dev/null "$api/readyz" \
  || die "$api/readyz does not answer 200 (see $run_dir/api.log)"
echo "== fleet ready: $api ($workers worker(s), storage $storage)"

# --- submit ------------------------------------------------------------------------------------

echo
echo "== submitting ${#images[@]} image(s) with options $options"
ids=()
names_json="{}"
tag="demo-$(date +%s)-$$"
i=0
for img in "${images[@]}"; do
  i=$((i + 1))
  name="$(basename "$img")"
  # The Idempotency-Key makes a retried submission return the same job instead of a second one.
  code=$(curl -sS -o "$run_dir/submit.json" -w '%{http_code}' ${auth[@]+"${auth[@]}"} \
           -H "Idempotency-Key: $tag-$i" \
           -F "image=@$img" --form-string "options=$options" \
           "$api/api/jobs") || die "the API did not answer the submission of $img"
  if [ "$code" != 202 ] && [ "$code" != 200 ]; then
    echo "   $name: refused with HTTP $code: $(cat "$run_dir/submit.json")" >&2
    continue
  fi
  id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$run_dir/submit.json")
  ids+=("$id")
  names_json=$(python3 -c 'import json, sys; m = json.loads(sys.argv[1]); m[sys.argv[2]] = sys.argv[3]; print(json.dumps(m))' \
                 "$names_json" "$id" "$name")
  echo "   $name → job $id"
done
[ ${#ids[@]} -gt 0 ] || die "no job was accepted"

# --- follow: one SSE stream for every job ------------------------------------------------------

# Reads the event stream on stdin and prints one line per event: time, job short id, image,
# event type, and its stage / percent / step. Records the last SSE id (for Last-Event-ID) and the
# jobs that ended, so a reconnect resumes where the stream broke; writes STATE.done once every
# job has ended.
formatter=$(cat <<'PY'
import json, os, sys

state, names = sys.argv[1], json.loads(sys.argv[2])
try:
    ended = set(json.load(open(state + ".ended")))
except (OSError, ValueError):
    ended = set()

def detail(kind, d):
    if kind == "queued":
        pos, eta = d.get("position"), d.get("eta_seconds")
        text = "position " + ("?" if pos is None else str(pos))
        return text + ("" if eta is None else f", eta {eta:.1f}s")
    if kind == "started":
        return (f"on {d.get('worker') or '?'} ({d.get('device') or '?'}), "
                f"batch of {d.get('batch_size') or '?'}, attempt {d.get('attempt')}")
    if kind == "stage_started":
        return d.get("stage", "")
    if kind == "stage_finished":
        return f"{d.get('stage')} {d.get('seconds', 0):.3f}s" + ("" if d.get("ok") else " (failed)")
    if kind == "progress":
        text = f"{d.get('percent', 0):>3}% {d.get('stage')}"
        if d.get("step"):
            text += f" {d['step']}"
            if d.get("total"):
                text += f" {d.get('done')}/{d['total']}"
        return text
    if kind == "succeeded":
        secs = d.get("seconds")
        outputs = ", ".join(o.get("artifact", "?") for o in d.get("outputs", []))
        return (f"in {secs:.2f}s: " if secs is not None else "") + outputs
    if kind == "failed":
        return f"{d.get('code')} in {d.get('stage') or '?'}: {d.get('message')}"
    if kind == "canceled":
        return d.get("message") or ""
    return json.dumps(d)

def show(e):
    kind, job = e.get("type", "?"), e.get("job", "")
    print(f"{e.get('at', '')[11:19]}  {job[:8]}  {names.get(job, ''):<14} {kind:<15} "
          f"{detail(kind, e.get('data') or {})}", flush=True)
    if kind in ("succeeded", "failed", "canceled"):
        ended.add(job)
        with open(state + ".ended", "w") as f:
            json.dump(sorted(ended), f)

msg = {}
try:
    for raw in sys.stdin:
        line = raw.rstrip("\r\n")
        if line.startswith(":"):              # keep-alive comment
            continue
        if line == "":                        # the end of one message
            if "data" in msg:
                show(json.loads(msg["data"]))
                if "id" in msg:
                    with open(state + ".id", "w") as f:
                        f.write(msg["id"])
            msg = {}
            continue
        field, _, value = line.partition(":")
        msg[field] = value[1:] if value.startswith(" ") else value
except KeyboardInterrupt:
    sys.exit(130)
if len(ended) >= len(names):
    open(state + ".done", "w").close()
PY
)

echo
echo "== events (GET /api/events?jobs=…; one line per event: time, job, image, type, detail)"
ids_csv=$(IFS=,; echo "${ids[*]}")
state="$run_dir/events"
rm -f "$state.id" "$state.ended" "$state.done"
for attempt in 1 2 3 4 5; do
  resume=()
  if [ -s "$state.id" ]; then
    resume=(-H "Last-Event-ID: $(cat "$state.id")")
    echo "   (reconnecting after event id $(cat "$state.id"))"
  fi
  # The stream ends by itself once every job has ended; a broken one is resumed.
  curl -sS -N --fail ${auth[@]+"${auth[@]}"} ${resume[@]+"${resume[@]}"} "$api/api/events?jobs=$ids_csv" \
    | python3 -u -c "$formatter" "$state" "$names_json" || true
  [ -f "$state.done" ] && break
  if [ "$attempt" -lt 5 ]; then sleep 1; fi
done
[ -f "$state.done" ] || echo "demo.sh: the event stream ended before every job did" >&2

# --- results and operator read-outs ------------------------------------------------------------

# Prints one job's outcome from its view on stdin (exit status 0 when it succeeded) and keeps the
# first output link it sees in the file named by its second argument.
summarize=$(cat <<'PY'
import json, sys

name = sys.argv[1]
try:
    view = json.load(sys.stdin)
except ValueError:
    print(f"   {name:<14} (the job could not be read)")
    sys.exit(4)
total = sum(t.get("seconds", 0) for t in view.get("timings", []))
seg = view.get("segmentation") or {}
mask = f"mask {seg['method']} {100 * seg['mask_share']:.1f}%" if seg else "mask ?"
line = f"   {name:<14} {view['status']:<10} stages {total:6.3f}s  {mask}"
if view.get("error"):
    line += f"  [{view['error']['code']}] {view['error']['message']}"
for out in view.get("outputs", []):
    line += f"\n      {out['artifact']:<8} {out['url']}"
print(line)
if view.get("outputs"):                       # the first output seen, for the download hint
    try:
        with open(sys.argv[2], "x") as f:
            f.write(view["outputs"][0]["url"])
    except FileExistsError:
        pass
sys.exit(0 if view["status"] == "succeeded" else 3)
PY
)

echo
echo "== results (GET /api/jobs/{id})"
rm -f "$run_dir/first_output"
for id in "${ids[@]}"; do
  name=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$names_json" "$id")
  curl -sS --fail ${auth[@]+"${auth[@]}"} "$api/api/jobs/$id" \
    | python3 -c "$summarize" "$name" "$run_dir/first_output" || true
done
if [ -s "$run_dir/first_output" ]; then
  # fleet.env holds the key as ORFEAS_API_KEY: `source RUN_DIR/fleet.env` first.
  echo "   download: curl${key:+ -H \"Authorization: Bearer \$ORFEAS_API_KEY\"} -OJ $api$(cat "$run_dir/first_output")"
fi

echo
echo "== GET /api/performance/summary"
curl -sS --fail ${auth[@]+"${auth[@]}"} "$api/api/performance/summary" | python3 -m json.tool \
  || echo "demo.sh: the summary could not be read (an admin key is needed)" >&2

echo
echo "== GET /api/performance/recommendations"
curl -sS --fail ${auth[@]+"${auth[@]}"} "$api/api/performance/recommendations" | python3 -m json.tool \
  || echo "demo.sh: the recommendations could not be read (an admin key is needed)" >&2

echo
echo "== the Studio: $api/"
if [ -n "$key" ]; then
  echo "   sign in with the admin key: $key"
fi
echo "   the fleet's settings for orfeas jobs / loadtest: source $run_dir/fleet.env"
echo "   logs: $run_dir"

if [ "$hold" = 1 ]; then
  echo
  echo "The fleet keeps running; Ctrl-C stops it."
  # Until Ctrl-C (the trap stops the fleet), or until the fleet ends on its own.
  wait "$fleet_pid" || true
  fleet_pid=""
  echo "demo.sh: the fleet stopped on its own; see $run_dir/fleet.log" >&2
  exit 1
fi
