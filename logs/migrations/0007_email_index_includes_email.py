"""The email index holds the email itself (INCLUDE), so a search by email answers from the
index alone.

The new index is built online beside the old one, one partition at a time, and swapped in
(the old dropped, the new renamed) in one short transaction whose lock wait is bounded and
retried (logs.migration_operations.PartitionedIndexReplace). The first version of this
migration dropped and re-created the index on the partitioned table in one transaction,
which held every day of the log in ACCESS EXCLUSIVE while the new index was built.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models

from logs.migration_operations import PartitionedIndexReplace


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("accounts", "0003_account_retention_days"),
        ("logs", "0006_purge_run"),
    ]

    operations = [
        PartitionedIndexReplace(
            model_name="notification",
            index=models.Index(
                models.F("environment"),
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Lower("email"), name="text_pattern_ops"
                ),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                include=("email",),
                name="notif_env_email",
            ),
        ),
    ]
