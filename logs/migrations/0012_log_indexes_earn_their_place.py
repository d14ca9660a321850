"""Every index of the log earns its place (docs/indexes.md lists each with what reads it):

- event_env_kind and event_env_sub_kind go: a kind or sub-kind searched without a channel reads
  event_env_channel_kind / event_env_channel_sub_kind, one range per channel its events can
  have, merged in order (logs/selectors.py). The same rows were indexed twice.
- delivery_provider_msg becomes a hash index: the callbacks and the search look a message id
  up by equality only, and a hash index holds a 4-byte hash per row instead of the id.
- delivery_env_channel_state and notif_env_status become partial, without the rows of the
  common outcome (delivered as the provider reported it; success): a search for it reads the channel's or the
  environment's newest-first index and checks the state on the row, which it finds in about
  a page since most rows have it; the rare states keep an index of their own, a few percent
  of the size.

Measured with the bench's seed (100,000 notifications, 7 days, 3 environments): see the
commit message and docs/indexes.md. Each change is online, one partition at a time
(logs.migration_operations): a removal is a short catalog transaction, a replacement is built
beside the old index and swapped in.
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
            model_name="delivery",
            index=models.Index(
                models.F("environment"),
                models.F("channel"),
                models.F("state"),
                models.F("reports_delivery"),
                models.OrderBy(models.F("notification_created_at"), descending=True),
                models.OrderBy(models.F("notification"), descending=True),
                condition=models.Q(
                    ("reports_delivery", True), ("state", "delivered"), _negated=True
                ),
                name="delivery_env_channel_state",
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
