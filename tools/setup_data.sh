#!/usr/bin/env bash
# Make Fashion-MNIST available before `make test` / `make demo` run, or stop with one clear line.
# Order: $ADM_EDU_DATA -> Debian's dataset-fashion-mnist (installed here with apt when running as root)
#        -> the download into the cache (the library's own fallback) -> one message saying what to install.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
have() { "$PY" -c 'import sys; from adm_edu.data import fashion_mnist_dir; fashion_mnist_dir(download=False)' >/dev/null 2>&1; }
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Fashion-MNIST not found: installing Debian's dataset-fashion-mnist ..."
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1
  have && exit 0
fi
echo "Fashion-MNIST not found: trying the download into ~/.cache/adm_edu ..."
if "$PY" -c 'from adm_edu.data import fashion_mnist_dir; fashion_mnist_dir(download=True)' >/dev/null 2>&1; then exit 0; fi
echo "ERROR: Fashion-MNIST is not available and could not be installed or downloaded. Install Debian's package (sudo apt-get install dataset-fashion-mnist) or set ADM_EDU_DATA to a directory holding the four IDX .gz files, then run make again." >&2
exit 1
