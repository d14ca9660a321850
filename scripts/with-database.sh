#!/usr/bin/env bash
# Run a command against a throwaway database: DATABASE_URL when set, else an embedded
# PostgreSQL in a temporary data directory that is stopped and deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DATABASE_URL:-}" ]; then
  EMBEDDED_PGDATA=$(mktemp -d -t nlc-pgdata.XXXXXX)
  export EMBEDDED_PGDATA
  cleanup() {
    .venv/bin/python -m config.embedded stop >/dev/null 2>&1 || true
    rm -rf "$EMBEDDED_PGDATA" "$(dirname "$EMBEDDED_PGDATA")/.$(basename "$EMBEDDED_PGDATA").lock"
  }
  trap cleanup EXIT
  # A signal ends the script through `exit`, so the EXIT trap stops the server too.
  trap 'exit 130' INT
  trap 'exit 143' TERM HUP
  echo "DATABASE_URL unset: using an embedded PostgreSQL in $EMBEDDED_PGDATA"
fi
"$@"
