#!/usr/bin/env bash
# Prints alertmanager.yml with the receivers' placeholder URLs replaced by the real webhook
# endpoints, taken from the environment so they stay out of the repository:
#
#   ORFEAS_ALERT_PAGER_URL=https://… ORFEAS_ALERT_TICKET_URL=https://… \
#     deploy/alertmanager/render.sh > /etc/alertmanager/alertmanager.yml
#
# The URLs are copied literally (no sed or shell pattern meaning for & or \), and refused if
# they would break the YAML quoting around them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${ORFEAS_ALERT_PAGER_URL:?set ORFEAS_ALERT_PAGER_URL to the pager webhook URL}"
: "${ORFEAS_ALERT_TICKET_URL:?set ORFEAS_ALERT_TICKET_URL to the ticket webhook URL}"
for url in "$ORFEAS_ALERT_PAGER_URL" "$ORFEAS_ALERT_TICKET_URL"; do
  case "$url" in
    http://*|https://*) ;;
    *) echo "render.sh: not an http(s) URL: $url" >&2; exit 1 ;;
  esac
  if [[ "$url" == *"'"* || "$url" == *$'\n'* ]]; then
    echo "render.sh: a quote or newline in a URL would break the YAML: $url" >&2
    exit 1
  fi
done

# ENVIRON, not awk -v, so that backslashes reach the output unchanged.
awk '
  function swap(line, from, to,   i) {
    i = index(line, from)
    return i ? substr(line, 1, i - 1) to substr(line, i + length(from)) : line
  }
  {
    line = swap($0, "https://pager.orfeas-alerts.invalid/webhook", ENVIRON["ORFEAS_ALERT_PAGER_URL"])
    print swap(line, "https://tickets.orfeas-alerts.invalid/webhook", ENVIRON["ORFEAS_ALERT_TICKET_URL"])
  }
' "$here/alertmanager.yml"
