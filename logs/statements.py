"""The hot paths' SQL statements: prepared once per connection, and batched into one round trip.

`prepared_rows` runs a statement as a prepared one (PostgreSQL parses and plans it once per
connection); `prepared_instances` does it for a queryset's SQL and builds the models;
`insert_statement` is what `save()` would write for a new instance, as SQL and parameters.

An event's own writes (logs.signals.event_recorded) wait in the `batch` (the send path and every
provider callback are hot paths, where each round trip counts): when receivers run, nothing of
the event is written yet and `event.id` is None. A receiver adds its own writes with
`statement_run(sql, params, batch=batch)`, and they all go to PostgreSQL as one statement (each
a WITH query), which commits or fails as a whole. A receiver that needs the rows written (to
read them, to use `event.id`, to write through the ORM, to register `on_commit` hooks) calls
`batch.transaction()` first: what is batched so far is sent inside a transaction that stays open
until the event's writer commits, and from then on everything works as without a batch.

A write to a row that writers share (a counter) goes through `shared_row_write(sql, params,
batch=batch)`: the writer of several events at once (logs.services.events_record) runs such
writes last, sorted, so two writers lock shared rows in the same order and never deadlock.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from functools import lru_cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction


class StatementBatch:
    """Data-modifying SQL statements sent to PostgreSQL as one (see the module)."""

    def __init__(self, stack: ExitStack, *, shared_rows: "SharedRowWrites | None" = None):
        # The writer's ExitStack: a transaction opened by transaction() lasts as long as it.
        self._stack = stack
        self._statements: list[tuple[str, Sequence[Any], Callable | None]] = []
        self.shared_rows = shared_rows

    def add(self, sql: str, params: Sequence[Any] = (), *, on_value: Callable | None = None):
        """Queue an INSERT, UPDATE or DELETE. With `on_value`, the statement returns one row of
        one column (RETURNING id), which `on_value` receives once the batch is sent."""
        self._statements.append((sql, params, on_value))

    def transaction(self) -> None:
        """Open a transaction (unless one is open) and send what is queued inside it."""
        if not connection.in_atomic_block:
            self._stack.enter_context(transaction.atomic(savepoint=False))
        self.send()

    def send(self) -> None:
        """Send the queued statements (a no-op when none are queued)."""
        statements, self._statements = self._statements, []
        if not statements:
            return
        # One statement: each queued one a data-modifying WITH query, all run to completion
        # whatever the main SELECT reads, which picks the values asked for. The text is the
        # same from one send to the next, so psycopg prepares it (server-side binding) and
        # PostgreSQL plans it once per connection, not per request.
        parts = ", ".join(f"s{index} AS ({sql})" for index, (sql, _, _) in enumerate(statements))
        wanted = [index for index, (_, _, on_value) in enumerate(statements) if on_value]
        values = ", ".join(f"(SELECT * FROM s{index})" for index in wanted) or "1"  # noqa: S608
        sql = f"WITH {parts} SELECT {values}"
        params = [param for _, statement_params, _ in statements for param in statement_params]
        [row] = prepared_rows(sql, params)
        for index, value in zip(wanted, row, strict=False):
            statements[index][2](value)


def prepared_rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run `sql` as a prepared statement (server-side binding; PostgreSQL plans it once per
    connection) and return its rows. For the hot paths' statements, always the same text."""
    db = connections[DEFAULT_DB_ALIAS]  # once: each `connection.x` is a thread-local lookup
    db.ensure_connection()
    started = time.monotonic()
    numbered = _numbered(sql)
    cursor_class = psycopg.Cursor if numbered is None else psycopg.RawCursor
    with db.wrap_database_errors, cursor_class(db.connection) as cursor:
        # prepare=True: Django turns psycopg's automatic preparation off.
        cursor.execute(sql if numbered is None else numbered, params, prepare=True)
        # The result's status, not cursor.description: that builds a Column per column on
        # every call (a tenth of a callback's processing CPU went there).
        result = cursor.pgresult
        rows = cursor.fetchall() if result is not None and result.status == _TUPLES_OK else []
    if db.queries_logged:  # as Django's own cursor would (CaptureQueriesContext)
        with psycopg.ClientCursor(db.connection) as client_cursor:
            logged = client_cursor.mogrify(sql, params)
        db.queries_log.append(
            # "prepared": the text and parameters as sent, for a test that explains the plan
            # PostgreSQL made once for it (tests/logs/test_plans.py).
            {"sql": logged, "time": f"{time.monotonic() - started:.3f}", "prepared": (sql, params)}
        )
    return rows


_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str | None:
    """`sql` with its %s placeholders numbered ($1, $2 ...) for a RawCursor, which sends it as
    it is; None when it has another % (then psycopg's own parsing is needed). psycopg parses a
    query's placeholders on every execute once it has over 50 parameters or 4 KB (it caches
    only smaller ones): a batch's event writes, hundreds of parameters and always the same few
    texts, spent a fifth of a dispatch's CPU there."""
    pieces = sql.split("%s")
    if any("%" in piece for piece in pieces):
        return None
    return "".join(f"{piece}${number}" for number, piece in enumerate(pieces[:-1], 1)) + pieces[-1]


def prepared_instances(
    model,
    sql: str,
    params: Sequence[Any],
    attnames: Sequence[str],
    *,
    annotations: Sequence[str] = (),
) -> list:
    """Instances of `model` from a prepared statement (prepared_rows) whose rows hold the
    fields `attnames`, in that order (the model's other fields are deferred), converted as
    the ORM converts what it reads (JSON parsed, and so on), then one value per name of
    `annotations`, set as that attribute (as QuerySet.annotate does)."""
    db = connections[DEFAULT_DB_ALIAS]
    key = (model, tuple(attnames))
    converters = _CONVERTERS.get(key)
    if converters is None:
        meta = model._meta
        fields = [meta.get_field(name) for name in attnames]  # get_field knows attnames too
        converters = _CONVERTERS[key] = [
            (index, converter, field.get_col(meta.db_table))
            for index, field in enumerate(fields)
            for converter in field.get_db_converters(db)
        ]
    instances = []
    count = len(attnames)
    for row in prepared_rows(sql, params):
        values = list(row[:count])
        for index, converter, column in converters:
            values[index] = converter(values[index], column, db)
        instance = model.from_db(DEFAULT_DB_ALIAS, attnames, values)
        for name, value in zip(annotations, row[count:], strict=True):
            setattr(instance, name, value)
        instances.append(instance)
    return instances


_CONVERTERS: dict[tuple, list] = {}


def statement_run(sql: str, params: Sequence[Any] = (), *, batch: StatementBatch | None) -> None:
    """Run a receiver's write now, or queue it in the event's batch when there is one."""
    if batch is not None:
        batch.add(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


class SharedRowWrites:
    """Writes to rows that concurrent writers share (counters), held until the end of the
    writer's transaction and then run sorted by statement and parameters: two writers of
    several events each then lock those rows in the same order, where in event order one
    could hold row A and wait for B while the other holds B and waits for A (a deadlock,
    which PostgreSQL breaks after deadlock_timeout by failing one of them)."""

    def __init__(self):
        self._writes: list[tuple[str, tuple]] = []

    def add(self, sql: str, params: Sequence[Any]) -> None:
        self._writes.append((sql, tuple(params)))

    def run(self) -> None:
        """Run them (inside the writer's transaction), each statement's rows pipelined."""
        writes, self._writes = sorted(self._writes, key=_sort_key), []
        by_statement: dict[str, list[tuple]] = {}
        for sql, params in writes:
            by_statement.setdefault(sql, []).append(params)
        with connection.cursor() as cursor:
            for sql, rows in by_statement.items():
                cursor.executemany(sql, rows)


def _sort_key(write: tuple[str, tuple]) -> tuple:
    sql, params = write
    return (sql, tuple((value is None, str(value)) for value in params))


def shared_row_write(sql: str, params: Sequence[Any], *, batch: StatementBatch | None) -> None:
    """A receiver's write to a row other writers share (a counter): last in the writer's
    transaction, sorted (SharedRowWrites), when the writer collects them; else as
    statement_run."""
    if batch is not None and batch.shared_rows is not None:
        batch.shared_rows.add(sql, params)
        return
    statement_run(sql, params, batch=batch)


def insert_statement(instance) -> tuple[str, list]:
    """The INSERT that Model.save() would run for a new `instance` (RETURNING its id when the
    database assigns it), as SQL and parameters, for a batch. The SQL is built once per model;
    each value is prepared as save() would (the common field types need nothing done). An id
    the instance already has (drawn from its sequence beforehand) is inserted as it is."""
    model = type(instance)
    auto_field = model._meta.auto_field
    key = (model, auto_field is not None and getattr(instance, auto_field.attname) is not None)
    shape = _INSERT_SHAPES.get(key)
    if shape is None:
        shape = _INSERT_SHAPES[key] = _insert_shape(model, with_id=key[1])
    sql, preparers = shape
    return sql, [prepare(instance) for prepare in preparers]


_INSERT_SHAPES: dict[tuple[type, bool], tuple[str, list]] = {}
# Fields whose Python value psycopg takes as it is (save() only checks and copies it).
_AS_IS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.UUIDField,
    models.DateTimeField,
    models.ForeignKey,
)


def field_preparer(field) -> Callable[[Any], Any]:
    """A function of the instance giving this field's parameter, as save() would prepare it
    for an INSERT (once per field, not per row)."""
    attname = field.attname
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda instance: field.get_db_prep_save(field.pre_save(instance, True), connection)
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def json_value(instance):
            value = getattr(instance, attname)
            return None if value is None else connection.ops.adapt_json_value(value, encoder)

        return json_value
    if isinstance(field, _AS_IS):
        return lambda instance: getattr(instance, attname)
    return lambda instance: field.get_db_prep_save(getattr(instance, attname), connection)


def instances_written(*instances) -> None:
    """Mark instances whose insert_statement ran as saved, as save() would."""
    for instance in instances:
        instance._state.adding = False
        instance._state.db = DEFAULT_DB_ALIAS


def _insert_shape(model, *, with_id: bool) -> tuple[str, list]:
    meta = model._meta
    fields = [
        field for field in meta.local_concrete_fields if with_id or field is not meta.auto_field
    ]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608 (model metadata)
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    if meta.auto_field is not None and not with_id:
        sql += f" RETURNING {quote(meta.auto_field.column)}"
    return sql, [field_preparer(field) for field in fields]


def update_statement(
    instance: models.Model, names: Iterable[str], partition_key: str
) -> tuple[str, list]:
    """UPDATE of `names` of one row, as SQL and parameters for a StatementBatch. It names the
    partition key, so PostgreSQL touches one partition, not all, and the environment, so
    Citus runs it on one shard (a filter on the row the primary key finds, on plain
    PostgreSQL). The SQL and each column's preparer are built once per model and columns (as
    logs.statements.insert_statement's)."""
    key = (type(instance), frozenset(names), partition_key)
    shape = _UPDATE_SHAPES.get(key)
    if shape is None:
        meta, quote = type(instance)._meta, connection.ops.quote_name
        fields = [meta.get_field(name) for name in sorted(names)]  # sorted: the same SQL
        where = [meta.pk, meta.get_field(partition_key), meta.get_field("environment")]
        sql = (
            f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608 (model metadata)
            f"{', '.join(f'{quote(field.column)} = %s' for field in fields)} "
            f"WHERE {' AND '.join(f'{quote(field.column)} = %s' for field in where)}"
        )
        shape = _UPDATE_SHAPES[key] = (sql, [field_preparer(f) for f in [*fields, *where]])
    sql, preparers = shape
    return sql, [prepare(instance) for prepare in preparers]


_UPDATE_SHAPES: dict[tuple, tuple[str, list]] = {}
