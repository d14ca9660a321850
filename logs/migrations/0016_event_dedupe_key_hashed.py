"""event_unique_dedupe indexes a dedupe key as its 64-bit hash (hashtextextended), not as the
key: 8 bytes in each entry of the log's largest index instead of the key (a provider's event
id: about 45 bytes), with the same columns around it, so it answers the same reads (a
notification's events by notification id) and still refuses the same event twice (two
different keys of one notification that hash alike are refused too: never a duplicate).

Online (logs.migration_operations.PartitionedUniqueReplace): the new unique index is built
beside the old constraint one partition at a time (CREATE UNIQUE INDEX CONCURRENTLY; the old
constraint keeps refusing duplicates meanwhile), then swapped in under a short, bounded lock.
Measured with the bench's seed: see the commit message and docs/indexes.md.
"""

from django.db import migrations, models

from logs.migration_operations import PartitionedUniqueReplace


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("logs", "0015_citus_distribute"),
    ]

    operations = [
        PartitionedUniqueReplace(
            model_name="event",
            constraint=models.UniqueConstraint(
                models.F("notification"),
                models.Func(
                    models.F("dedupe_key"),
                    models.Value(0),
                    function="hashtextextended",
                    output_field=models.BigIntegerField(),
                ),
                models.F("notification_created_at"),
                models.F("environment"),
                name="event_unique_dedupe",
            ),
        ),
    ]
