"""Deleting a tenant without locking the log or any other big table.

An environment's logs can be millions of rows across every day partition, and its rows of the
unpartitioned tables (idempotency keys, in-app items, the sandbox's record, stream messages
and their attempts, rollups, rollup deltas, minute counters, end users) millions more.
Deleting the Environment row would cascade (ON DELETE CASCADE) over all of them in one
statement: minutes of locks, a transaction that holds back vacuum and that partition DDL
queues behind, and, past the statement_timeout, cancelled and retried for ever while the
tenant's personal data stays. Instead, in two steps:

1. `environment_delete` / `account_delete` mark the tenant (`deleting_at`) in one short
   transaction. The default managers hide marked rows (accounts.models.LiveManager), so it
   disappears from every console page, selector and credential lookup at once (its client
   secret and API keys answer 401), and the purge is enqueued on commit.
2. `environment_purge` (a Celery task) removes its log rows partition by partition, then its
   rows of every other table that refers to it, children before parents, in batches of
   `batch_size` rows, each batch its own short transaction; other tenants' writers never
   wait on it. Only then is the Environment row deleted, when no log row is left (the
   database's cascade finds at most the few rows written since). `account_purge` does this
   for each environment, then deletes the account (its memberships, invitations and plan
   counters, a few rows, go with it by cascade).

The log's rows are not this app's: each app that keeps rows it purges itself (the log, partition
by partition) registers that purge in its AppConfig.ready with `tenant_purge_register`, so this
module finds them without importing the apps above accounts (logs/apps.py).

Safe to run twice (a lease row lets one worker purge a tenant at a time; the others return),
and resumable: beat runs `tenant_deletions_resume` to pick up purges a dead worker left
unfinished, once its lease has expired.
"""

import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db import DatabaseError, ProgrammingError, connection, models, transaction
from django.utils import timezone

from accounts.authentication import credentials_cache
from accounts.models import Account, Environment, PurgeLease
from config.batches import BATCH_SIZE, rows_delete
from config.enqueue import task

logger = logging.getLogger(__name__)

# How long a purge's lease lasts unless renewed (it is, after every batch): a dead worker's
# tenant is picked up again by tenant_deletions_resume after at most this long.
LEASE_SECONDS = 300
# The foreign keys whose rows go with the environment (SET NULL ones keep their rows).
_CASCADES = (models.CASCADE, models.DB_CASCADE)
# The final DELETE of a tenant row waits this long for a lock, then the purge retries later.
_ROW_DELETE_LOCK_TIMEOUT = "2s"


@dataclass(frozen=True)
class TenantPurge:
    """An app's own removal of a deleting environment's rows (the log's: partition by
    partition). `purge(environment_id=, batch_size=, after_batch=)` deletes them in batches,
    calling after_batch after each, and returns how many it removed; `remains(cursor=,
    environment_id=)` is True while any is left (the Environment row is then kept, so the
    database's cascade never runs over those tables). `tables` are the tables it purges:
    environment_tables() leaves them out."""

    name: str
    tables: frozenset[str]
    purge: Callable[..., int]
    remains: Callable[..., bool]


# Filled by the apps' AppConfig.ready (tenant_purge_register), in INSTALLED_APPS order.
_tenant_purges: dict[str, TenantPurge] = {}


def tenant_purge_register(
    *,
    name: str,
    tables: Collection[str],
    purge: Callable[..., int],
    remains: Callable[..., bool],
) -> None:
    """Register an app's purge of a deleting environment's rows (see TenantPurge). Called
    from the app's AppConfig.ready; registering the same name again replaces it."""
    _tenant_purges[name] = TenantPurge(
        name=name, tables=frozenset(tables), purge=purge, remains=remains
    )


def tenant_purges() -> list[TenantPurge]:
    """The registered purges, run in this order before the other tables' rows go."""
    return list(_tenant_purges.values())


def _purge_enqueue(task_name: str, pk: int) -> None:
    # The credentials this process cached are refused from now on (update() sends no signal).
    credentials_cache.clear()
    _enqueue(task_name, pk)


def environment_delete(*, environment: Environment) -> None:
    """Mark the environment as being deleted (gone from every view and API at once) and
    enqueue the removal of its logs."""
    with transaction.atomic():
        Environment.all_objects.filter(pk=environment.pk, deleting_at=None).update(
            deleting_at=timezone.now()
        )
        credentials_cache.clear()  # and again on commit, in case a request cached it since
        transaction.on_commit(lambda: _purge_enqueue("environment_purge_task", environment.pk))


def account_delete(*, account: Account) -> None:
    """Mark the account and all its environments as being deleted and enqueue their
    removal."""
    now = timezone.now()
    with transaction.atomic():
        Account.all_objects.filter(pk=account.pk, deleting_at=None).update(deleting_at=now)
        Environment.all_objects.filter(account_id=account.pk, deleting_at=None).update(
            deleting_at=now
        )
        credentials_cache.clear()  # and again on commit, in case a request cached it since
        transaction.on_commit(lambda: _purge_enqueue("account_purge_task", account.pk))


def environment_purge(*, environment_id: int, batch_size: int = BATCH_SIZE) -> bool:
    """Remove a deleting environment's rows in batches, then the environment. True when it
    is gone; False when another worker is purging it or its row could not be deleted yet
    (beat retries). Refuses an environment that is not marked as being deleted."""
    if not _marked(Environment, environment_id, "environment_delete"):
        return True
    with _leased(f"environment:{environment_id}") as lease:
        if lease is None:
            return False
        return _environment_purge(environment_id, batch_size=batch_size, renew=lease.renew)


def _environment_purge(environment_id: int, *, batch_size: int, renew: Callable[[], None]) -> bool:
    try:
        logs = sum(
            purge.purge(environment_id=environment_id, batch_size=batch_size, after_batch=renew)
            for purge in tenant_purges()
        )
        rows = environment_tables_purge(
            environment_id=environment_id, batch_size=batch_size, after_batch=renew
        )
    except PurgeLeaseLost:
        logger.warning("Environment %d: purge lease lost; the worker now holding it goes on.",
                       environment_id)  # fmt: skip
        return False
    logger.info("Removed %d log rows and %d other rows of environment %d.", logs, rows,
                environment_id)  # fmt: skip
    return environment_row_delete(environment_id=environment_id)


def account_purge(*, account_id: int, batch_size: int = BATCH_SIZE) -> bool:
    """Purge every environment of a deleting account, then delete the account (its
    memberships go with it). True when it is gone."""
    if not _marked(Account, account_id, "account_delete"):
        return True
    with _leased(f"account:{account_id}") as lease:
        if lease is None:
            return False
        environment_ids = Environment.all_objects.filter(account_id=account_id).values_list(
            "pk", flat=True
        )
        done = []
        for environment_id in list(environment_ids):
            with _leased(f"environment:{environment_id}") as environment_lease:
                if environment_lease is None:
                    done.append(False)
                    continue

                def renew(environment_lease=environment_lease) -> None:
                    environment_lease.renew()
                    lease.renew()

                done.append(_environment_purge(environment_id, batch_size=batch_size, renew=renew))
        if not all(done):
            return False
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{_ROW_DELETE_LOCK_TIMEOUT}'")
            if Environment.all_objects.filter(account_id=account_id).exists():
                return False  # an environment was added meanwhile: next round
            Account.all_objects.filter(pk=account_id).delete()
        return True


def environment_tables() -> list[tuple[type[models.Model], str]]:
    """(model, foreign key) of every unpartitioned table whose rows the database would
    delete with an environment, children before parents (stream messages before their
    subscription, alerts before their rule), so no batch cascades over a parent's children.
    Found from the models, so a table added later is purged too. Tables that refer to these
    without an environment of their own (stream attempts, channel templates, alert notices)
    go with their parents' batches by the database's cascade, on an indexed foreign key."""
    found = {}
    purged = {table for purge in tenant_purges() for table in purge.tables}
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        if model._meta.db_table in purged:
            continue  # purged by its app (tenant_purges: the log, partition by partition)
        for field in model._meta.concrete_fields:
            if (
                (field.many_to_one or field.one_to_one)
                and field.related_model is Environment
                and field.remote_field.on_delete in _CASCADES
            ):
                found[model] = field.name
    ordered, remaining = [], set(found)
    while remaining:
        # A model no other remaining one refers to: its parents come after it.
        referred = {
            field.related_model
            for model in remaining
            for field in model._meta.concrete_fields
            if field.is_relation and field.related_model is not model
        }
        ready = sorted(remaining - referred, key=lambda model: model._meta.label)
        if not ready:
            raise RuntimeError(f"Cyclic foreign keys among {sorted(map(str, remaining))}.")
        ordered.extend(ready)
        remaining -= set(ready)
    return [(model, found[model]) for model in ordered]


def environment_tables_purge(
    *,
    environment_id: int,
    batch_size: int = BATCH_SIZE,
    after_batch: Callable[[], None] | None = None,
) -> int:
    """Delete the environment's rows of every unpartitioned table (environment_tables), in
    batches along each table's index on the foreign key (config/batches.py)."""
    return sum(
        rows_delete(
            model._base_manager.filter(**{field: environment_id}),
            order_by=_order_field(model, field),
            batch_size=batch_size,
            after_batch=after_batch,
        )
        for model, field in environment_tables()
    )


def _order_field(model: type[models.Model], field: str) -> str:
    """The (NOT NULL) field after the environment in an index that leads with it (the
    unique key, the feed's user id), else the environment itself. Batches ordered by it start
    where the last one ended (config/batches.py), so they never walk again over the index
    entries of rows deleted before (left in the index until vacuum, and not skipped at all
    while an older transaction could still see them)."""
    columns = {f.column: f.name for f in model._meta.concrete_fields}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[1] "
            "JOIN pg_attribute e ON e.attrelid = i.indrelid AND e.attnum = i.indkey[0] "
            "WHERE i.indrelid = %s::regclass AND e.attname = %s AND i.indisvalid "
            "AND a.attnotnull AND a.atttypid <> 'boolean'::regtype AND i.indpred IS NULL "
            "ORDER BY i.indisunique DESC, i.indexrelid LIMIT 1",
            [model._meta.db_table, model._meta.get_field(field).column],
        )
        row = cursor.fetchone()
    return columns.get(row[0], field) if row else field


def environment_row_delete(*, environment_id: int) -> bool:
    """Delete the Environment row, only if no log row refers to it any more (nor any row of
    another registered purge), so the database's cascade has nothing to do on the log tables.
    False (and nothing deleted) when rows remain, e.g. written by a request that
    authenticated just before the mark."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{_ROW_DELETE_LOCK_TIMEOUT}'")
        for purge in tenant_purges():
            if purge.remains(cursor=cursor, environment_id=environment_id):
                return False
        Environment.all_objects.filter(pk=environment_id).delete()
    return True


def tenant_deletions_resume() -> int:
    """Enqueue the purge of every tenant still marked as being deleted (a worker died, the
    broker lost the task); purges already running skip it. Returns how many were enqueued."""
    accounts = list(Account.all_objects.exclude(deleting_at=None).values_list("pk", flat=True))
    environments = list(
        Environment.all_objects.exclude(deleting_at=None)
        .exclude(account_id__in=accounts)
        .values_list("pk", flat=True)
    )
    for account_id in accounts:
        _enqueue("account_purge_task", account_id)
    for environment_id in environments:
        _enqueue("environment_purge_task", environment_id)
    return len(accounts) + len(environments)


def _marked(model, pk: int, mark_with: str) -> bool:
    """True when the tenant exists and is marked as being deleted; False when it is gone
    already (a second run). A live tenant is refused: its data is never purged by mistake."""
    deleting_at = model.all_objects.filter(pk=pk).values_list("deleting_at", flat=True).first()
    if deleting_at is not None:
        return True
    if model.all_objects.filter(pk=pk).exists():
        raise ValueError(
            f"{model._meta.verbose_name.capitalize()} {pk} is not being deleted: mark it with "
            f"{mark_with}() first; its data is kept."
        )
    return False


def environment_rows_purge(
    *,
    partition: str,
    environment_id: int,
    batch_size: int = BATCH_SIZE,
    column: str | None = None,
    before: datetime | None = None,
    after_batch: Callable[[], None] | None = None,
) -> int:
    """Delete the environment's rows of one partition (only those whose `column` is before
    `before`, when given: an account's shorter retention, logs/retention.py), `batch_size` at
    a time, each batch committed on its own. The batch is found by the environment's index
    and deleted by physical row address (a TID scan), so a batch costs about `batch_size` row
    visits. `after_batch` runs after each committed batch."""
    name = connection.ops.quote_name(partition)
    older = f" AND {connection.ops.quote_name(column)} < %s" if column and before else ""
    # The outer statement names the environment too: on Citus that keeps the whole DELETE
    # on the environment's shard (a row address means something on one shard only).
    params = [environment_id, environment_id, *([before] if older else []), batch_size]
    removed = 0
    while True:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {name} WHERE environment_id = %s AND ctid = ANY(ARRAY("  # noqa: S608 (a partition name from pg_class, quoted)
                    f"SELECT ctid FROM {name} WHERE environment_id = %s{older} LIMIT %s))",
                    params,
                )
                count = cursor.rowcount
        except ProgrammingError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == "42P01":
                return removed  # the retention purge dropped this day meanwhile
            raise
        removed += count
        if count < batch_size:
            return removed
        if after_batch is not None:
            after_batch()


class PurgeLeaseLost(Exception):
    """Another worker took the tenant's lease: this one's expired while it worked."""


class _Lease:
    """A tenant's purge lease (accounts.models.PurgeLease): taken, renewed and given back by
    single statements, each its own transaction, with the database's clock. Nothing of it
    lives in the connection's session, so it is safe behind a transaction-mode pooler."""

    def __init__(self, tenant: str):
        self.tenant = tenant
        self.holder = uuid.uuid4()
        self.renewed = 0.0
        self.table = PurgeLease._meta.db_table

    def acquire(self) -> bool:
        """Take the lease when nobody holds it, or its holder's lease has expired."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (tenant, holder, expires_at) "  # noqa: S608 (our table)
                "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (tenant) DO UPDATE "
                "SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
                f"WHERE {self.table}.expires_at < now() RETURNING 1",
                [self.tenant, self.holder, LEASE_SECONDS],
            )
            acquired = cursor.fetchone() is not None
        self.renewed = time.monotonic()
        return acquired

    def renew(self) -> None:
        """Extend the lease (a write at most every third of LEASE_SECONDS, however often it is
        called). Raises PurgeLeaseLost when another worker holds it now."""
        if time.monotonic() - self.renewed < LEASE_SECONDS / 3:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {self.table} SET expires_at = now() + make_interval(secs => %s) "  # noqa: S608 (our table)
                "WHERE tenant = %s AND holder = %s",
                [LEASE_SECONDS, self.tenant, self.holder],
            )
            if cursor.rowcount == 0:
                raise PurgeLeaseLost(self.tenant)
        self.renewed = time.monotonic()

    def release(self) -> None:
        PurgeLease.objects.filter(tenant=self.tenant, holder=self.holder).delete()


@contextmanager
def _leased(tenant: str) -> Iterator["_Lease | None"]:
    """The tenant's lease for the block, or None when another worker holds it."""
    lease = _Lease(tenant)
    if not lease.acquire():
        yield None
        return
    try:
        yield lease
    finally:
        try:
            lease.release()
        except DatabaseError:
            # The connection is gone (the error the block raised says why): the lease
            # expires by itself.
            logger.warning("Purge lease of %s not released; it expires by itself.", tenant)


def _enqueue(task_name: str, tenant_id: int) -> None:
    # By name (config/enqueue.py): the tasks module imports this one.
    task(f"accounts.tasks.{task_name}").delay(tenant_id)
