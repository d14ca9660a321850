"""The log on Citus (distributed PostgreSQL): which tables are distributed, and how.

On a database with the `citus` extension, migration logs/0015_citus_distribute runs
`distribute()`; on plain PostgreSQL it does nothing. The log tables are distributed by
`environment_id` and colocated, so a notification's deliveries and events live on the same
node as it, and every statement that names the environment runs on one node (a router query).
Day partitions stay ordinary PostgreSQL partitions of the distributed parents: Citus
distributes a partition created with `PARTITION OF` or attached with `ATTACH PARTITION`, and
drops its shards with it, so logs/partitions.py needs no Citus calls.

Tables that stay local to the coordinator, and why:
- the tenancy and catalogue tables (`accounts_*`, notification types, templates, providers,
  `auth_*`): small, read by the console and the send path, and every other table points at
  them with foreign keys. Making one a reference table makes Citus convert every table in
  its foreign-key graph into a Citus-managed local table, which the log's day partitions
  refuse (their CHECK constraints are not named as Citus expects). Citus joins them with the
  distributed log on the coordinator when a statement reads both.
- `webhooks_inbox`: a callback is stored before its environment is known (`environment_id`
  may be NULL), and Citus refuses a NULL distribution column.
- the other environment-keyed tables (outbox, idempotency keys, end users, in-app items,
  stream messages, counters, rollups, the content dictionaries of logs/content.py): they
  have foreign keys to the tenancy tables (which a distributed table may only have to
  reference tables) and are written in the same statements as local tables; distributing
  them comes with making the tenancy tables reference tables. The content dictionaries are
  read by id on their own, never joined with the log.
- `webhooks_message_environment` (webhooks/message_environments.py): which environment a
  provider message id belongs to, written with the Sent that names it (on Citus only). An ESP
  webhook URL without `?env=` names no environment, and the callback's lookup of its delivery
  by message id would otherwise read every shard; with it, the callback reads one small local
  table first, then each environment's deliveries on that environment's shard. Local, not a
  reference table: a reference table is written on every node (two-phase commit), on every
  Sent, for a lookup only the coordinator makes.

Routing: every statement of the hot paths (send, dispatch, callbacks, event recording) names
one environment (`environment_id = %s`), so Citus runs it on one shard (a router query). A
batch that spans environments (a dispatch batch, a batch of callbacks, events_record) runs
one statement per environment on Citus and one for the whole batch on plain PostgreSQL,
where a statement per environment would only cost round trips (`environment_groups`).
tests/logs/test_citus_routing_writes.py reads the plans of every statement of those paths on
a cluster.
"""

from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import connection

# Every distributed table, colocated with the first.
DISTRIBUTED = ("logs_notification", "logs_delivery", "logs_event")
DISTRIBUTION_COLUMN = "environment_id"


def is_citus(using=None) -> bool:
    """True when the database has the citus extension (the migration distributes then)."""
    with (using or connection).cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        return cursor.fetchone() is not None


def _foreign_keys_to_local_tables(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'"
        " AND conparentid = 0",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def distribute(schema_editor) -> None:
    """Distribute the log tables by environment_id, colocated (Citus only).

    A distributed table may not have a foreign key to a local table, so the log's keys to
    `accounts_environment` go: nothing relied on their cascade (an environment's log rows
    are purged partition by partition before its row is deleted, accounts/deletion.py)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        if cursor.fetchone() is None:
            return
        for table in DISTRIBUTED:
            for name in _foreign_keys_to_local_tables(cursor, table):
                cursor.execute(
                    f"ALTER TABLE {schema_editor.quote_name(table)}"
                    f" DROP CONSTRAINT {schema_editor.quote_name(name)}"
                )
        first = DISTRIBUTED[0]
        for table in DISTRIBUTED:
            cursor.execute(
                "SELECT 1 FROM pg_dist_partition WHERE logicalrelid = %s::regclass", [table]
            )
            if cursor.fetchone() is not None:
                continue
            colocate = "default" if table == first else first
            cursor.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                [table, DISTRIBUTION_COLUMN, colocate],
            )


def environment_groups[T](items: Iterable[T], environment_of: Callable[[T], int]) -> list[tuple]:
    """[(environment id, its items)] in environment order on Citus, where a statement must
    name one environment to run on one shard; [(None, every item)] on plain PostgreSQL, where
    one statement serves the whole batch. Order within a group is kept."""
    items = list(items)
    if not settings.DATABASE_CITUS:
        return [(None, items)] if items else []
    groups: dict[int, list[T]] = {}
    for item in items:
        groups.setdefault(environment_of(item), []).append(item)
    return sorted(groups.items(), key=lambda group: group[0])
