"""The event kind indexes hold only the rare kinds (docs/indexes.md, "The universal event
kinds"):

- event_env_kind and event_env_channel_kind become partial, without the pipeline's universal
  kinds (Received, Sending, Sent, Delivered: about 98% of the events). A search for one of
  those reads the newest notifications (or, with a channel, deliveries) of the environment
  and checks each for the event by the notification's key (event_unique_dedupe), stopping
  after a page (logs/selectors.py); nearly every notification has them.
- event_env (environment_id) is added first: tenant deletion, per-account retention and the
  foreign key to the environment find an environment's events by event_env_kind's leading
  column, which no longer covers every event. One column, so B-tree deduplication keeps it
  to a few bytes per event.

Online, one partition at a time (logs.migration_operations): each replacement is built
beside the old index and swapped in, so searches always have one.
"""

from django.db import migrations, models

from logs.migration_operations import PartitionedIndexAdd, PartitionedIndexReplace

_RARE_KIND = models.Q(("kind__in", ["delivered", "received", "sending", "sent"]), _negated=True)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [
        ("accounts", "0009_environment_content_retention"),
        ("logs", "0017_delivery_content_packed"),
    ]

    operations = [
        PartitionedIndexAdd(
            model_name="event",
            index=models.Index(models.F("environment"), name="event_env"),
        ),
        PartitionedIndexReplace(
            model_name="event",
            index=models.Index(
                models.F("environment"),
                models.F("kind"),
                models.OrderBy(models.F("notification_created_at"), descending=True),
                models.OrderBy(models.F("notification"), descending=True),
                condition=_RARE_KIND,
                name="event_env_kind",
            ),
        ),
        PartitionedIndexReplace(
            model_name="event",
            index=models.Index(
                models.F("environment"),
                models.F("channel"),
                models.F("kind"),
                models.OrderBy(models.F("notification_created_at"), descending=True),
                models.OrderBy(models.F("notification"), descending=True),
                condition=_RARE_KIND,
                name="event_env_channel_kind",
            ),
        ),
    ]
