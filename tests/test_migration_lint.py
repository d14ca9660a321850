"""The migration linter (config/migration_lint.py) passes every migration of the project, and
fails a migration that would stop the log's writers: it is what keeps a blocking statement on a
log table from landing again."""

import pytest
from django.contrib.postgres.functions import RandomUUID
from django.db import connection, migrations, models
from django.db.migrations.executor import MigrationExecutor

from config.migration_lint import lint, lint_sql, migration_sql, migrations_sql
from logs.migration_operations import (
    PartitionedIndexAdd,
    PartitionedIndexRemove,
    PartitionedIndexReplace,
)

pytestmark = pytest.mark.django_db


def _rules(findings) -> set[str]:
    return {finding.rule for finding in findings}


# Outside a transaction, as migrate runs: AddIndexConcurrently refuses to emit its SQL inside
# one, even when it is only collected.
@pytest.mark.django_db(transaction=True)
def test_no_migration_takes_a_blocking_lock_on_a_log_table():
    migrations_linted = migrations_sql()
    assert {"logs.0001_initial", "logs.0007_email_index_includes_email"} <= {
        m.label for m in migrations_linted
    }
    findings = lint(migrations_linted)
    assert not findings, "\n".join(map(str, findings))


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("CREATE INDEX notif_x ON logs_notification (email);", "require-concurrent-index-creation"),
        (
            'CREATE INDEX "x" ON "logs_event_p20261207" ("kind");',
            "require-concurrent-index-creation",
        ),
        (
            "ALTER TABLE logs_notification ADD COLUMN tag uuid DEFAULT gen_random_uuid();",
            "adding-field-with-default",
        ),
        (
            'ALTER TABLE "logs_delivery" ALTER COLUMN "sent_at" SET NOT NULL;',
            "adding-not-nullable-field",
        ),
        (
            "ALTER TABLE logs_event ADD CONSTRAINT c CHECK (kind <> 'x');",
            "constraint-missing-not-valid",
        ),
        ("ALTER TABLE logs_event ALTER COLUMN detail TYPE varchar(10);", "changing-column-type"),
        ("REINDEX TABLE logs_delivery;", "require-concurrent-reindex"),
        ("VACUUM FULL logs_notification_default;", "vacuum-full"),
        ("CLUSTER logs_event USING event_env_kind;", "cluster"),
    ],
)
def test_a_blocking_statement_on_a_log_table_fails(sql, rule):
    assert rule in _rules(lint_sql(sql))


def test_an_index_dropped_by_name_on_a_log_model_fails():
    # DROP INDEX names no table: the operation it came from says it is on the log.
    assert _rules(lint_sql("DROP INDEX notif_env_email;", on_log=True)) == {
        "require-concurrent-index-deletion"
    }


@pytest.mark.parametrize(
    "sql",
    [
        # A fillfactor takes SHARE UPDATE EXCLUSIVE: writers go on.
        "ALTER TABLE logs_notification_p20261207 SET (fillfactor = 90);",
        "ALTER TABLE logs_event SET (fillfactor = 90);",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS x ON logs_event_default (kind);",
        "ALTER TABLE logs_notification ADD COLUMN note text NULL;",
        # AddField with a constant default: no rewrite since PostgreSQL 11.
        'ALTER TABLE "logs_event" ADD COLUMN "late" boolean DEFAULT false NOT NULL;\n'
        'ALTER TABLE "logs_event" ALTER COLUMN "late" DROP DEFAULT;',
        "ALTER TABLE logs_event ADD CONSTRAINT c CHECK (kind <> 'x') NOT VALID;",
        "ALTER TABLE logs_event VALIDATE CONSTRAINT c;",
        # Not a log table: small tables are not checked.
        "CREATE INDEX x ON accounts_environment (name);",
        # The documented exception: squawk's comment, with the reason, right above.
        "-- squawk-ignore require-concurrent-index-creation -- ON ONLY: catalog only\n"
        "CREATE INDEX x ON ONLY logs_notification (email);",
    ],
)
def test_online_statements_and_other_tables_pass(sql):
    assert lint_sql(sql) == []


def _latest_state():
    return MigrationExecutor(connection).loader.project_state()


def _migration(name: str, operations: list, *, atomic: bool = True):
    class Migration(migrations.Migration):
        pass

    migration = Migration(name, "logs")
    migration.operations = operations
    migration.atomic = atomic
    return migration


EMAIL_DOMAIN = models.Index(models.F("environment"), models.F("email"), name="notif_env_mail")


def test_a_migration_with_django_operations_that_block_the_log_fails():
    bad = _migration(
        "0999_blocks_the_log",
        [
            migrations.AddIndex(model_name="notification", index=EMAIL_DOMAIN),
            migrations.AddField(
                model_name="notification",
                name="trace",
                field=models.UUIDField(db_default=RandomUUID()),
            ),
            migrations.AlterField(
                model_name="notification",
                name="scheduled_for",
                field=models.DateTimeField(),
            ),
            migrations.RemoveIndex(model_name="notification", name="notif_env_user"),
        ],
    )
    sql, _ = migration_sql(bad, _latest_state())
    assert _rules(lint([sql])) == {
        "require-concurrent-index-creation",
        "adding-field-with-default",
        "adding-not-nullable-field",
        "require-concurrent-index-deletion",
    }


def test_the_same_index_changes_made_online_pass():
    good = _migration(
        "0999_online",
        [
            PartitionedIndexAdd(model_name="notification", index=EMAIL_DOMAIN),
            PartitionedIndexReplace(
                model_name="notification",
                index=models.Index(
                    models.F("environment"),
                    models.F("user_id"),
                    models.OrderBy(models.F("created_at"), descending=True),
                    name="notif_env_user",
                ),
            ),
            PartitionedIndexRemove(model_name="notification", name="notif_env_user"),
        ],
        atomic=False,
    )
    sql, _ = migration_sql(good, _latest_state())
    assert lint([sql]) == []
    text, _ = sql.text()
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in text
    assert 'ON ONLY "logs_notification"' in text


def test_an_online_index_in_an_atomic_migration_fails():
    # CREATE INDEX CONCURRENTLY cannot run in the migration's transaction.
    atomic = _migration(
        "0999_atomic", [PartitionedIndexAdd(model_name="notification", index=EMAIL_DOMAIN)]
    )
    sql, _ = migration_sql(atomic, _latest_state())
    assert "ban-concurrent-index-creation-in-transaction" in _rules(lint([sql]))
