"""Deleting a tenant without locking the log.

An environment's logs can be millions of rows across every day partition. Deleting the
Environment row would cascade (ON DELETE CASCADE) over all of them in one transaction: minutes
of locks on every partition, a transaction that holds back vacuum and that partition DDL
queues behind. Instead, in two steps:

1. `environment_delete` / `account_delete` mark the tenant (`deleting_at`) in one short
   transaction. The default managers hide marked rows (accounts.models.LiveManager), so it
   disappears from every console page, selector and credential lookup at once (its client
   secret and API keys answer 401), and the purge is enqueued on commit.
2. `environment_purge` (a Celery task) removes its log rows partition by partition, in
   batches of `batch_size` rows, each batch its own short transaction; other tenants'
   writers never wait on it. Only when no log row is left is the Environment row deleted
   (its small tables, API keys and catalogue, go with it by cascade). `account_purge` does
   this for each environment, then deletes the account.

Safe to run twice (a session advisory lock lets one worker purge a tenant at a time; the
others return), and resumable: beat runs `tenant_deletions_resume` to pick up purges a dead
worker left unfinished.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import ProgrammingError, connection, transaction
from django.utils import timezone

from accounts.authentication import credentials_cache
from accounts.models import Account, Environment
from logs.partitions import PARTITIONED_TABLES, partition_list

logger = logging.getLogger(__name__)

# Rows per DELETE: a few milliseconds of work, so each transaction stays short.
BATCH_SIZE = 5_000
# Children first, so a purge interrupted midway never leaves events without notifications.
PURGE_ORDER = ("webhooks_inbox", "logs_event", "logs_delivery", "logs_notification")
# Advisory lock classes (the second key is the tenant's id): "tenant env", "tenant acct".
_ENVIRONMENT_LOCK = 0x74656E76
_ACCOUNT_LOCK = 0x74656E61
# The final DELETE of a tenant row waits this long for a lock, then the purge retries later.
_ROW_DELETE_LOCK_TIMEOUT = "2s"

assert set(PURGE_ORDER) == set(PARTITIONED_TABLES), "purge every partitioned log table"


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
    """Remove a deleting environment's log rows in batches, then the environment. True when
    it is gone; False when another worker is purging it or its row could not be deleted
    yet (beat retries). Refuses an environment that is not marked as being deleted."""
    if not _marked(Environment, environment_id, "environment_delete"):
        return True
    with _advisory_lock(_ENVIRONMENT_LOCK, environment_id) as acquired:
        if not acquired:
            return False
        removed = sum(
            environment_rows_purge(
                partition=partition.name, environment_id=environment_id, batch_size=batch_size
            )
            for table in PURGE_ORDER
            for partition in partition_list(table)
        )
        logger.info("Removed %d log rows of environment %d.", removed, environment_id)
        return environment_row_delete(environment_id=environment_id)


def account_purge(*, account_id: int, batch_size: int = BATCH_SIZE) -> bool:
    """Purge every environment of a deleting account, then delete the account (its
    memberships go with it). True when it is gone."""
    if not _marked(Account, account_id, "account_delete"):
        return True
    with _advisory_lock(_ACCOUNT_LOCK, account_id) as acquired:
        if not acquired:
            return False
        environment_ids = Environment.all_objects.filter(account_id=account_id).values_list(
            "pk", flat=True
        )
        done = [
            environment_purge(environment_id=environment_id, batch_size=batch_size)
            for environment_id in list(environment_ids)
        ]
        if not all(done):
            return False
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{_ROW_DELETE_LOCK_TIMEOUT}'")
            if Environment.all_objects.filter(account_id=account_id).exists():
                return False  # an environment was added meanwhile: next round
            Account.all_objects.filter(pk=account_id).delete()
        return True


def environment_row_delete(*, environment_id: int) -> bool:
    """Delete the Environment row, only if no log row refers to it any more, so the
    database's cascade has nothing to do on the log tables. False (and nothing deleted) when
    rows remain, e.g. written by a request that authenticated just before the mark."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{_ROW_DELETE_LOCK_TIMEOUT}'")
        for table in PURGE_ORDER:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE environment_id = %s)",  # noqa: S608 (our table names)
                [environment_id],
            )
            if cursor.fetchone()[0]:
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
) -> int:
    """Delete the environment's rows of one partition (only those whose `column` is before
    `before`, when given: an account's shorter retention, logs/retention.py), `batch_size` at
    a time, each batch committed on its own. The batch is found by the environment's index
    and deleted by physical row address (a TID scan), so a batch costs about `batch_size` row
    visits."""
    name = connection.ops.quote_name(partition)
    older = f" AND {connection.ops.quote_name(column)} < %s" if column and before else ""
    params = [environment_id, *([before] if older else []), batch_size]
    removed = 0
    while True:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {name} WHERE ctid = ANY(ARRAY("  # noqa: S608 (a partition name from pg_class, quoted)
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


@contextmanager
def _advisory_lock(lock_class: int, key: int) -> Iterator[bool]:
    """A session-level advisory lock, released at the end (or when the worker's connection
    dies): one purge of a tenant at a time, outside any transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", [lock_class, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", [lock_class, key])


def _enqueue(task_name: str, tenant_id: int) -> None:
    # Imported here: the tasks module imports this one.
    from accounts import tasks

    getattr(tasks, task_name).delay(tenant_id)
