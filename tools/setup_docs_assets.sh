#!/usr/bin/env bash
# Offline copies of what the rendered pages load (MathJax 3, the Jupyter widgets HTML manager, RequireJS), pinned by
# tools/docs_assets/package.json + package-lock.json, installed with npm into .docs_assets/node_modules (gitignored);
# tools/render_docs.py copies the files it needs into _html/assets/. npm comes from apt (as root) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "docs assets: installing npm (apt-get) ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "docs assets: npm is needed (apt-get install npm, or Node.js from nodejs.org)." >&2; exit 1
  fi
fi
mkdir -p .docs_assets
cp tools/docs_assets/package.json tools/docs_assets/package-lock.json .docs_assets/
(cd .docs_assets && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
touch .docs_assets/node_modules/.installed
echo "docs assets: installed into .docs_assets/node_modules"
