"""Which environment a provider message id belongs to, for callbacks that do not say (Citus).

On Citus the log is distributed by environment (logs/citus.py): a statement that names the
environment runs on one shard, one that does not runs on every shard. A callback must find
the delivery its message id names. When its URL names the environment (`?env=<client id>`,
InboxEntry.environment_restricted) the lookup names it. An ESP webhook URL without `?env=`
names none; looking its message id up in `logs_delivery` would read every shard for every
callback. So on Citus every Sent that names a message id also writes (message id,
environment) into `webhooks_message_environment`, a small table local to the coordinator,
in the same statement as the Sent (logs.statements: the event's batch, one round trip): a
callback reads its message ids' environments there, then each environment's deliveries on
its shard.

- Local, not a Citus reference table: a reference table is written on every node (a
  two-phase commit per Sent) for a lookup only the coordinator makes.
- Only on Citus (settings.DATABASE_CITUS): on plain PostgreSQL the lookup by message id is
  one probe of the deliveries' hash index and the table would cost every Sent a write.
- A callback that comes before its Sent finds no row, waits in the inbox (pending, then
  orphaned) like on plain PostgreSQL, and is adopted by the Sent (webhooks.apps, on commit:
  the row is committed with the Sent by then) or by `orphans_adopt`, which asks this table.
- A message id may name deliveries of several environments (two tenants, one provider
  account): the key is (message id, environment), and the callback's processing rejects an
  id that matches several, as on plain PostgreSQL.
- Rows written into the log around the event pipeline (the seed's COPY, a log distributed
  with its rows already there) get theirs from `message_environments_backfill`: the loader
  sends logs.signals.log_rows_loaded, and migration webhooks/0004 runs it once on Citus.
- Purged with the log: `message_environments_purge` deletes the rows of days the retention
  purge dropped (logs.tasks.retention_purge_task calls it). No foreign key to the
  environment: a deleted environment's rows find no delivery and age out the same way.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from logs.statements import prepared_rows
from logs.vocabulary import EventKind
from webhooks.models import MessageEnvironment

_TABLE = MessageEnvironment._meta.db_table
_MESSAGE_ID_MAX = MessageEnvironment._meta.get_field("provider_message_id").max_length
_REMEMBER = (
    f"INSERT INTO {_TABLE} (provider_message_id, environment_id, notification_created_at) "  # noqa: S608
    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
)
_ENVIRONMENTS_OF = (
    f"SELECT provider_message_id, environment_id FROM {_TABLE} "  # noqa: S608
    "WHERE provider_message_id = ANY(%s::varchar[])"
)
# Rows go a day after the retention cutoff: by then the day partition that held their
# delivery ended before the cutoff, so the retention purge dropped it.
_PURGE_MARGIN = timedelta(days=1)
PURGE_BATCH = 10_000


def message_environment_remember(sender, *, delivery, event, batch, **kwargs) -> None:
    """event_recorded receiver: a Sent that names a message id writes its environment, in
    the event's own statement (Citus only)."""
    if not settings.DATABASE_CITUS:
        return
    if event.kind != EventKind.SENT or delivery is None or not delivery.provider_message_id:
        return
    batch.add(
        _REMEMBER,
        [delivery.provider_message_id, delivery.environment_id, delivery.notification_created_at],
    )


_BACKFILL = (
    f"INSERT INTO {_TABLE} (provider_message_id, environment_id, notification_created_at) "  # noqa: S608
    "SELECT provider_message_id, environment_id, notification_created_at FROM logs_delivery "
    "WHERE provider_message_id <> '' AND length(provider_message_id) <= %s"
)


def message_environments_backfill(
    sender=None, *, start=None, end=None, environment_ids=None, **kwargs
) -> None:
    """Write the rows of deliveries that name a message id and were not written by a Sent
    (Citus only): those created in [start, end] of `environment_ids`, or all of them. The
    log_rows_loaded receiver."""
    if not settings.DATABASE_CITUS:
        return
    with connection.cursor() as cursor:
        backfill(cursor, start=start, end=end, environment_ids=environment_ids)


def backfill(cursor, *, start=None, end=None, environment_ids=None) -> None:
    """message_environments_backfill on the cursor's database, whatever the settings say
    (migration webhooks/0004 runs it where the database has the citus extension)."""
    sql, params = _BACKFILL, [_MESSAGE_ID_MAX]
    if start is not None:
        sql += " AND notification_created_at >= %s"
        params.append(start)
    if end is not None:
        sql += " AND notification_created_at <= %s"
        params.append(end)
    if environment_ids is not None:
        sql += " AND environment_id = ANY(%s)"
        params.append(list(environment_ids))
    cursor.execute(sql + " ON CONFLICT DO NOTHING", params)


def message_environments(message_ids: Iterable[str]) -> dict[str, list[int]]:
    """{message id: the environments whose deliveries name it}, for the ids known (Citus)."""
    wanted = sorted(
        {message_id for message_id in message_ids if len(message_id) <= _MESSAGE_ID_MAX}
    )
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    for message_id, environment_id in prepared_rows(_ENVIRONMENTS_OF, [wanted]):
        found.setdefault(message_id, []).append(environment_id)
    return found


def message_environments_purge(
    *, retention_days: int, now: datetime | None = None, batch: int = PURGE_BATCH
) -> int:
    """Delete the rows of log days the retention purge dropped (`retention_days`, as
    logs.retention.retention_purge was given), in batches of `batch` rows, each its own
    transaction. Returns how many rows went."""
    before = (now or timezone.now()) - timedelta(days=retention_days) - _PURGE_MARGIN
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {_TABLE} WHERE ctid = ANY(ARRAY("  # noqa: S608
                f"SELECT ctid FROM {_TABLE} WHERE notification_created_at < %s LIMIT %s))",
                [before, batch],
            )
            count = cursor.rowcount
        deleted += count
        if count < batch:
            return deleted
