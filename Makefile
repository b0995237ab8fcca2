# adm_edu — `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test docs readme bench export clean-venv sync-check nbtest pytest

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/adm-edu-demo

# library in sync with notebooks, every notebook's tests (slow/gpu cells skipped), then pytest
test: $(STAMP)
	@$(MAKE) --no-print-directory sync-check nbtest pytest

sync-check: $(STAMP)
	@bash tools/check_sync.sh

nbtest: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2 --timing

pytest: $(STAMP)
	$(BIN)/pytest -q tests

export: $(STAMP)
	$(BIN)/nbdev-export

docs: $(STAMP)
	@if command -v quarto >/dev/null 2>&1; then \
	  $(BIN)/nbdev-docs; \
	else \
	  echo "Quarto is not installed, so nbdev-docs cannot build the site (install it from quarto.org)."; \
	  echo "Rendering each notebook to HTML with nbconvert instead, into _html/ ..."; \
	  $(BIN)/jupyter nbconvert --to html --output-dir _html nbs/*.ipynb && echo "Open _html/index.html"; \
	fi

readme: $(STAMP)
	@if command -v quarto >/dev/null 2>&1; then \
	  $(BIN)/nbdev-readme; \
	else \
	  echo "Quarto not found: generating README.md from nbs/index.ipynb with nbconvert's markdown exporter."; \
	  $(BIN)/python tools/make_readme.py; \
	fi

bench: $(STAMP)
	@set -e; for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean-venv:
	rm -rf $(VENV)
