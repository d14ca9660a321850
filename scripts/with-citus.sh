#!/usr/bin/env bash
# Run a command against a three-node Citus cluster (scripts/citus-cluster). A running
# cluster is used as it is; else one is started in a throwaway data directory (building
# Citus from a source tarball when needed) and stopped and deleted afterwards. The test
# database (test_notifications) is created on every node with the extension and migrated on
# the coordinator (migrate distributes the log there, logs/citus.py), then the command runs
# with DATABASE_URL pointing at the coordinator and DATABASE_CITUS=true. pytest must be given
# --reuse-db, so pytest-django keeps that database instead of creating one on the
# coordinator alone (and -n 0: one database).
#   scripts/with-citus.sh .venv/bin/pytest --reuse-db -n 0 tests/logs/test_citus.py
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
if ! scripts/citus-cluster status >/dev/null 2>&1; then
  started=1
  if [ -z "${CITUS_DATA_DIR:-}" ]; then
    CITUS_DATA_DIR=$(mktemp -d -t nlc-citus.XXXXXX)
    export CITUS_DATA_DIR
    throwaway=1
  fi
fi
cleanup() {
  if [ "$started" = 1 ]; then
    scripts/citus-cluster stop || true
    if [ "${throwaway:-0}" = 1 ]; then rm -rf "$CITUS_DATA_DIR"; fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

base_url=$(scripts/citus-cluster start)
test_url=$(scripts/citus-cluster createdb test_notifications)
export DATABASE_CITUS=true
DATABASE_URL="$test_url" .venv/bin/python manage.py migrate --verbosity 0
export DATABASE_URL="$base_url"
echo "with-citus.sh: Citus coordinator $base_url, test database test_notifications (the log distributed by environment)" >&2
"$@"
