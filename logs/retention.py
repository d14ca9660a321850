"""Retention: whole days of logs past LOG_RETENTION_DAYS go, a partition at a time; an
account with a shorter retention loses its older rows in batches inside the days that remain.
Every run is recorded as a PurgeRun (read-only in the console)."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from accounts.deletion import BATCH_SIZE, environment_rows_purge
from accounts.models import Account, Environment
from logs.models import PurgeRun
from logs.partitions import (
    PARTITIONED_TABLES,
    Partition,
    PartitionBusy,
    partition_drop,
    partition_list,
    partitions_before,
    partitions_detached_drop,
    partitions_ensure,
)

logger = logging.getLogger(__name__)

# Children first, so a purge interrupted midway never leaves events without notifications.
PURGE_ORDER = ("webhooks_inbox", "logs_event", "logs_delivery", "logs_notification")
assert set(PURGE_ORDER) == set(PARTITIONED_TABLES), "purge every partitioned log table"


# What other apps keep per day of the log and purge with the nightly retention, once a night
# (webhooks: the callbacks' message id -> environment rows of the days dropped, on Citus):
# each registers `purge(retention_days=)` in its AppConfig.ready, so logs imports none of them.
_retention_followers: dict[str, Callable[..., object]] = {}


def retention_follower_register(*, name: str, purge: Callable[..., object]) -> None:
    """Register an app's purge that follows the log's retention (see above); registering the
    same name again replaces it."""
    _retention_followers[name] = purge


def retention_followers_purge(*, retention_days: int) -> None:
    """Run every registered follower's purge for `retention_days` (retention_purge_task)."""
    for purge in list(_retention_followers.values()):
        purge(retention_days=retention_days)


def environment_logs_purge(*, environment_id: int, batch_size: int, after_batch) -> int:
    """A deleting environment's log rows, partition by partition, children first, in batches
    (accounts/deletion.py runs it: registered in logs/apps.py). Returns the rows removed."""
    return sum(
        environment_rows_purge(
            partition=partition.name,
            environment_id=environment_id,
            batch_size=batch_size,
            after_batch=after_batch,
        )
        for table in PURGE_ORDER
        for partition in partition_list(table)
    )


def environment_logs_remain(*, cursor, environment_id: int) -> bool:
    """True while any log row of the environment is left (its row is then not deleted, so
    the database's cascade never runs over the log)."""
    for table in PURGE_ORDER:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table} WHERE environment_id = %s)",  # noqa: S608 (our table names)
            [environment_id],
        )
        if cursor.fetchone()[0]:
            return True
    return False


@dataclass(frozen=True)
class RetentionPurge:
    # The partitions dropped (with dry_run: those that would be).
    partitions: list[Partition] = field(default_factory=list)
    # Past retention but still there: a lock they needed stayed busy. A later run drops them.
    busy: list[Partition] = field(default_factory=list)


def retention_purge(
    *, retention_days: int, now: datetime | None = None, dry_run: bool = False
) -> RetentionPurge:
    """Drop every day of logs that ended more than `retention_days` ago, whole partitions at
    a time (notifications, deliveries and events of a day go together). Rows waiting in
    DEFAULT are first moved into their days, so they age out like the rest. A partition whose
    locks stay busy is skipped (it gives way to writers) and reported in `busy`."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1 (LOG_RETENTION_DAYS).")
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    if not dry_run:
        partitions_detached_drop()
        partitions_ensure(days_ahead=0)
    expired = [p for table in PARTITIONED_TABLES for p in partitions_before(table, cutoff)]
    if dry_run:
        return RetentionPurge(partitions=expired)
    started = time.monotonic()
    purge = _partitions_drop(expired)
    PurgeRun.objects.create(
        started_at=now or timezone.now(),
        scope=PurgeRun.Scope.INSTALL,
        retention_days=retention_days,
        partitions_dropped=[partition.name for partition in purge.partitions],
        duration_ms=_elapsed_ms(started),
        errors="".join(f"{p.name}: busy; a later purge retries\n" for p in purge.busy),
    )
    return purge


def _partitions_drop(expired: list[Partition]) -> RetentionPurge:
    dropped, busy = [], []
    for partition in expired:
        try:
            partition_drop(partition)
        except PartitionBusy as exc:
            logger.warning(
                "Log partition %s not dropped; a later purge retries: %s", partition.name, exc
            )
            busy.append(partition)
        else:
            dropped.append(partition)
    return RetentionPurge(partitions=dropped, busy=busy)


def retention_purge_accounts(
    *, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> list[PurgeRun]:
    """Apply every shorter account retention (one recorded run per account)."""
    accounts = Account.objects.filter(
        retention_days__isnull=False, retention_days__lt=settings.LOG_RETENTION_DAYS
    )
    return [
        account_retention_purge(account=account, now=now, batch_size=batch_size)
        for account in accounts
    ]


def account_retention_purge(
    *, account: Account, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> PurgeRun:
    """Delete the account's log rows older than its retention, partition by partition and
    environment by environment, `batch_size` rows per short transaction (accounts/deletion.py),
    so writers, its own included, never wait on it. Children first: an interrupted run never
    leaves events without their notification. A failing partition is noted and skipped."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=account.retention_days)
    environment_ids = list(Environment.objects.filter(account=account).values_list("pk", flat=True))
    started, deleted, errors = time.monotonic(), 0, []
    for table in PURGE_ORDER:
        for partition in partition_list(table):
            if partition.start is not None and partition.start >= cutoff:
                continue  # a day wholly within the retention: nothing to look at
            for environment_id in environment_ids:
                try:
                    deleted += environment_rows_purge(
                        partition=partition.name,
                        environment_id=environment_id,
                        batch_size=batch_size,
                        column=PARTITIONED_TABLES[table],
                        before=cutoff,
                    )
                except DatabaseError as exc:
                    # The type and SQLSTATE only: a message may quote row values.
                    sqlstate = getattr(exc.__cause__, "sqlstate", "")
                    errors.append(f"{partition.name}: {type(exc).__name__} {sqlstate}".strip())
                    logger.warning("Account %s retention purge: %s", account.pk, errors[-1])
    return PurgeRun.objects.create(
        started_at=now,
        scope=PurgeRun.Scope.ACCOUNT,
        account=account,
        account_name=account.name,
        retention_days=account.retention_days,
        rows_deleted=deleted,
        duration_ms=_elapsed_ms(started),
        errors="\n".join(errors),
    )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
