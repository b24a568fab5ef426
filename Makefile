# regsweep: every target sets up .venv first if it is missing (or pyproject.toml changed).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.regsweep-installed
ARGS ?=
PYTEST_ARGS ?= -n 2 --dist load

.PHONY: setup sweep test lint unit bench dashboard report clean

$(STAMP): pyproject.toml
	@bash scripts/check-disk $(VENV)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,postgres,cluster]"
	@touch $(STAMP)

setup: $(STAMP)

## Run the default study (digits: each regularizer family searched, pruned, then its finalist and
## the unregularized baseline confirmed on 5 seeds) into outputs/studies.db, then print the answer.
sweep: setup
	$(PY) -m sweep -m $(ARGS)
	@if [ -z "$(ARGS)" ]; then $(PY) -m analysis; fi

## Lint, check the layout (ruff format), type-check, and run the tests (PostgreSQL tests need initdb; scripts/ensure-postgres).
test: setup
	@bash scripts/ensure-postgres || true
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## Speed and memory targets, measured side by side; JSON under outputs/bench/.
bench: setup
	$(PY) -m benchmarks $(ARGS)

## optuna-dashboard on the default study database (http://127.0.0.1:8080).
dashboard: setup
	$(VENV)/bin/optuna-dashboard sqlite:///$(CURDIR)/outputs/studies.db --host 127.0.0.1 --port 8080

## The generalization-gap report of the most recent study in the default database.
report: setup
	$(PY) -m analysis $(ARGS)

clean:
	rm -rf outputs/* .pytest_cache .mypy_cache .ruff_cache
