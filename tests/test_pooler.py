"""Behind a pooler in transaction mode (DATABASE_POOLER=transaction): no startup options, no
server-side cursors, no session state left on a server connection. The same tests run in the
PgBouncer pass (scripts/with-pgbouncer.sh), where the last one checks they really go through
the pooler."""

import pytest
from django.conf import settings
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection, connections, transaction

from config.db import role_settings_apply, statement_timeout_lifted
from tests.test_config import last_line, manage, session_setting


def test_pooled_settings_send_no_startup_options_and_use_no_server_side_cursors():
    result = manage(
        "shell", "--verbosity", "0", "-c",
        "from django.conf import settings as s; d = s.DATABASES['default']; "
        "print(d['OPTIONS'].get('options'), d.get('DISABLE_SERVER_SIDE_CURSORS'), "
        "s.DATABASE_PREPARED_STATEMENTS)",
        env={"DATABASE_POOLER": "transaction", "DATABASE_PREPARED_STATEMENTS": None},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert last_line(result.stdout) == "None True False"


def test_an_unknown_pooler_mode_is_refused_saying_what_to_set():
    result = manage("check", env={"DATABASE_POOLER": "session-ish"})
    assert result.returncode != 0
    assert "set it to 'transaction' behind a pooler in transaction mode" in last_line(result.stderr)


@pytest.mark.django_db
def test_migrate_makes_the_timeouts_the_roles_defaults_in_the_database_when_pooled(
    settings,
):
    settings.DATABASE_POOLED = True
    role_settings_apply()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT unnest(setconfig) FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase AND d.datname = current_database() "
            "JOIN pg_roles r ON r.oid = s.setrole AND r.rolname = current_user"
        )
        defaults = {row[0] for row in cursor.fetchall()}
    assert f"statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT}" in defaults
    assert f"lock_timeout={settings.DATABASE_LOCK_TIMEOUT}" in defaults


@pytest.mark.django_db(transaction=True)
def test_a_pooled_lift_ends_with_its_transaction_and_leaves_nothing_behind(settings):
    settings.DATABASE_POOLED = True
    before = session_setting(connection, "statement_timeout")
    with transaction.atomic():
        with statement_timeout_lifted():
            assert session_setting(connection, "statement_timeout") == "0"
        assert session_setting(connection, "statement_timeout") == before
        emit_pre_migrate_signal(verbosity=0, interactive=False, db="default")
        assert session_setting(connection, "statement_timeout") == "0"
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
        assert session_setting(connection, "statement_timeout") == before
    # Outside a transaction a session SET would stay on the server connection for the next
    # client: pooled, the lift does nothing there.
    with statement_timeout_lifted():
        assert session_setting(connection, "statement_timeout") == before != "0"


@pytest.mark.django_db
def test_a_new_connection_has_the_timeouts_through_the_pooler_too():
    # Direct: the libpq options. Pooled: the role's defaults that migrate set.
    other = connections.create_connection("default")
    try:
        statement_timeout = session_setting(other, "statement_timeout")
        lock_timeout = session_setting(other, "lock_timeout")
    finally:
        other.close()
    assert int(statement_timeout) == settings.DATABASE_STATEMENT_TIMEOUT > 0
    assert int(lock_timeout) == settings.DATABASE_LOCK_TIMEOUT > 0


@pytest.mark.django_db
@pytest.mark.skipif(not settings.DATABASE_POOLED, reason="the PgBouncer pass only")
def test_the_pgbouncer_pass_really_goes_through_the_pooler():
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        server_port = cursor.fetchone()[0]
    assert int(settings.DATABASES["default"]["PORT"]) != server_port
    assert settings.DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS") is True
