# adm_edu — `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format docs readme bench export clean-venv sync-check nbtest pytest data \
	test-slow execute-all

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

# Fashion-MNIST: Debian's package (as root with apt), else the download, else one clear message and
# a stop.
data: $(STAMP)
	@bash tools/setup_data.sh

demo: $(STAMP) data
	$(BIN)/adm-edu-demo

# lint first (a format or lint violation stops here), then: data, library in sync with the
# notebooks, committed outputs fresh, every notebook's tests (slow/gpu cells skipped), pytest (with
# tests/test_code_style.py: lines of the generated adm_edu/ <= 100 characters, no `;`), then the
# rendered site in headless Chromium (installs Debian's chromium and the npm assets when missing)
test: $(STAMP)
	@$(MAKE) --no-print-directory lint
	@bash tools/setup_data.sh
	@$(MAKE) --no-print-directory sync-check check-outputs nbtest pytest docs-test

# ruff as configured in pyproject.toml, over nbs/*.ipynb, tests/, tools/ and bench/ (adm_edu/ is
# generated from nbs/ and left out): `ruff format --check` (the code is as ruff format writes it)
# and `ruff check` (pycodestyle E and W: lines <= 100 characters, one statement per line: no `;`,
# no `if x: y`, one import per line, whitespace). Fails on any violation.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# rewrite the files in ruff's format and apply ruff's safe fixes; what is left (long comments and
# strings) `make lint` lists for hand-editing
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sync-check: $(STAMP)
	@bash tools/check_sync.sh

nbtest: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev-test --n-workers 2 --timing

# every chapter with a `#| slow` cell, run with those cells included (nbdev-test --flags slow); each
# slow cell is a small live version that reads the full run's record (about 12 min of CPU time
# here; the weekly workflow .github/workflows/slow.yaml runs it). `#| gpu` cells stay skipped.
SLOW_NBS = $(shell grep -l '"\#| slow' nbs/*.ipynb | xargs -n1 basename | sed 's/\./\\./' | paste -sd'|')
test-slow: $(STAMP)
	@bash tools/setup_data.sh
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev-test --flags slow --n-workers 2 --timing \
	  --file-re '^($(SLOW_NBS))$$'

pytest: $(STAMP)
	$(BIN)/pytest -q tests

# the library from the notebooks, then `__all__` rewrapped to the line length (nbdev wraps at 120)
export: $(STAMP)
	$(BIN)/nbdev-export
	$(BIN)/python tools/wrap_all.py

# the site: nbdev-docs when Quarto is installed, else tools/render_docs.py (nbconvert, offline
# assets) into _html/. Re-executes every chapter first (make execute: about 6 min of notebook time
# on this 2-core CPU, slow cells left out).
docs: $(STAMP)
	@$(MAKE) --no-print-directory execute
	@if command -v quarto >/dev/null 2>&1; then \
	  $(BIN)/nbdev-docs; \
	else \
	  echo "Quarto is not installed, so nbdev-docs cannot build the site (see quarto.org)."; \
	  echo "Rendering each notebook to HTML with nbconvert instead, into _html/ ..."; \
	  $(MAKE) --no-print-directory docs-html && echo "Open _html/index.html"; \
	fi

.PHONY: docs-html docs-assets docs-test check-outputs execute

# re-execute every chapter in place, keeping outputs (slow cells left out: they retrain models or
# run whole tables; the figures of GPU runs are drawn from results/). About 6 min of notebook time
# here (4.5 min in two processes).
execute: $(STAMP)
	$(BIN)/python tools/execute_nbs.py --skip-slow

# every chapter in place with its slow cells too (the small live versions, ~12 min more); `#| gpu`
# cells run only where a CUDA device is visible
execute-all: $(STAMP)
	$(BIN)/python tools/execute_nbs.py --with-slow

DOCS_ASSETS := .docs_assets/node_modules/.installed

# MathJax, the widgets HTML manager and RequireJS from npm (pinned in tools/docs_assets/), so pages
# work offline
$(DOCS_ASSETS): tools/docs_assets/package.json tools/docs_assets/package-lock.json
	@bash tools/setup_docs_assets.sh

docs-assets: $(DOCS_ASSETS)

docs-html: $(STAMP) $(DOCS_ASSETS)
	$(BIN)/python tools/render_docs.py --out _html

# every page of _html/ in headless Chromium, 1280 px wide (console, images, MathJax, saved widgets,
# no code block or equation cut off on the right, every static explorer moved, no request off the
# machine) + the live explorers of two chapters under voila; screenshots in _browser/.
# Chromium: Debian's, installed by tools/setup_browser.sh when missing (as root).
# One page: .venv/bin/python tools/browser_test.py --pages ddim --no-live
docs-test: $(STAMP)
	@bash tools/setup_browser.sh
	@$(MAKE) --no-print-directory docs-html
	ADM_EDU_BROWSER_TEST=1 $(BIN)/pytest -q -s -p no:cacheprovider tests/test_browser.py

# committed outputs match their notebook's code (no execution; tools/execute_nbs.py makes them)
check-outputs: $(STAMP)
	$(BIN)/python tools/check_outputs.py -q

readme: $(STAMP)
	@if command -v quarto >/dev/null 2>&1; then \
	  $(BIN)/nbdev-readme; \
	else \
	  echo "Quarto not found: README.md from nbs/index.ipynb with nbconvert's markdown exporter."; \
	  $(BIN)/python tools/make_readme.py; \
	fi

# every bench/ script at a ~10-minute size; all figures (ratios against a baseline run alongside)
# -> results/bench/latest-cpu.json + a table
bench: $(STAMP)
	$(BIN)/python bench/run_all.py --out results/bench/latest-cpu.json

clean-venv:
	rm -rf $(VENV)
