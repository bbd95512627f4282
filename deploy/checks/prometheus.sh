#!/usr/bin/env bash
# Validates the monitoring configuration: every Prometheus rule file (promtool check rules),
# its unit tests (promtool test rules), both Prometheus configurations (promtool check config,
# which checks the rule files they name too), the Alertmanager configuration as committed and
# as render.sh writes it (amtool check-config), and where each severity is routed (amtool
# config routes test). Installs Debian's prometheus and prometheus-alertmanager packages when
# promtool or amtool is missing. Runs from any directory; exits non-zero on the first failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
prom="$root/deploy/prometheus"
am="$root/deploy/alertmanager"

step() { printf '\n== %s\n' "$*"; }

if ! command -v promtool >/dev/null || ! command -v amtool >/dev/null; then
  step "installing promtool and amtool (Debian packages)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be missing or stale on a fresh machine.
  if ! $sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager; then
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager
  fi
fi
promtool --version 2>&1 | head -n1
amtool --version 2>&1 | head -n1

shopt -s nullglob
rules=("$prom"/rules/*.yml)
tests=("$prom"/tests/*.yml)
if [ ${#rules[@]} -eq 0 ] || [ ${#tests[@]} -eq 0 ]; then
  echo "no rule files or no tests under $prom" >&2
  exit 1
fi

step "promtool check rules"
promtool check rules "${rules[@]}"

step "promtool test rules"
promtool test rules "${tests[@]}"

# Every alert has a runbook entry whose heading is the alert's name (the anchor its
# runbook_url points at).
step "runbook entries"
alerts=$(grep -ho '^ *- alert: [A-Za-z0-9]*' "${rules[@]}" | awk '{print $3}')
missing=0
for a in $alerts; do
  if ! grep -qx "## $a" "$root/docs/operations/alerts.md"; then
    echo "no '## $a' in docs/operations/alerts.md" >&2
    missing=1
  fi
  if ! grep -q "#${a,,}\"" "${rules[@]}"; then
    echo "$a's runbook_url does not point at #${a,,}" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ]
echo "$(echo "$alerts" | wc -w) alerts, each with its runbook entry"

step "promtool check config"
promtool check config "$prom/prometheus.yml"
promtool check config "$prom/prometheus-local.yml"

step "amtool check-config"
amtool check-config "$am/alertmanager.yml"
rendered="$(mktemp --suffix=.yml)"
trap 'rm -f "$rendered"' EXIT
ORFEAS_ALERT_PAGER_URL='https://events.example.com/v2/enqueue?routing=a&b=\x' \
ORFEAS_ALERT_TICKET_URL='http://tickets.internal:8080/alertmanager' \
  "$am/render.sh" > "$rendered"
amtool check-config "$rendered"
grep -qF "url: 'https://events.example.com/v2/enqueue?routing=a&b=\\x'" "$rendered"
grep -qF "url: 'http://tickets.internal:8080/alertmanager'" "$rendered"
if grep -q 'orfeas-alerts.invalid' "$rendered"; then
  echo "render.sh left a placeholder URL" >&2
  exit 1
fi

step "amtool config routes test"
route() {
  local expected="$1"
  shift
  amtool config routes test --config.file="$am/alertmanager.yml" \
    --verify.receivers="$expected" "$@" 2>/dev/null
}
route pager severity=page alertname=OrfeasNoWorkersForQueuedJobs engine=hunyuan3d
route ticket severity=ticket alertname=OrfeasQueueBacklogGrowing engine=inflate
route null severity=info alertname=Anything
route ticket alertname=NoSeverity

printf '\nmonitoring configuration: all checks passed\n'
