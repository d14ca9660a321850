#!/usr/bin/env bash
# The test suite: pytest on real PostgreSQL and Redis, then the benchmark smoke run.
# pytest runs in TEST_PROCESSES processes (pytest-xdist; default 3: most long tests wait on
# servers, workers and outages rather than compute), each with a PostgreSQL test database and
# a Redis database of its own (tests/conftest.py). TEST_PROCESSES=0 runs it in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
# Redis: REDIS_URL, else one on 127.0.0.1:6379 (CI starts the system's), else the embedded
# one of `make run` (config/embedded_redis.py) in a throwaway directory, stopped at the end.
if [ -z "${REDIS_URL:-}" ]; then
  if .venv/bin/python -c "import redis; redis.Redis(socket_connect_timeout=1).ping()" 2>/dev/null; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
  else
    EMBEDDED_REDIS_DIR="$(mktemp -d)"
    export EMBEDDED_REDIS_DIR
    trap '.venv/bin/python -m config.embedded_redis stop >/dev/null; rm -rf "$EMBEDDED_REDIS_DIR"' EXIT
    REDIS_URL="$(.venv/bin/python -m config.embedded_redis start)"
    export REDIS_URL
    echo "No Redis on 127.0.0.1:6379: the tests use an embedded one (${EMBEDDED_REDIS_DIR})."
  fi
fi
processes="${TEST_PROCESSES:-3}"
parallel=()
if [ "$processes" != "0" ]; then
  parallel=(-n "$processes" --dist worksteal)
fi
scripts/with-database.sh bash -c '.venv/bin/pytest "$@" && .venv/bin/python -m bench --smoke' _ \
  "${parallel[@]}" "$@"
