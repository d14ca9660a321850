"""Indexes for a channel searched with its status or an event ("SMS + Failure", "SMS + Failed -
Undelivered"): logs/selectors.py reads them newest first, one range per channel (and per
delivery state).

The log is big and written all the time, so the indexes are built online, one partition at
a time (logs.migration_operations.PartitionedIndexAdd, which grew out of this migration's
own code: see that module for the steps and how an interrupted run is finished).
"""

from django.db import migrations, models

from logs.migration_operations import PartitionedIndexAdd

_INDEXES = {
    "delivery": models.Index(
        models.F("environment"),
        models.F("channel"),
        models.F("state"),
        models.F("reports_delivery"),
        models.OrderBy(models.F("notification_created_at"), descending=True),
        models.OrderBy(models.F("notification"), descending=True),
        name="delivery_env_channel_state",
    ),
    "event": [
        models.Index(
            models.F("environment"),
            models.F("channel"),
            models.F("kind"),
            models.OrderBy(models.F("notification_created_at"), descending=True),
            models.OrderBy(models.F("notification"), descending=True),
            name="event_env_channel_kind",
        ),
        models.Index(
            models.F("environment"),
            models.F("channel"),
            models.F("sub_kind"),
            models.OrderBy(models.F("notification_created_at"), descending=True),
            models.OrderBy(models.F("notification"), descending=True),
            condition=models.Q(("sub_kind", ""), _negated=True),
            name="event_env_channel_sub_kind",
        ),
    ],
}


def _each_index():
    for model_name, indexes in _INDEXES.items():
        for index in indexes if isinstance(indexes, list) else [indexes]:
            yield model_name, index


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("logs", "0007_email_index_includes_email"),
    ]

    operations = [
        PartitionedIndexAdd(model_name=model_name, index=index)
        for model_name, index in _each_index()
    ]
