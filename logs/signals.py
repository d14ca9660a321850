"""What the log tells the rest of the product.

`event_recorded` is sent once per new event (never for a duplicate), inside the transaction
that wrote it, after the delivery's state and the notification's status are brought up to
date. A receiver that writes (an outbound-stream outbox row, an hourly rollup) commits or
rolls back with the event itself, so nothing downstream sees an event the log lost, or misses
one it kept. Receivers must be quick and must never call the network: enqueue such work with
`transaction.on_commit`, passing ids.

Keyword arguments: `notification` (logs.Notification, status current), `delivery`
(logs.Delivery, state current; None for a request-level event), `event` (logs.Event) and
`batch` (a StatementBatch, or None).

With a `batch` (the Received event of a new notification: the send path, where every round
trip counts), nothing is written yet: the notification's and the event's INSERTs wait in the
batch, and `event.id` is None. A receiver adds its own writes with `statement_run(sql,
params, batch=batch)`, and they all go to PostgreSQL as one multi-statement query, which
commits or fails as a whole. A receiver that needs the rows written (to read them, to use
`event.id`, to write through the ORM, to register `on_commit` hooks) calls
`batch.transaction()` first: what is batched so far is sent inside a transaction that stays
open until the event's writer commits, and from then on everything works as without a batch.
"""

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models.sql import InsertQuery
from django.dispatch import Signal

event_recorded = Signal()


class StatementBatch:
    """SQL statements sent to PostgreSQL together, in one round trip (see the module)."""

    def __init__(self, stack: ExitStack):
        # The writer's ExitStack: a transaction opened by transaction() lasts as long as it.
        self._stack = stack
        self._statements: list[tuple[str, Sequence[Any], Callable | None]] = []

    def add(self, sql: str, params: Sequence[Any] = (), *, on_row: Callable | None = None):
        """Queue a statement; `on_row` receives the first row it returns (RETURNING ...)."""
        self._statements.append((sql, params, on_row))

    def transaction(self) -> None:
        """Open a transaction (unless one is open) and send what is queued inside it."""
        if not connection.in_atomic_block:
            self._stack.enter_context(transaction.atomic(savepoint=False))
        self.send()

    def send(self) -> None:
        """Send the queued statements as one query (a no-op when none are queued)."""
        statements, self._statements = self._statements, []
        if not statements:
            return
        sql = ";\n".join(statement for statement, _, _ in statements)
        params = [param for _, statement_params, _ in statements for param in statement_params]
        with connection.cursor() as cursor:
            # Client-side binding (Django's default with psycopg 3) allows several statements
            # in one execute; each has its own result, in order.
            cursor.execute(sql, params)
            for index, (_, _, on_row) in enumerate(statements):
                if on_row is not None:
                    on_row(cursor.fetchone())
                if index < len(statements) - 1:
                    cursor.nextset()


def statement_run(sql: str, params: Sequence[Any] = (), *, batch: StatementBatch | None) -> None:
    """Run a receiver's write now, or queue it in the event's batch when there is one."""
    if batch is not None:
        batch.add(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def insert_statement(instance) -> tuple[str, list]:
    """The INSERT that Model.save() would run for a new `instance` (RETURNING its id when the
    database assigns it), as SQL and parameters, for a batch."""
    meta = instance._meta
    fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
    query = InsertQuery(type(instance))
    query.insert_values(fields, [instance])
    compiler = query.get_compiler(using=DEFAULT_DB_ALIAS)
    compiler.returning_fields = [meta.auto_field] if meta.auto_field else None
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)
