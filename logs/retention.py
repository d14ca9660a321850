"""Retention: whole days of logs past LOG_RETENTION_DAYS go, a partition at a time."""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from logs.partitions import (
    PARTITIONED_TABLES,
    Partition,
    PartitionBusy,
    partition_drop,
    partitions_before,
    partitions_detached_drop,
    partitions_ensure,
)

logger = logging.getLogger(__name__)


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
