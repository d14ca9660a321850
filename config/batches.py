"""Deleting many rows of an unpartitioned table without one long statement.

One `DELETE ... WHERE created_at < cutoff` over millions of rows runs for minutes: past the
connection's statement_timeout it is cancelled and rolled back (every night, for ever, while
the table only grows), and while it runs it holds its row locks and its snapshot (vacuum can
clean nothing behind it). `rows_delete` deletes `batch_size` rows per statement, each batch
its own short transaction, so any batch can fail and the next run carries on from what the
committed ones left.

Each batch is the first `batch_size` rows in the order of an indexed column, an index range
scan, and the next batch starts where the last one ended (keyset: `column >= the last value
deleted`), so no batch walks over the index entries of rows its predecessors deleted (they
stay in the index until vacuum). A batch costs about `batch_size` row visits however big the
table is, and the whole purge is linear in the rows it removes.
"""

from collections.abc import Callable

from django.db import connections, transaction
from django.db.models import QuerySet

# Rows per DELETE: a few milliseconds of work, so each transaction stays short.
BATCH_SIZE = 5_000


def rows_delete(
    queryset: QuerySet,
    *,
    order_by: str,
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[], None] | None = None,
) -> int:
    """Delete the rows of `queryset` in batches ordered by `order_by`, a field with an index
    that leads with it (the purge's age column, or the tenant's foreign key when every row
    has the same value: any index on it then serves). Rows the database cascades to (a
    DB_CASCADE child) go with their batch, so a child table needs an index on its foreign key
    (tests/test_foreign_keys.py checks every one). Returns how many rows of `queryset` went.

    Rows added meanwhile with an `order_by` value below the last batch's are left for the
    next run: purges by age never add such rows. `after_batch` is called after each committed
    batch (a tenant deletion renews its lease there; an exception it raises stops here)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    model = queryset.model
    column = model._meta.get_field(order_by).column
    table = connections[queryset.db].ops.quote_name(model._meta.db_table)
    pk = connections[queryset.db].ops.quote_name(model._meta.pk.column)
    quoted = connections[queryset.db].ops.quote_name(column)
    removed, last = 0, None
    while True:
        page = queryset if last is None else queryset.filter(**{f"{order_by}__gte": last})
        ids = page.order_by(order_by).values("pk")[:batch_size]
        select, params = ids.query.sql_with_params()
        with transaction.atomic(using=queryset.db), connections[queryset.db].cursor() as cursor:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} WHERE {pk} IN ({select}) "  # noqa: S608 (names from the model's meta, quoted)
                f"RETURNING {quoted}) "
                f"SELECT count(*), (SELECT {quoted} FROM gone ORDER BY 1 DESC LIMIT 1) FROM gone",
                params,
            )
            count, last = cursor.fetchone()
        removed += count
        if count < batch_size:
            return removed
        if after_batch is not None:
            after_batch()
