"""Health endpoints, and the settings profiles as an operator meets them: `manage.py` run in a
fresh process with the environment variables they set."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from config.db import statement_timeout_lifted

ROOT = Path(__file__).resolve().parent.parent


# Health endpoints


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_ready_when_database_migrations_and_redis_are(client, redis_url):
    from config.heartbeat import BEAT, QUEUES, heartbeat_write

    with override_settings(REDIS_URL=redis_url):
        for part in (BEAT, *QUEUES):  # workers and beat at work (tests/test_heartbeat.py)
            heartbeat_write(part)
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "background": "ok"},
    }


@pytest.mark.django_db
def test_readyz_skips_redis_when_it_is_not_configured(client):
    with override_settings(REDIS_URL=""):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ok"}


@pytest.mark.django_db
def test_readyz_answers_503_naming_redis_when_it_is_unreachable(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    assert body["checks"]["redis"].startswith("Redis unreachable")


@pytest.fixture
def fresh_process():
    """/readyz as a newly started process sees it: nothing known about the migrations yet."""
    from config import health

    health._migrated.clear()
    yield
    health._migrated.clear()


def _probe(client) -> tuple[int, dict, list[str]]:
    with override_settings(REDIS_URL=""), CaptureQueriesContext(connection) as queries:
        response = client.get("/readyz")
    return response.status_code, response.json(), [query["sql"] for query in queries]


@pytest.mark.django_db
def test_readyz_reads_the_migrations_once_per_process(client, fresh_process):
    first_status, _, first_sql = _probe(client)
    second_status, second, second_sql = _probe(client)

    assert first_status == second_status == 200
    assert second["checks"]["migrations"] == "ok"
    assert any("django_migrations" in sql for sql in first_sql)
    # A load balancer probes every few seconds: the later probes check PostgreSQL answers
    # (SELECT 1), not the migration graph.
    assert not [sql for sql in second_sql if "django_migrations" in sql], second_sql


@pytest.mark.django_db
def test_readyz_is_not_ready_while_a_migration_is_pending_then_ready_once_applied(
    client, fresh_process
):
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations)"
            " RETURNING app, name, applied"
        )
        unapplied = cursor.fetchone()

    status, body, _ = _probe(client)
    again, _, again_sql = _probe(client)

    assert (status, again) == (503, 503)
    assert body["status"] == "not ready"
    assert body["checks"]["migrations"] == "1 migration(s) not applied: run manage.py migrate"
    # Not ready is never remembered: each probe looks again.
    assert any("django_migrations" in sql for sql in again_sql)

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)", unapplied
        )
    status, body, _ = _probe(client)
    assert status == 200
    assert body["checks"]["migrations"] == "ok"


# Settings profiles, through manage.py in a subprocess


def database_url() -> str:
    """The test run's database as a DATABASE_URL, so the subprocess starts no embedded server."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or ""
    if host.startswith("/"):  # a Unix socket directory (the embedded server)
        return f"postgres://{user}{password}@/{quote(host, safe='')}/{db['NAME']}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def manage(*args: str, env: dict[str, str | None]) -> subprocess.CompletedProcess:
    """Run manage.py with os.environ plus `env` (a None value unsets the variable)."""
    environment = {**os.environ, "DATABASE_URL": database_url(), **env}
    environment = {name: value for name, value in environment.items() if value is not None}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def production(redis_url: str, **overrides: str | None) -> dict[str, str | None]:
    return {
        "APP_PROFILE": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),  # 64 characters
        "SECRETS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "example.com",
        "PUBLIC_BASE_URL": "https://example.com",
        **overrides,
    }


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_production_profile_passes_check_deploy_without_warnings(redis_url):
    result = manage("check", "--deploy", env=production(redis_url))

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("missing", "says"),
    [
        ("SECRET_KEY", "Set the SECRET_KEY environment variable"),
        ("SECRETS_ENCRYPTION_KEY", "Set SECRETS_ENCRYPTION_KEY to a Fernet key in production"),
        ("REDIS_URL", "Set REDIS_URL in production"),
        ("PUBLIC_BASE_URL", "Set the PUBLIC_BASE_URL environment variable"),
        ("ALLOWED_HOSTS", "Set ALLOWED_HOSTS in production"),
    ],
)
def test_production_profile_refuses_to_start_without_a_required_setting(redis_url, missing, says):
    result = manage("check", env=production(redis_url, **{missing: None}))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in last_line(result.stderr)
    assert says in last_line(result.stderr)


def test_unknown_profile_is_refused_naming_the_profiles():
    result = manage("check", env={"APP_PROFILE": "staging", "SECRET_KEY": "x" * 50})

    assert result.returncode != 0
    assert "APP_PROFILE='staging' is not a profile" in last_line(result.stderr)


def test_misspelt_setting_stops_start_up_with_the_name_it_probably_meant():
    result = manage(
        "check",
        env={"DATABSE_URL": "postgres://somewhere/else", "SECRET_KEY": secrets.token_urlsafe(48)},
    )

    assert result.returncode != 0
    assert "did you mean DATABASE_URL" in last_line(result.stderr)
    assert "DATABSE_URL" in last_line(result.stderr)


def test_production_logs_are_json_lines_on_stdout(redis_url):
    result = manage(
        "shell",
        "--verbosity",
        "0",
        "-c",
        "import logging; logging.getLogger('x').warning('hello')",
        env=production(redis_url),
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "x"
    assert entry["message"] == "hello"
    assert "hello" not in result.stderr


def test_production_refuses_an_empty_allowed_hosts(redis_url):
    # Set but empty (ALLOWED_HOSTS= or a stray comma) would start and answer 400 to everything.
    for value in ("", " , "):
        result = manage("check", env=production(redis_url, ALLOWED_HOSTS=value))

        assert result.returncode != 0
        assert "Set ALLOWED_HOSTS in production" in last_line(result.stderr)


@pytest.mark.parametrize("profile", ["production", "development"])
@pytest.mark.parametrize(
    ("keys", "says"),
    [
        ("not-a-fernet-key", "key 1 of 1 is not a Fernet key"),
        (f"{Fernet.generate_key().decode()},c2hvcnQ=", "key 2 of 2 is not a Fernet key"),
    ],
    ids=["malformed", "second-of-two-malformed"],
)
def test_a_malformed_encryption_key_stops_start_up_saying_how_to_make_one(
    redis_url, profile, keys, says
):
    result = manage(
        "check", env={**production(redis_url), "APP_PROFILE": profile,
                      "SECRETS_ENCRYPTION_KEY": keys},
    )  # fmt: skip

    assert result.returncode != 0
    message = last_line(result.stderr)
    assert "ImproperlyConfigured: SECRETS_ENCRYPTION_KEY" in message
    assert says in message
    assert "Fernet.generate_key()" in message
    assert "not-a-fernet-key" not in message and "c2hvcnQ=" not in message


# Database session limits


def session_setting(connection, name: str) -> str:
    """The setting in milliseconds, as text ("0": no limit)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = %s", [name])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_new_web_connection_carries_the_statement_and_lock_timeouts():
    # A connection of its own, as a web worker opens one (the test's connection ran migrate).
    connection = connections.create_connection("default")
    try:
        statement_timeout = session_setting(connection, "statement_timeout")
        lock_timeout = session_setting(connection, "lock_timeout")
    finally:
        connection.close()

    assert int(statement_timeout) == settings.DATABASE_STATEMENT_TIMEOUT > 0
    assert int(lock_timeout) == settings.DATABASE_LOCK_TIMEOUT > 0


def test_default_timeouts_suit_web_requests():
    result = manage(
        "shell", "--verbosity", "0", "-c",
        "from django.conf import settings as s; "
        "print(s.DATABASE_STATEMENT_TIMEOUT, s.DATABASE_LOCK_TIMEOUT)",
        env={"DATABASE_STATEMENT_TIMEOUT": None, "DATABASE_LOCK_TIMEOUT": None},
    )  # fmt: skip

    assert result.stdout.split() == ["30000", "5000"], result.stderr


def test_a_statement_past_the_timeout_is_cancelled(redis_url):
    result = manage(
        "shell", "--verbosity", "0", "-c",
        "from django.db import connection\n"
        "cursor = connection.cursor()\n"
        "cursor.execute('SHOW lock_timeout'); print('lock', cursor.fetchone()[0])\n"
        "cursor.execute('SELECT pg_sleep(5)')",
        env={"DATABASE_STATEMENT_TIMEOUT": "300", "DATABASE_LOCK_TIMEOUT": "1500"},
    )  # fmt: skip

    assert "lock 1500ms" in result.stdout
    assert result.returncode != 0
    assert "canceling statement due to statement timeout" in result.stderr


@pytest.mark.django_db
def test_long_maintenance_lifts_the_statement_timeout_for_its_own_block():
    before = session_setting(connection, "statement_timeout")
    with statement_timeout_lifted():
        assert session_setting(connection, "statement_timeout") == "0"
        # The lock limit stays: long work still never queues every writer behind it.
        assert session_setting(connection, "lock_timeout") != "0"
    assert session_setting(connection, "statement_timeout") == before != "0"


@pytest.mark.django_db
def test_migrate_runs_without_the_statement_timeout_and_restores_it():
    before = session_setting(connection, "statement_timeout")
    emit_pre_migrate_signal(verbosity=0, interactive=False, db="default")
    during = session_setting(connection, "statement_timeout")
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert during == "0"
    assert session_setting(connection, "statement_timeout") == before != "0"


def test_a_negative_timeout_is_refused():
    result = manage("check", env={"DATABASE_LOCK_TIMEOUT": "-1"})

    assert result.returncode != 0
    assert "DATABASE_LOCK_TIMEOUT is in milliseconds" in last_line(result.stderr)


# The hot paths' statements, prepared once per connection (logs.statements.prepared_rows)


def _prepared_statements_after(statement: str, runs: int, columns: str, env: dict) -> str:
    """What pg_prepared_statements shows (`columns`) after a new process ran `statement`
    (SQL and parameters, as Python source) through prepared_rows `runs` times."""
    script = (
        "from django.db import connection\n"
        "from django.utils import timezone\n"
        "from logs.statements import prepared_rows\n"
        f"for _ in range({runs}): prepared_rows({statement})\n"
        "cursor = connection.cursor()\n"
        f"cursor.execute('SELECT {columns} FROM pg_prepared_statements')\n"
        "print(repr(cursor.fetchall()))\n"
    )
    result = manage("shell", "--verbosity", "0", "-c", script, env=env)
    assert result.returncode == 0, result.stderr
    return last_line(result.stdout)


_PLUS_ONE = "'SELECT %s::int + 1', [41]"


@pytest.mark.django_db
def test_hot_path_statements_are_prepared_once_per_connection():
    # Once, though run three times (without DATABASE_PREPARED_STATEMENTS psycopg ignored the
    # request to prepare, and PostgreSQL parsed and planned the statement every time).
    assert _prepared_statements_after(_PLUS_ONE, 3, "statement", {}) == (
        "[('SELECT $1::int + 1',)]"
    )


@pytest.mark.django_db
def test_a_prepared_statement_over_the_partitioned_log_is_planned_once():
    statement = (
        "'SELECT id FROM logs_event WHERE notification_created_at = %s AND id = %s', "
        "[timezone.now(), 1]"
    )
    # One generic plan, run eight times. Left to PostgreSQL's choice, a plan made for the
    # values at hand prunes the day's partitions at planning and looks cheaper: it planned
    # all eight anew, [(0, 8)].
    assert _prepared_statements_after(statement, 8, "generic_plans, custom_plans", {}) == (
        "[(8, 0)]"
    )


@pytest.mark.django_db
def test_prepared_statements_can_be_turned_off_for_a_pooler():
    off = {"DATABASE_PREPARED_STATEMENTS": "false"}
    assert _prepared_statements_after(_PLUS_ONE, 3, "statement", off) == "[]"
