"""The search indexes end at the date: the id that broke ties goes (docs/indexes.md).

notif_env_created, notif_env_user, notif_env_number, notif_env_type and notif_env_status
end with created_at DESC, no longer followed by the 16-byte id (a quarter to a third of each
entry). A page is still read in one index range newest first and stopped after it; the rare
rows that share an instant are put in id order as they come out (an Incremental Sort).
notif_env_email keeps the id: an email-prefix search takes its page's keys from it alone. The
delivery indexes keep theirs: a channel's range reads its page's keys from the index alone
(an index-only scan), which the id must be in.

Online, one partition at a time (logs.migration_operations): each replacement is built
beside the old index and swapped in, so searches always have one.
"""

from django.db import migrations, models

from logs.migration_operations import PartitionedIndexReplace


def _newest_first(*leading, name, condition=None):
    return PartitionedIndexReplace(
        model_name="notification",
        index=models.Index(
            *leading,
            models.OrderBy(models.F("created_at"), descending=True),
            name=name,
            **({"condition": condition} if condition is not None else {}),
        ),
    )


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("logs", "0021_notification_merge_tags_not_stored_twice"),
    ]

    operations = [
        _newest_first(models.F("environment"), name="notif_env_created"),
        _newest_first(models.F("environment"), models.F("user_id"), name="notif_env_user"),
        _newest_first(models.F("environment"), models.F("number"), name="notif_env_number"),
        _newest_first(
            models.F("environment"), models.F("notification_type"), name="notif_env_type"
        ),
        _newest_first(
            models.F("environment"),
            models.F("status"),
            name="notif_env_status",
            condition=models.Q(("status", "success"), _negated=True),
        ),
    ]
