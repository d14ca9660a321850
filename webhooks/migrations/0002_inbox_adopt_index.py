"""inbox_adopt's index covers what it looks through: the rows waiting for a message, orphaned
or pending with their ids parsed (the old one held orphaned rows only, so the adopt lookup
read every pending row of every day through another index).

The inbox is partitioned by day and written all the time, so the index is built as the log's
are, online (logs.migration_operations: an empty index on the parent alone, then each
partition's built CONCURRENTLY and attached; an interrupted run is finished by the next). The
old index goes last: a catalog change under a short lock_timeout.
"""

import django.contrib.postgres.indexes
from django.db import migrations, models

from logs.migration_operations import PartitionedIndexAdd, PartitionedIndexRemove


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        PartitionedIndexAdd(
            model_name="inboxentry",
            index=django.contrib.postgres.indexes.GinIndex(
                models.F("message_ids"),
                condition=models.Q(("state__in", ["orphaned", "pending"]))
                & ~models.Q(("message_ids", [])),
                name="inbox_adopt_ids",
            ),
        ),
        PartitionedIndexRemove(model_name="inboxentry", name="inbox_orphan_ids"),
    ]
