"""In-app items are opened and clicked (Engagement - Opened, - Clicked): the CHECK constraints
that keep each sub-kind to its channels (logs.vocabulary.SUB_KINDS_BY_CHANNEL) let the in-app
channel carry them.

The new constraints only allow more than the old, but PostgreSQL proves a CHECK constraint by
reading every row of every partition, under a lock that stops the writers. So, as docs/architecture.md
asks of maintenance on the log: each constraint is swapped NOT VALID in one short statement
(dropping the old and adding the new, under a short lock_timeout, retried), then validated,
which reads the partitions under a lock that lets reads and writes go on.
"""

import time

from django.conf import settings
from django.db import migrations, models
from django.db.utils import OperationalError

_CONSTRAINTS = {
    "delivery": models.CheckConstraint(
        condition=models.Q(
            ("state_detail", ""),
            models.Q(
                ("channel", ""),
                ("state_detail__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            models.Q(
                ("channel", "call"),
                (
                    "state_detail__in",
                    [
                        "busy",
                        "cannot_reach",
                        "completed",
                        "dashboard_preference",
                        "no_answer",
                        "plan_limit",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "email"),
                (
                    "state_detail__in",
                    [
                        "bounce",
                        "clicked",
                        "complained",
                        "dashboard_preference",
                        "delivery_delay",
                        "opened",
                        "plan_limit",
                        "unsubscribed",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "in_app"),
                (
                    "state_detail__in",
                    ["clicked", "dashboard_preference", "opened", "plan_limit", "user_preference"],
                ),
            ),
            models.Q(
                ("channel", "push"),
                ("state_detail__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            models.Q(
                ("channel", "sms"),
                (
                    "state_detail__in",
                    [
                        "dashboard_preference",
                        "infrastructure",
                        "plan_limit",
                        "undelivered",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "web_push"),
                ("state_detail__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            _connector="OR",
        ),
        name="delivery_state_detail_fits_channel",
    ),
    "event": models.CheckConstraint(
        condition=models.Q(
            ("sub_kind", ""),
            models.Q(
                ("channel", ""),
                ("sub_kind__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            models.Q(
                ("channel", "call"),
                (
                    "sub_kind__in",
                    [
                        "busy",
                        "cannot_reach",
                        "completed",
                        "dashboard_preference",
                        "no_answer",
                        "plan_limit",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "email"),
                (
                    "sub_kind__in",
                    [
                        "bounce",
                        "clicked",
                        "complained",
                        "dashboard_preference",
                        "delivery_delay",
                        "opened",
                        "plan_limit",
                        "unsubscribed",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "in_app"),
                (
                    "sub_kind__in",
                    ["clicked", "dashboard_preference", "opened", "plan_limit", "user_preference"],
                ),
            ),
            models.Q(
                ("channel", "push"),
                ("sub_kind__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            models.Q(
                ("channel", "sms"),
                (
                    "sub_kind__in",
                    [
                        "dashboard_preference",
                        "infrastructure",
                        "plan_limit",
                        "undelivered",
                        "user_preference",
                    ],
                ),
            ),
            models.Q(
                ("channel", "web_push"),
                ("sub_kind__in", ["dashboard_preference", "plan_limit", "user_preference"]),
            ),
            _connector="OR",
        ),
        name="event_sub_kind_fits_channel",
    ),
}
_ATTEMPTS = 20


def _retrying(cursor, statement: str) -> None:
    for attempt in range(_ATTEMPTS):
        try:
            cursor.execute(statement)
            return
        except OperationalError:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _swap(apps, schema_editor, constraints: dict) -> None:
    quote = schema_editor.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = %s", [f"{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms"])
        cursor.execute("SET statement_timeout = 0")  # validating reads every row
        for model_name, constraint in constraints.items():
            model = apps.get_model("logs", model_name)
            table = quote(model._meta.db_table)
            _retrying(
                cursor,
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quote(constraint.name)}, "
                f"ADD {constraint.constraint_sql(model, schema_editor)} NOT VALID",
            )
            _retrying(cursor, f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(constraint.name)}")
        cursor.execute("RESET lock_timeout")
        cursor.execute("RESET statement_timeout")


def constraints_swap(apps, schema_editor) -> None:
    _swap(apps, schema_editor, _CONSTRAINTS)


def constraints_restore(apps, schema_editor) -> None:
    # The constraints as the previous migration left them (fails while in-app rows use them).
    previous = {}
    for model_name, constraint in _CONSTRAINTS.items():
        state = apps.get_model("logs", model_name)._meta.constraints
        previous[model_name] = next(c for c in state if c.name == constraint.name)
    _swap(apps, schema_editor, previous)


class Migration(migrations.Migration):
    # Each statement commits on its own: the swap's lock is held for that statement only.
    atomic = False

    dependencies = [
        ("logs", "0008_indexes_for_a_channels_status_and_events"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                *(
                    migrations.RemoveConstraint(model_name=model_name, name=constraint.name)
                    for model_name, constraint in _CONSTRAINTS.items()
                ),
                *(
                    migrations.AddConstraint(model_name=model_name, constraint=constraint)
                    for model_name, constraint in _CONSTRAINTS.items()
                ),
            ],
            database_operations=[migrations.RunPython(constraints_swap, constraints_restore)],
        )
    ]
