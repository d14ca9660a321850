"""The per-minute counters alert rules are evaluated from, kept as events are recorded.

One `INSERT … ON CONFLICT DO UPDATE` per new event, inside the transaction that wrote it
(logs.signals.event_recorded): the count commits or rolls back with the event. A burst on one
(environment, type, channel, kind) would make every writer queue on the same counter row until
the previous writer's transaction commits, so the key carries a shard taken from the
notification id: concurrent notifications mostly land on different rows, and a notification's
own events (already serialised by event_record's row lock) always on the same one. A writer of
several events at once runs these upserts last, sorted (logs.statements.shared_row_write), so two
such writers never deadlock on the counter rows."""

from logs.statements import StatementBatch, shared_row_write

SHARDS = 8

_UPSERT = """
INSERT INTO alerts_minutecount
    (environment_id, minute, notification_type, channel, kind, sub_kind, shard, count)
VALUES (%s, date_trunc('minute', %s::timestamptz), %s, %s, %s, %s, %s, 1)
ON CONFLICT (environment_id, minute, notification_type, channel, kind, sub_kind, shard)
DO UPDATE SET count = alerts_minutecount.count + 1
"""


def minute_count_increment(*, notification, event, batch: StatementBatch | None = None) -> None:
    shard = notification.id.int % SHARDS
    shared_row_write(
        _UPSERT,
        [
            event.environment_id,
            event.recorded_at,
            notification.notification_type,
            event.channel,
            event.kind,
            event.sub_kind,
            shard,
        ],
        batch=batch,
    )


def count_event(sender, *, notification, event, batch=None, **kwargs) -> None:
    """logs.signals.event_recorded receiver (in the event's transaction, or its batch)."""
    minute_count_increment(notification=notification, event=event, batch=batch)
