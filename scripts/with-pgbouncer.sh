#!/usr/bin/env bash
# Run a command through a real PgBouncer in transaction mode: PgBouncer is started on a free
# port in front of DATABASE_URL's server, the test database (test_<name>) is created and
# migrated directly (a pooler is no place for CREATE DATABASE or migrations), then the
# command runs with DATABASE_URL pointing at PgBouncer and DATABASE_POOLER=transaction.
# pytest must be given --reuse-db, so pytest-django keeps that database instead of creating
# one through the pooler. PgBouncer refuses to run as root: as root it runs as `postgres`.
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
#     scripts/with-pgbouncer.sh .venv/bin/pytest --reuse-db tests/test_pooler.py
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "with-pgbouncer.sh: $*" >&2; exit 1; }
[ -n "${DATABASE_URL:-}" ] || fail "set DATABASE_URL to the PostgreSQL server to put PgBouncer in front of."
command -v pgbouncer >/dev/null || fail "pgbouncer is not installed (Debian/Ubuntu: apt-get install pgbouncer)."

# host, port, user, password, database name, and a free port for PgBouncer.
read -r db_host db_port db_user db_password db_name bouncer_port < <(.venv/bin/python - <<'PY'
import os, socket
from urllib.parse import parse_qs, unquote, urlsplit

url = urlsplit(os.environ["DATABASE_URL"])
host = unquote(url.hostname or "") or parse_qs(url.query).get("host", ["127.0.0.1"])[0]
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    free = probe.getsockname()[1]
print(host, url.port or 5432, unquote(url.username or "postgres"),
      unquote(url.password or "") or "-", url.path.lstrip("/") or "postgres", free)
PY
)
[ "$db_password" = "-" ] && db_password=""
direct_url="$DATABASE_URL"
test_db="test_${db_name}"

workdir=$(mktemp -d -t nlc-pgbouncer.XXXXXX)
run_as=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || fail "running as root and there is no postgres user for PgBouncer to run as."
  chown postgres "$workdir"
  run_as=(runuser -u postgres --)
fi
cat >"$workdir/pgbouncer.ini" <<INI
[databases]
* = host=$db_host port=$db_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $workdir/userlist.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 40
logfile = $workdir/pgbouncer.log
pidfile = $workdir/pgbouncer.pid
INI
printf '"%s" "%s"\n' "$db_user" "$db_password" >"$workdir/userlist.txt"
chmod a+r "$workdir"/*

direct() {  # SQL on the server itself (its maintenance database), not through PgBouncer
  .venv/bin/python -c 'import os, sys, psycopg
with psycopg.connect(sys.argv[1], dbname="postgres", autocommit=True) as c:
    c.execute(sys.argv[2])' "$direct_url" "$1"
}
cleanup() {
  if [ -f "$workdir/pgbouncer.pid" ]; then
    kill "$(cat "$workdir/pgbouncer.pid")" 2>/dev/null || true
  fi
  direct "DROP DATABASE IF EXISTS \"$test_db\" WITH (FORCE)" || true
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

"${run_as[@]}" pgbouncer -d "$workdir/pgbouncer.ini"
for _ in $(seq 1 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$bouncer_port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$bouncer_port") 2>/dev/null \
  || fail "PgBouncer did not listen on port $bouncer_port: $(tail -n 5 "$workdir/pgbouncer.log" 2>/dev/null)"

export DATABASE_POOLER=transaction
direct "DROP DATABASE IF EXISTS \"$test_db\" WITH (FORCE)"
direct "CREATE DATABASE \"$test_db\""
# Migrated directly, as a pooled install runs migrate; with DATABASE_POOLER set, migrate
# makes the timeouts the role's defaults in that database (config/db.py).
DATABASE_URL="$(.venv/bin/python -c 'import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u._replace(path="/" + sys.argv[2]).geturl())' "$direct_url" "$test_db")" \
  .venv/bin/python manage.py migrate --verbosity 0

auth="$db_user${db_password:+:$db_password}"
export DATABASE_URL="postgres://$auth@127.0.0.1:$bouncer_port/$db_name"
echo "with-pgbouncer.sh: PgBouncer $(pgbouncer --version | head -n1 | cut -d' ' -f2) in transaction mode on 127.0.0.1:$bouncer_port in front of $db_host:$db_port"
"$@"
