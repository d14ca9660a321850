#!/usr/bin/env bash
# Run a command against a three-node Citus cluster (scripts/citus-cluster): the cluster is
# started when it is not running (building Citus from a source tarball when needed), the test
# database (test_notifications) is created on every node with the extension and migrated on
# the coordinator (migrate distributes the log tables there, logs/citus.py), then the command
# runs with DATABASE_URL pointing at the coordinator. pytest must be given --reuse-db, so
# pytest-django keeps that database instead of creating one on the coordinator alone.
# A cluster this script started is stopped afterwards; one that was running is left running.
#   scripts/with-citus.sh .venv/bin/pytest --reuse-db tests/logs/test_citus.py
set -euo pipefail
cd "$(dirname "$0")/.."

was_running=1
scripts/citus-cluster status >/dev/null 2>&1 || was_running=0
base_url=$(scripts/citus-cluster start)
test_db="test_notifications"
cleanup() {
  if [ "$was_running" = 0 ]; then scripts/citus-cluster stop || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

test_url=$(scripts/citus-cluster createdb "$test_db")
DATABASE_URL="$test_url" .venv/bin/python manage.py migrate --verbosity 0
export DATABASE_URL="$base_url"
echo "with-citus.sh: Citus coordinator $base_url (test database $test_db: the log distributed by environment)" >&2
"$@"
