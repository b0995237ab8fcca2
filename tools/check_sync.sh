#!/usr/bin/env bash
# Fail when `nbdev-export` would change the library: adm_edu/*.py must be regenerated from nbs/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r adm_edu "$tmp/before"
.venv/bin/nbdev-export
if ! diff -r -q -x __pycache__ -x weights -x results "$tmp/before" adm_edu >"$tmp/diff"; then
  echo "Library out of sync with the notebooks: nbdev-export changed these files (commit the regenerated ones):"
  cat "$tmp/diff"
  exit 1
fi
echo "Library in sync with notebooks."
