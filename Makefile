# alphadag: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 3000
PYTEST_ARGS ?=
# one pytest run on TEST_WORKERS xdist workers: each test file on one worker (module fixtures built
# once), the files of slow process tests (daemons, webservers, Celery, a browser) first, in
# collection order (tests/integration/conftest.py); fast files fill in on both workers
TEST_WORKERS ?= 2

# PYTHON: 3.11, 3.12 or 3.13, an installed interpreter (uv.lock resolves for all three)
PYTHON ?= 3.11
# three package sets in one .venv, each synced when pyproject.toml or uv.lock changes (a stamp each):
#   demo: the main dependencies only (what `make demo` and a production code location need)
#   dev:  demo + the dg CLI (`make dev`)
#   test: everything: the test group (pytest, reference libraries, playwright, ruff, dg) and every
#         extra (celery, postgres, yfinance); the only exact sync (drops packages the lock no longer has)
# demo and dev sync with --inexact, so running them after `make test` removes nothing.
DEMO_SYNC := --no-default-groups --inexact
DEV_SYNC := --no-default-groups --group dg --inexact
TEST_SYNC := --no-default-groups --group test --all-extras

.PHONY: demo test bytecode dev lint format env env-demo env-dev env-test dagster-home clean bench-features bench-backtest mlflow-ui

env: env-test
env-demo: $(VENV)/.synced-demo
env-dev: $(VENV)/.synced-dev
env-test: $(VENV)/.synced-test

# $(1): the uv sync options of one package set
define uv_sync
	@# uv is looked up when the recipe runs: pip may install it anywhere on PATH or only as a module
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@# --compile-bytecode: every process (tests, runs, daemons) imports from .pyc files; without
	@# them a process where PYTHONDONTWRITEBYTECODE is set recompiles ~5,600 modules (~17 s) each time
	@if command -v uv >/dev/null 2>&1; then uv sync --frozen --python $(PYTHON) --compile-bytecode $(1); \
	 else python3 -m uv sync --frozen --python $(PYTHON) --compile-bytecode $(1); fi
	@touch $@
endef

$(VENV)/.synced-demo: pyproject.toml uv.lock
	$(call uv_sync,$(DEMO_SYNC))

$(VENV)/.synced-dev: pyproject.toml uv.lock
	$(call uv_sync,$(DEV_SYNC))

$(VENV)/.synced-test: pyproject.toml uv.lock
	$(call uv_sync,$(TEST_SYNC))

bytecode: env-demo
	@$(VENV)/bin/python -m compileall -q src > /dev/null

dagster-home:
	@mkdir -p "$(DAGSTER_HOME)"
	@cp deploy/local/dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

demo: env-demo bytecode dagster-home ## materialize the whole graph on the embedded default and print a summary
	$(VENV)/bin/alphadag demo

test: env-test bytecode ## the whole suite (slow process tests and fast ones, dg check defs among them) on 2 xdist workers
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

dev: env-dev dagster-home ## Dagster UI + daemon on 127.0.0.1:3000 (dg dev: the location workspace.yaml names)
	$(VENV)/bin/dg dev -h $(HOST) -p $(PORT) -w workspace.yaml

lint: env
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

format: env
	$(VENV)/bin/ruff check --fix src tests bench
	$(VENV)/bin/ruff format src tests bench

clean:
	rm -rf .alphadag .dagster_home .pytest_cache .ruff_cache

bench-features: env ## features vs TA-Lib loop vs pandas (bench/features.py)
	$(VENV)/bin/python bench/features.py

bench-backtest: env-test bytecode ## backtest engine vs backtesting.py and vectorbt (bench/backtest.py)
	$(VENV)/bin/python bench/backtest.py

mlflow-ui: env-demo ## MLflow UI (experiments, model registry) on 127.0.0.1:5000
	@mkdir -p .alphadag/mlartifacts
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///.alphadag/mlflow.db \
		--default-artifact-root .alphadag/mlartifacts --host 127.0.0.1 --port 5000
