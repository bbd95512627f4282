#!/usr/bin/env bash
# ORFEAS Studio's one build step: copy model-viewer (which bundles three.js and lit) from the
# npm package pinned in api/studio/package-lock.json into api/studio/vendor/, where the API binary
# embeds it. The Studio itself is plain ES modules and CSS, served as written.
#
#   bash scripts/studio_vendor.sh           # install the pinned packages, refresh vendor/
#   bash scripts/studio_vendor.sh --check   # install them and fail if vendor/ differs
#
# The packages (with the browser test's Playwright and axe-core) are installed with `npm ci` into
# $ORFEAS_TOOLS_DIR/studio (default ~/.cache/orfeas/tools/studio), reused while the lock file is
# unchanged; the test suite runs the check and points the browser test at that folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/api/studio"
dir="${ORFEAS_TOOLS_DIR:-$HOME/.cache/orfeas/tools}/studio"
mkdir -p "$dir"
if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" || [ ! -d "$dir/node_modules" ]; then
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  npm ci --silent --no-audit --no-fund --prefix "$dir"
fi
pkg="$dir/node_modules/@google/model-viewer"
files=("dist/model-viewer.min.js:model-viewer.min.js" "LICENSE:model-viewer.LICENSE")
status=0
for pair in "${files[@]}"; do
  from="$pkg/${pair%%:*}"
  to="$src/vendor/${pair##*:}"
  if [ "${1:-}" = "--check" ]; then
    if ! cmp -s "$from" "$to"; then
      echo "api/studio/vendor/${pair##*:} differs from the pinned package's ${pair%%:*}; run bash scripts/studio_vendor.sh" >&2
      status=1
    fi
  else
    cp "$from" "$to"
  fi
done
[ "${1:-}" = "--check" ] && [ "$status" = 0 ] && echo "api/studio/vendor matches the pinned packages"
exit "$status"
