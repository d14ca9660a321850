import django.contrib.postgres.fields
import django.contrib.postgres.indexes
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# The inbox is range-partitioned by day on received_at, which Django's schema editor cannot
# express: the database operation is this SQL, the state operation the usual CreateModel (as
# in logs/migrations/0001_initial.py). The DEFAULT partition takes any row whose day has no
# partition yet; logs/partitions.py creates the days and drops them with the log's.
CREATE_TABLE = """
CREATE SEQUENCE webhooks_inbox_id_seq;
CREATE TABLE webhooks_inbox (
    id bigint NOT NULL DEFAULT nextval('webhooks_inbox_id_seq'),
    received_at timestamp with time zone NOT NULL,
    provider varchar(50) NOT NULL,
    path text NOT NULL,
    headers jsonb NOT NULL,
    body bytea NOT NULL,
    environment_id bigint NULL
        REFERENCES accounts_environment (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    environment_restricted boolean NOT NULL,
    state varchar(12) NOT NULL,
    attempts integer NOT NULL CHECK (attempts >= 0),
    next_attempt_at timestamp with time zone NULL,
    processed_at timestamp with time zone NULL,
    message_ids varchar(255)[] NOT NULL,
    events_recorded integer NOT NULL CHECK (events_recorded >= 0),
    error text NOT NULL,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
ALTER SEQUENCE webhooks_inbox_id_seq OWNED BY webhooks_inbox.id;
CREATE TABLE webhooks_inbox_default PARTITION OF webhooks_inbox DEFAULT;
"""

DROP_TABLE = "DROP TABLE webhooks_inbox;"


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE_TABLE, DROP_TABLE)],
            state_operations=[
                migrations.CreateModel(
                    name="InboxEntry",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("received_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("provider", models.CharField(max_length=50)),
                        ("path", models.TextField()),
                        ("headers", models.JSONField(blank=True, default=dict)),
                        ("body", models.BinaryField()),
                        ("environment_restricted", models.BooleanField(default=False)),
                        (
                            "state",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("processed", "Processed"),
                                    ("orphaned", "Orphaned"),
                                    ("unparseable", "Unparseable"),
                                    ("rejected", "Rejected"),
                                ],
                                default="pending",
                                max_length=12,
                            ),
                        ),
                        ("attempts", models.PositiveIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "message_ids",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=255),
                                blank=True,
                                default=list,
                            ),
                        ),
                        ("events_recorded", models.PositiveIntegerField(default=0)),
                        ("error", models.TextField(blank=True)),
                        (
                            "environment",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.DB_CASCADE,
                                related_name="+",
                                to="accounts.environment",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "inbox callback",
                        "verbose_name_plural": "inbox",
                        "db_table": "webhooks_inbox",
                        "ordering": ["-received_at", "-id"],
                    },
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="inboxentry",
            index=models.Index(
                models.F("next_attempt_at"),
                condition=models.Q(("state", "pending")),
                name="inbox_pending_due",
            ),
        ),
        migrations.AddIndex(
            model_name="inboxentry",
            index=django.contrib.postgres.indexes.GinIndex(
                models.F("message_ids"),
                condition=models.Q(("state", "orphaned")),
                name="inbox_orphan_ids",
            ),
        ),
        migrations.AddIndex(
            model_name="inboxentry",
            index=models.Index(
                models.F("state"),
                models.OrderBy(models.F("received_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="inbox_state",
            ),
        ),
        migrations.AddIndex(
            model_name="inboxentry",
            index=models.Index(
                models.F("environment"),
                models.OrderBy(models.F("received_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="inbox_env",
            ),
        ),
    ]
