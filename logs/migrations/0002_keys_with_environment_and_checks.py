# Ready to shard and closed to stray words.
#
# Citus distributes a table by one column and requires it in every primary key and unique
# constraint, so `environment_id` joins them all. It goes last: a lookup by id and day (the
# webhooks, event_record's row lock, notification_get) is still a prefix of the primary key
# index, so no second index has to be kept up on every insert. Django keeps seeing `id` as
# the primary key: only the database operations change.
#
# DROP/ADD on a partitioned parent rebuilds the index of every partition in this transaction
# (ACCESS EXCLUSIVE while it runs): cheap while the log is small, which is why it is done now.
# Day partitions built later with `LIKE … INCLUDING ALL` copy the new key and checks.
#
# The CHECK constraints are generated from logs/vocabulary.py (see logs/models.py); they
# propagate to every partition and validate the rows already there.

from django.db import migrations, models

# Table -> (its old key, its new key). The constraint keeps PostgreSQL's default name.
KEYS = {
    "logs_notification": ("id, created_at", "id, created_at, environment_id"),
    "logs_delivery": ("id, notification_created_at", "id, notification_created_at, environment_id"),
    "logs_event": ("id, notification_created_at", "id, notification_created_at, environment_id"),
}


def _rekey(old_or_new: int) -> str:
    return "\n".join(
        f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, "
        f"ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns[old_or_new]});"
        for table, columns in KEYS.items()
    )


KINDS = ["received", "ignored", "sending", "sent", "delivered", "failed", "engagement"]
CHANNELS = ["email", "sms", "call", "in_app", "push", "web_push"]
SUB_KINDS = [
    "", "dashboard_preference", "user_preference", "plan_limit", "completed", "busy",
    "no_answer", "bounce", "delivery_delay", "undelivered", "infrastructure", "cannot_reach",
    "opened", "clicked", "complained", "unsubscribed",
]  # fmt: skip


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("logs", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(_rekey(1), _rekey(0), elidable=False),
        migrations.RemoveConstraint(model_name="delivery", name="delivery_unique_channel"),
        migrations.RemoveConstraint(model_name="event", name="event_unique_dedupe"),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.UniqueConstraint(
                fields=("notification", "channel", "notification_created_at", "environment"),
                name="delivery_unique_channel",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("notification", "dedupe_key", "notification_created_at", "environment"),
                name="event_unique_dedupe",
            ),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["received", "success", "failure"])),
                name="notification_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("channel__in", CHANNELS)), name="delivery_channel_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("state__in", ["received", "ignored", "sending", "sent", "delivered", "failed"])
                ),
                name="delivery_state_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.CheckConstraint(
                condition=models.Q(("state_detail__in", SUB_KINDS)),
                name="delivery_state_detail_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", KINDS)),
                name="event_kind_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.CheckConstraint(
                condition=models.Q(("channel", ""), ("channel__in", CHANNELS), _connector="OR"),
                name="event_channel_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("sub_kind", ""),
                    models.Q(
                        ("kind", "delivered"), ("sub_kind__in", ["busy", "completed", "no_answer"])
                    ),
                    models.Q(
                        ("kind", "engagement"),
                        ("sub_kind__in", ["clicked", "complained", "opened", "unsubscribed"]),
                    ),
                    models.Q(
                        ("kind", "failed"),
                        (
                            "sub_kind__in",
                            [
                                "bounce",
                                "cannot_reach",
                                "delivery_delay",
                                "infrastructure",
                                "undelivered",
                            ],
                        ),
                    ),
                    models.Q(
                        ("kind", "ignored"),
                        ("sub_kind__in", ["dashboard_preference", "plan_limit", "user_preference"]),
                    ),
                    _connector="OR",
                ),
                name="event_sub_kind_fits_kind",
            ),
        ),
    ]
