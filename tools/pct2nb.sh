#!/usr/bin/env bash
# Convert jupytext percent scripts to notebooks in nbs/ and clean them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
for f in "$@"; do
  name=$(basename "$f" .pct.py)
  "$here/.venv/bin/jupytext" --quiet --to ipynb --output "$here/nbs/$name.ipynb" "$f"
  "$here/.venv/bin/python" - "$here/nbs/$name.ipynb" <<'PY'
import sys, nbformat
p = sys.argv[1]; nb = nbformat.read(p, as_version=4)
nb.metadata = {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}
for c in nb.cells: c.metadata = {}
nbformat.write(nb, p)
PY
  "$here/.venv/bin/nbdev-clean" --fname "$here/nbs/$name.ipynb"
  echo "wrote nbs/$name.ipynb"
done
