#!/usr/bin/env bash
# Make a headless Chromium available for tools/browser_test.py (make docs-test). Playwright's Python package (dev extra)
# drives it through executable_path, so no browser is downloaded: Debian's `chromium` is used.
#   - $CHROMIUM or chromium / chromium-browser / google-chrome already on PATH: nothing to do;
#   - else, as root with apt-get: apt-get install chromium (chromium-driver too, for anyone who prefers Selenium);
#   - else: one clear message and exit 1.
set -euo pipefail
for c in "${CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
  if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
    echo "browser: $(command -v "$c") ($("$c" --version 2>/dev/null | head -1))"; exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium (apt-get) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
  echo "browser: $(command -v chromium) ($(chromium --version 2>/dev/null | head -1))"
  exit 0
fi
echo "browser: no Chromium found. Install one (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM=/path/to/chrome." >&2
exit 1
