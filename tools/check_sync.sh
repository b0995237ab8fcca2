#!/usr/bin/env bash
# Fail when `make export` (nbdev-export, then tools/wrap_all.py) would change the library:
# adm_edu/*.py must be regenerated from nbs/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r adm_edu "$tmp/before"
.venv/bin/nbdev-export >/dev/null
.venv/bin/python tools/wrap_all.py >/dev/null
if ! diff -r -q -x __pycache__ -x weights -x results "$tmp/before" adm_edu >"$tmp/diff"; then
  echo "Library out of sync with the notebooks: `make export` changed these files (commit the regenerated ones):"
  cat "$tmp/diff"
  exit 1
fi
echo "Library in sync with notebooks."
