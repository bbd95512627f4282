#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the external mesh validators it needs
# (Khronos glTF-Validator from npm, trimesh from PyPI) and the Studio's browser test (Debian's
# Chromium, Playwright and axe-core pinned in api/studio/package-lock.json) into a cache outside
# the clone, then runs
# formatting and lint checks, every test of the workspace, and the offline checks of the
# deployment files (deploy/checks/*.sh).
#
#   bash scripts/test.sh
#
# Cargo builds into $CARGO_TARGET_DIR (default ~/.cache/orfeas/target) so later runs reuse it;
# validators and the S3 test server live in $ORFEAS_TOOLS_DIR (default ~/.cache/orfeas/tools).
# PostgreSQL, RabbitMQ and Redis run on every machine of this project; any that is down is
# started here with the same commands a new machine uses. The S3-compatible server (s3s-fs,
# which checks request signatures) is installed from crates.io on first use and started on a
# free local port for the duration of the run.
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

step "the Studio's browser test: Debian's Chromium, the pinned npm packages, the vendored copy"
if ! command -v chromium > /dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium \
    || { $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium; }
fi
# Installs the packages pinned in api/studio/package-lock.json into the tools cache and fails if
# api/studio/vendor/ is not byte for byte what they ship.
ORFEAS_TOOLS_DIR="$tools" bash scripts/studio_vendor.sh --check
export ORFEAS_STUDIO_NODE_MODULES="$tools/studio/node_modules"
export CHROMIUM="$(command -v chromium)"
export ORFEAS_REQUIRE_BROWSER=1

step "services: PostgreSQL, RabbitMQ, Redis"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 1 120); do port_open "$1" && return 0; sleep 0.5; done; echo "port $1 never opened" >&2; return 1; }
if ! port_open 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_port 5432
fi
if ! port_open 6379; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_port 6379
fi
if ! port_open 5672; then
  rabbitmq-server -detached
  wait_port 5672
fi
rabbitmqctl -q await_startup
# The management API: the broker backstop's policies are applied through it.
if ! port_open 15672; then
  rabbitmq-plugins -q enable rabbitmq_management > /dev/null
  wait_port 15672
fi
# RabbitMQ's Prometheus endpoint (:15692): the dashboards test scrapes it.
if ! port_open 15692; then
  rabbitmq-plugins -q enable rabbitmq_prometheus > /dev/null
  wait_port 15692
fi
# Debian's Prometheus: the dashboards test runs it against a test fleet.
if ! command -v prometheus > /dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends prometheus \
    || { $sudo apt-get update && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends prometheus; }
fi
export ORFEAS_TEST_AMQP_MANAGEMENT="http://guest:guest@127.0.0.1:15672"
echo "PostgreSQL, Redis and RabbitMQ (with its management and Prometheus endpoints) are up; Prometheus installed"

step "S3-compatible server (s3s-fs 0.14.1)"
s3bin="$tools/s3s/bin/s3s-fs"
if [ ! -x "$s3bin" ]; then
  CARGO_TARGET_DIR="$tools/s3s-build" cargo install --locked --quiet s3s-fs --version 0.14.1 --features binary --root "$tools/s3s"
fi
s3root="$(mktemp -d)"
s3port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$s3bin" --host 127.0.0.1 --port "$s3port" --access-key orfeas-test --secret-key orfeas-test-secret "$s3root" \
  > "$s3root.log" 2>&1 &
s3pid=$!
wait_port "$s3port"
export ORFEAS_TEST_S3_ENDPOINT="http://127.0.0.1:$s3port"
export ORFEAS_TEST_S3_ROOT="$s3root"
export ORFEAS_TEST_S3_ACCESS_KEY=orfeas-test
export ORFEAS_TEST_S3_SECRET_KEY=orfeas-test-secret
export ORFEAS_TEST_S3_BIN="$s3bin"
export ORFEAS_REQUIRE_SERVICES=1
echo "s3s-fs on $ORFEAS_TEST_S3_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (release profile, all targets, warnings are errors)"
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo test (release profile: one build serves the binary, the tests and the benchmarks)"
log="$(mktemp)"
trap 'kill "$s3pid" 2>/dev/null || true; rm -rf "$log" "$s3root" "$s3root.log"' EXIT
status=0
cargo test --release --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# The deployment files (compose, Kubernetes, Prometheus rules and Alertmanager) checked offline
# with the real tools; each check installs what it needs into the tools cache or from Debian and
# runs `orfeas config check` with the binary the tests just built.
for check in deploy/checks/*.sh; do
  step "$check"
  bash "$check" 2>&1 | tee -a "$log" || status=$?
done
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
