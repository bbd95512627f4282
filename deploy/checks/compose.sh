#!/usr/bin/env bash
# Offline checks of the compose deployment; no Docker engine is needed.
#
#   bash deploy/checks/compose.sh          (from any directory)
#
# 1. docker-compose.yml as Compose reads it: Debian's docker-compose 1.29 (`config`, which
#    interpolates, resolves anchors and validates; installed with apt-get when missing).
# 2. The same file against the Compose Specification's JSON schema, vendored in
#    deploy/docker/compose-spec.json (compose-spec/compose-spec, schema/compose-spec.json at
#    commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6; the file last changed in a08f8d51,
#    2025-10-28), which also knows the keys newer than 1.29.
# 3. The Dockerfiles with hadolint.
# 4. `orfeas config check` for every service that runs orfeas, with exactly the ORFEAS__
#    variables the compose file sets for it: a misspelt key fails here, not at `up`. Then the
#    same check on a copy with one key misspelt, which must fail, so a check that passes
#    everything cannot go unnoticed.
#
# Python tools live in a virtual environment under ${ORFEAS_TOOLS_DIR:-~/.cache/orfeas/tools};
# the orfeas binary is ${CARGO_TARGET_DIR:-~/.cache/orfeas/target}/release/orfeas, built when
# absent or too old to have `config check`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
checks="$root/deploy/checks"
compose="$root/docker-compose.yml"
tools="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/orfeas/target}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '== %s\n' "$*"; }

venv="$tools/compose-venv"
if ! cmp -s "$checks/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$checks/requirements.txt"
  cp "$checks/requirements.txt" "$venv/requirements.txt"
fi
py="$venv/bin/python"

if ! command -v docker-compose > /dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get > /dev/null; then
    echo "docker-compose is missing: apt-get install docker-compose (as root, on Debian)" >&2
    exit 1
  fi
  apt-get install -y -qq --no-install-recommends docker-compose > /dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose > /dev/null; }
fi

# The file's own defaults, not this shell's settings: only a .env beside the file (a
# deployment's own values) is read, as `docker compose` reads it. The gpu profile is included so
# the GPU worker is checked too.
dc() { env -i PATH="$PATH" HOME="$HOME" docker-compose --project-directory "$root" -f "$compose" --profile gpu "$@"; }

step "docker-compose $(docker-compose version --short) config"
dc config -q
dc config > "$work/resolved.yml"
echo "docker-compose.yml: valid"

step "compose-spec JSON schema"
"$py" "$checks/compose_schema.py" "$root/deploy/docker/compose-spec.json" "$compose"

step "hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}')"
# DL3008 (pin apt package versions) is off: the base images are pinned by tag, and a pinned
# Debian package version disappears from the archive with its next security update.
"$venv/bin/hadolint" --ignore DL3008 "$root"/deploy/docker/Dockerfile*
echo "Dockerfiles: no findings"

step "orfeas config check, per service"
orfeas="$target/release/orfeas"
if ! "$orfeas" config check --help > /dev/null 2>&1; then
  CARGO_TARGET_DIR="$target" cargo build --release --quiet -p orfeas
fi
"$py" "$checks/compose_orfeas.py" "$work/resolved.yml" "$orfeas"

step "the check refuses a misspelt key"
"$py" - "$work/resolved.yml" "$work/misspelt.yml" <<'PY'
import sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
compose["services"]["api"]["environment"]["ORFEAS__API__LISTN"] = "0.0.0.0:8080"
yaml.safe_dump(compose, open(sys.argv[2], "w"))
PY
if "$py" "$checks/compose_orfeas.py" "$work/misspelt.yml" "$orfeas" > "$work/misspelt.out"; then
  cat "$work/misspelt.out" >&2
  echo "the per-service check passed ORFEAS__API__LISTN: it cannot catch a misspelt key" >&2
  exit 1
fi
grep '^api: FAILED' "$work/misspelt.out"
echo "compose checks passed"
