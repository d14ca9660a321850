# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
UV_VERSION := 0.13.8
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint format bench bench-smoke bench-10m bench-citus install clean-db

# Installs the locked dependencies (uv.lock) into .venv, once per change of the lock.
$(VENV)/.installed: pyproject.toml uv.lock
	@test -x $(BIN)/python || { PY=$$(scripts/find-python) && $$PY -m venv $(VENV) || { \
		rm -rf $(VENV); echo "Could not create $(VENV) with $$PY: install its venv module (Debian/Ubuntu: apt-get install python3-venv, or python3.12-venv)." >&2; exit 1; }; }
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --inexact --extra test --python $(BIN)/python
	@touch $@

install: $(VENV)/.installed

## The whole product on http://127.0.0.1:8000: web, Celery workers and beat, a populated demo
## (embedded PostgreSQL and Redis when DATABASE_URL and REDIS_URL are unset). Ctrl-C stops it all.
run: install
	$(BIN)/python scripts/run.py

## The whole suite: lint, format check, the import layers (lint-imports: pyproject.toml's
## [tool.importlinter]), pytest on real PostgreSQL and Redis, benchmark smoke run.
test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	scripts/test.sh

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Benchmarks at full size (prints a table, writes bench/results.json).
bench: install
	scripts/with-database.sh $(BIN)/python -m bench

bench-smoke: install
	scripts/with-database.sh $(BIN)/python -m bench --smoke

## Opt-in: the searches, the API list, a day's purge and the disk at 10,000,000 notifications
## (hours, and free disk of 10,000,000 x storage.bytes; writes bench/results-10m.json).
bench-10m: install
	scripts/with-database.sh $(BIN)/python -m bench --scale 10m

## The searches, send.sender and callback freshness on one PostgreSQL and on a three-node Citus
## cluster (scripts/citus-cluster; started and stopped when none runs), with the ratios
## (writes bench/results-citus.json).
bench-citus: install
	scripts/with-database.sh $(BIN)/python -m bench --citus

## Stop the embedded PostgreSQL and Redis of `make run` (they stop by themselves when make run exits).
clean-db:
	$(BIN)/python -m config.embedded stop
	$(BIN)/python -m config.embedded_redis stop
