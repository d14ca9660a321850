#!/usr/bin/env bash
# The test suite: pytest on real PostgreSQL and Redis, then the benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
scripts/with-database.sh bash -c '.venv/bin/pytest "$@" && .venv/bin/python -m bench --smoke' _ "$@"
