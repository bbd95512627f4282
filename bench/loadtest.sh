#!/usr/bin/env bash
# The fleet's sustained throughput and latency with 1, 2 and 4 inflate workers on this machine,
# measured with `orfeas loadtest` against `scripts/fleet_local.sh`. For each worker count:
#  1. a ramp of Poisson arrivals from RAMP_FROM to RAMP_TO jobs/s over RAMP_S seconds, driven
#     past what the fleet can do; its capacity is the best 10 s of completions;
#  2. a steady run at SHARE of that capacity for STEADY_S seconds: completed jobs/s, end-to-end
#     latency, queue wait against run time, batch sizes, and the CPU each part of the machine
#     used meanwhile (API, workers, PostgreSQL, RabbitMQ, Redis, s3s-fs, the load generator).
# Reports (JSON and Markdown per run) and a summary table go to OUT.
#
#   bash bench/loadtest.sh      # WORKERS="1 2 4" RAMP_FROM=0.5 RAMP_TO=12 RAMP_S=60 STEADY_S=60
#                               # SHARE=0.85 OPTIONS='{"formats":["glb"]}' OUT=/tmp/…
#
# Everything shares this machine's cores: run it on an otherwise idle machine (the load average
# is recorded with the figures).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
workers_list=${WORKERS:-"1 2 4"}
ramp_from=${RAMP_FROM:-0.5}
ramp_to=${RAMP_TO:-12}
ramp_s=${RAMP_S:-60}
steady_s=${STEADY_S:-60}
share=${SHARE:-0.85}
# The product's default job (resolution 256, GLB), on the three sample images in turn.
options=${OPTIONS:-'{"formats":["glb"]}'}
out="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/orfeas-loadtest.XXXXXX")}"
mkdir -p "$out"

cargo build --release -q -p orfeas
bin="$CARGO_TARGET_DIR/release/orfeas"
clk=$(getconf CLK_TCK)

fleet=""
stop_fleet() {
  if [ -n "$fleet" ]; then
    kill -TERM "$fleet" 2>/dev/null || true
    wait "$fleet" 2>/dev/null || true
    fleet=""
  fi
}
trap stop_fleet EXIT

# CPU ticks (user + system) per part of the machine, as JSON: the fleet's own processes by the
# ids the fleet script wrote, the shared services by their command names.
cpu_snapshot() {
  python3 - "$ORFEAS_FLEET_PIDS" <<'EOF'
import json, os, sys
groups = {}
def add(group, pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        groups[group] = groups.get(group, 0) + int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        pass
for entry in sys.argv[1].split():
    name, pid = entry.rsplit(":", 1)
    add("workers" if name.startswith("worker") else name, pid)
services = {"postgres": "postgresql", "beam.smp": "rabbitmq", "redis-server": "redis"}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        comm = open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        continue
    if comm in services:
        add(services[comm], pid)
print(json.dumps(groups))
EOF
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reports in $out"
for n in $workers_list; do
  echo
  echo "== $n worker(s)"
  run_dir="$out/fleet-$n"
  RUST_LOG=warn bash scripts/fleet_local.sh --workers "$n" --run-dir "$run_dir" > "$out/fleet-$n.log" 2>&1 &
  fleet=$!
  for _ in $(seq 1 300); do
    [ -f "$run_dir/fleet.env" ] && break
    kill -0 "$fleet" 2>/dev/null || { cat "$out/fleet-$n.log" >&2; exit 1; }
    sleep 0.5
  done
  set -a
  # shellcheck disable=SC1091
  . "$run_dir/fleet.env"
  set +a

  "$bin" loadtest --images samples --options "$options" --ramp "$ramp_from:$ramp_to" \
    --duration "${ramp_s}s" --seed 1 --drain-timeout 600s \
    --json "$out/ramp-$n.json" --markdown "$out/ramp-$n.md" > /dev/null 2> "$out/ramp-$n.progress"
  read -r capacity end_in_flight < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
w = int(r["throughput"]["window_s"])
print(r["throughput"]["peak_completed_per_s"], r["timeline"][min(w, len(r["timeline"])) - 1]["in_flight"])
' "$out/ramp-$n.json")
  rate=$(python3 -c "print(round($share * $capacity, 2))")
  echo "ramp $ramp_from → $ramp_to/s over ${ramp_s}s: best 10 s $capacity jobs/s, $end_in_flight in flight at its end"
  if [ "$end_in_flight" -lt $((4 * n)) ]; then
    echo "warning: the ramp hardly queued anything at its end; raise RAMP_TO to find the capacity" >&2
  fi

  before=$(cpu_snapshot)
  /usr/bin/time -f "%e %U %S" -o "$out/steady-$n.time" \
    "$bin" loadtest --images samples --options "$options" --rate "$rate" --duration "${steady_s}s" \
    --seed 2 --drain-timeout 300s --json "$out/steady-$n.json" --markdown "$out/steady-$n.md" \
    > /dev/null 2> "$out/steady-$n.progress"
  after=$(cpu_snapshot)
  python3 - "$before" "$after" "$out/steady-$n.time" "$clk" > "$out/steady-$n.cpu.json" <<'EOF'
import json, sys
before, after = json.loads(sys.argv[1]), json.loads(sys.argv[2])
wall, user, system = map(float, open(sys.argv[3]).read().split()[-3:])
clk = int(sys.argv[4])
cpu = {g: (after[g] - before.get(g, 0)) / clk for g in after}
cpu["loadtest"] = user + system
print(json.dumps({"cpu_s": cpu, "wall_s": wall}))
EOF
  echo "steady at $rate/s for ${steady_s}s: $(python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); t = r["throughput"]; e = r["latency_s"]["e2e"]; c = r["counts"]
print("completed %.2f/s, e2e p50 %.2f s, p95 %.2f s, errors %d"
      % (t["completed_per_s"], e["p50"], e["p95"], c["sent"] - c["succeeded"]))
' "$out/steady-$n.json")"
  stop_fleet
done

python3 - "$out" $workers_list > "$out/summary.md" <<'EOF'
import json, sys
out, counts = sys.argv[1], sys.argv[2:]
print("| workers | capacity (ramp, best 10 s) | offered | completed jobs/s | e2e p50 / p95 / p99 | queue wait p50 / p95 | run time p50 / p95 | mean batch (sizes) | errors | load avg at end |")
print("|---|---|---|---|---|---|---|---|---|---|")
cpu_rows = []
for n in counts:
    ramp = json.load(open(f"{out}/ramp-{n}.json"))
    s = json.load(open(f"{out}/steady-{n}.json"))
    cpu = json.load(open(f"{out}/steady-{n}.cpu.json"))
    l = s["latency_s"]
    f = lambda v: f"{v:.2f}"
    sizes = ", ".join(f"{b}: {c}" for b, c in s["batch_sizes"].items())
    errors = s["counts"]["sent"] - s["counts"]["succeeded"]
    la = s["load_average"]["end"] or ["?"]
    print(f"| {n} | {ramp['throughput']['peak_completed_per_s']:.2f}/s | {s['profile']['rate']:.2f}/s "
          f"| **{s['throughput']['completed_per_s']:.2f}/s** "
          f"| {f(l['e2e']['p50'])} / **{f(l['e2e']['p95'])}** / {f(l['e2e']['p99'])} s "
          f"| {f(l['queue_wait']['p50'])} / {f(l['queue_wait']['p95'])} s "
          f"| {f(l['run']['p50'])} / {f(l['run']['p95'])} s "
          f"| {s['mean_batch_size']:.2f} ({sizes}) | {errors} | {la[0]} |")
    c = cpu["cpu_s"]
    cpu_rows.append((n, cpu["wall_s"], c))
print()
print("Cores used during the steady run (CPU seconds over its wall time, the load generator's drain included):")
print()
groups = ["workers", "api", "postgresql", "rabbitmq", "redis", "s3s-fs", "loadtest"]
print("| workers | " + " | ".join(groups) + " | total |")
print("|---|" + "---|" * (len(groups) + 1))
for n, span, c in cpu_rows:
    cells = [f"{c.get(g, 0) / span:.2f}" for g in groups]
    print(f"| {n} | " + " | ".join(cells) + f" | **{sum(c.get(g, 0) for g in groups) / span:.2f}** |")
EOF
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
cat "$out/summary.md"
