# The two commands: `make dev` and `make test`. Both install what they need first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# uv from PATH if present, else the one `install` puts beside $(PYTHON).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# `make test` spreads the suite over the cores (pytest-xdist, at most 8 workers); each worker
# has a database, a Redis database and AWS names of its own. TEST_WORKERS=0: one process.
TEST_WORKERS ?= auto

.PHONY: help install dev test lint format audit services services-install browser-install chart-tools bench bench-tools chaos clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(BIN)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet --disable-pip-version-check 'uv>=0.5'
	$(UV) sync --frozen
	@touch $@

install: $(BIN)/.synced ## Install the locked dependencies into .venv

dev: install ## Run the whole platform on embedded defaults at http://127.0.0.1:8000
	$(BIN)/pickup dev

services-install: ## Install PostgreSQL and Redis from Debian's packages where missing
	@bash scripts/install-services.sh

services: install services-install ## Start PostgreSQL, Redis and moto for the tests if not running
	$(BIN)/python -m tests.services

browser-install: ## Install Chromium for the browser tests where missing
	@bash scripts/install-browser.sh

chart-tools: ## Fetch helm, kubectl and the manifest checkers into .cache/tools; promtool from Debian
	$(PYTHON) scripts/chart_tools.py install --checkov --allow-offline
	@bash scripts/install-debian-tool.sh promtool prometheus

lint: install ## ruff lint and format check
	$(BIN)/ruff check services operators tests migrations scripts bench
	$(BIN)/ruff format --check services operators tests migrations scripts bench

# Exit 2 (fail) when the vulnerability service could not answer for every package; `make
# test` passes AUDIT_INCOMPLETE=warn so it still runs, with a loud banner, on such a machine.
AUDIT_INCOMPLETE ?= fail
audit: install ## pip-audit of every locked package (PyPI's vulnerability data); see SECURITY.md
	$(BIN)/python scripts/audit.py --incomplete=$(AUDIT_INCOMPLETE)

format: install ## Format the code
	$(BIN)/ruff format services operators tests migrations scripts bench
	$(BIN)/ruff check --fix services operators tests migrations scripts bench

bench-tools: ## Install wrk (Debian's package) for the benchmarks if missing
	@bash scripts/install-bench-tools.sh

bench: install services-install bench-tools ## Benchmarks against same-run baselines (~5 min); bench/results/latest.json
	$(BIN)/python -m bench.run $(BENCH_ARGS)

chaos: install services-install ## Fault-injection suite under steady load (~5 min); bench/results/chaos.json, docs/reliability.md
	$(BIN)/python -m bench.chaos.run $(CHAOS_ARGS)

test: AUDIT_INCOMPLETE = warn
test: services browser-install lint audit chart-tools ## Run the whole suite against real PostgreSQL, Redis and moto
	@bash scripts/install-bench-tools.sh >/dev/null || echo "warning: no wrk; the benchmark smoke test is skipped"
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses 8 --dist worksteal $(PYTEST_ARGS)

clean: ## Remove the virtualenv, caches and development data
	rm -rf $(VENV) .cache var .pytest_cache .ruff_cache .hypothesis
