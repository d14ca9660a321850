"""Every index of the log earns its place (docs/indexes.md lists each with what reads it):

- delivery_provider_msg becomes a hash index: the callbacks and the search look a message id
  up by equality only, and a hash index holds a 4-byte hash per row instead of the id.
- notif_env_status becomes partial, without the success rows (most of them): a search for
  success reads notif_env_created and checks the status on the row, which it finds in about
  a page; failure and received keep an index of their own, a few percent of the size.

Measured with the bench's seed (100,000 notifications, 7 days, 3 environments): see the
commit message and docs/indexes.md. Each change is online, one partition at a time
(logs.migration_operations): each replacement is built beside the old index and swapped in.
"""

import django.contrib.postgres.indexes
from django.db import migrations, models

from logs.migration_operations import PartitionedIndexReplace


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("accounts", "0008_api_key_manage_scope"),
        ("logs", "0011_erasure_job"),
    ]

    operations = [
        PartitionedIndexReplace(
            model_name="delivery",
            index=django.contrib.postgres.indexes.HashIndex(
                models.F("provider_message_id"),
                condition=models.Q(("provider_message_id", ""), _negated=True),
                name="delivery_provider_msg",
            ),
        ),
        PartitionedIndexReplace(
            model_name="notification",
            index=models.Index(
                models.F("environment"),
                models.F("status"),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                condition=models.Q(("status", "success"), _negated=True),
                name="notif_env_status",
            ),
        ),
    ]
