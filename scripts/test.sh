#!/usr/bin/env bash
# The test suite: pytest on real PostgreSQL and Redis, then the benchmark smoke run.
# pytest runs in TEST_PROCESSES processes (pytest-xdist; default 3: most long tests wait on
# servers, workers and outages rather than compute), each with a PostgreSQL test database and
# a Redis database of its own (tests/conftest.py). TEST_PROCESSES=0 runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
processes="${TEST_PROCESSES:-3}"
parallel=()
if [ "$processes" != "0" ]; then
  parallel=(-n "$processes" --dist worksteal)
fi
scripts/with-database.sh bash -c '.venv/bin/pytest "$@" && .venv/bin/python -m bench --smoke' _ \
  "${parallel[@]}" "$@"
