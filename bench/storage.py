"""What the log costs on disk: bytes per notification of each log table (its heap, its TOAST,
its indexes), summed over its day partitions, at the size the searches are measured at (the
same seed, shared through run.once). Every change to the schema shows its cost here.

Rows: `storage.bytes` (the three tables), `storage.bytes.notifications`, `.deliveries` and
`.events`, in bytes per seeded notification (lower is better), as a live install holds the log:
vacuumed, and with the indexes of its finished days compacted by the nightly maintenance
(logs/index_compaction.py); `storage.bytes.before_compaction` is the same log before that
compaction (indexes as the writes grew them). Each note splits it into heap,
TOAST and indexes, and results.json has the bytes themselves. Each row is its own baseline:
the figure to compare is the same row of an earlier run. `storage.seed` is how fast
`seed_logs` wrote that data (notifications per second, COPY and ANALYZE included): what an
operator loading a copy of production, or this benchmark at `--scale 10m`, waits for.
"""

from django.db import connection

from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from bench.selectors import FULL, SMOKE, _seeded
from config.db import statement_timeout_lifted
from logs.index_compaction import index_compact

TABLES = {
    "notifications": "logs_notification",
    "deliveries": "logs_delivery",
    "events": "logs_event",
}

# Over the leaf partitions: heap (main fork, free space and visibility maps), the TOAST
# table with its index, and every index.
_SIZES = """
    SELECT coalesce(sum(pg_table_size(c.oid) - coalesce(pg_total_relation_size(
               nullif(c.reltoastrelid, 0)), 0)), 0),
           coalesce(sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)), 0),
           coalesce(sum(pg_indexes_size(c.oid)), 0),
           count(*)
    FROM pg_partition_tree(%s::regclass) AS tree
    JOIN pg_class AS c ON c.oid = tree.relid
    WHERE tree.isleaf
"""


def table_bytes(table: str) -> tuple[int, int, int]:
    """(heap, TOAST, indexes) in bytes of a partitioned log table, all partitions."""
    with connection.cursor() as cursor:
        cursor.execute(_SIZES, [table])
        heap, toast, indexes, partitions = cursor.fetchone()
    if not partitions:
        raise BenchmarkError(f"{table} has no partitions: is it still partitioned?")
    return int(heap), int(toast), int(indexes)


@register
class StorageBytes(Scenario):
    name = "storage.bytes"
    baseline = None
    description = "bytes on disk per notification, the three log tables (heap, TOAST, indexes)"
    smoke_size = SMOKE
    full_size = FULL

    def setup(self, run: Run) -> None:
        self.summary = _seeded(run, self.size)

    def measure(self, run: Run) -> dict[str, Measurement]:
        count = self.summary.notifications
        if count <= 0:
            raise BenchmarkError("the seed made no notifications")
        # What the seed wrote is on disk as a live install's would be once vacuumed. Maintenance:
        # no statement timeout (on a loaded machine it took over 30 s at 100,000 notifications).
        with statement_timeout_lifted(), connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) logs_notification, logs_delivery, logs_event")
        grown = self._totals()
        # ...and once the nightly maintenance has compacted the indexes of its finished days
        # (logs/index_compaction.py; no day is left out as about to be purged: a live install
        # compacted those days before).
        compaction = index_compact(retention_days=self.size["days"] + 2)
        if compaction.busy:
            raise BenchmarkError(f"index compaction left {compaction.busy} busy")
        rows: dict[str, Measurement] = {}
        totals = [0, 0, 0]
        for label, table in TABLES.items():
            parts = table_bytes(table)
            totals = [a + b for a, b in zip(totals, parts, strict=True)]
            rows[f"storage.bytes.{label}"] = self._row(parts, count)
        rows["storage.bytes"] = self._row(tuple(totals), count)
        # The same log before that compaction: the indexes as the writes grew them.
        rows["storage.bytes.before_compaction"] = self._row(grown, count)
        return rows

    @staticmethod
    def _totals() -> tuple[int, int, int]:
        parts = [table_bytes(table) for table in TABLES.values()]
        return tuple(sum(values) for values in zip(*parts, strict=True))

    @staticmethod
    def _row(parts: tuple[int, int, int], count: int) -> Measurement:
        heap, toast, indexes = (value / count for value in parts)
        total = heap + toast + indexes
        return Measurement(
            median=round(total, 1),
            p95=round(total, 1),
            unit="bytes/notification",
            n=count,
            note=f"heap {heap:,.0f}, TOAST {toast:,.0f}, indexes {indexes:,.0f} "
            f"({count:,} notifications; {total / 1000:,.2f} GB per million)",
            extra={"heap_bytes": parts[0], "toast_bytes": parts[1], "index_bytes": parts[2]},
        )


@register
class StorageSeed(Scenario):
    name = "storage.seed"
    baseline = None
    description = "seed_logs: notifications written per second (COPY, ANALYZE included)"
    smoke_size = SMOKE
    full_size = FULL

    def setup(self, run: Run) -> None:
        self.summary = _seeded(run, self.size)

    def measure(self, run: Run) -> Measurement:
        count, seconds = self.summary.notifications, self.summary.seconds
        if count <= 0 or seconds <= 0:
            raise BenchmarkError("the seed made no notifications")
        return Measurement(
            median=round(count / seconds, 1),
            p95=round(count / seconds, 1),
            unit="notifications/s",
            higher_is_better=True,
            n=count,
            note=f"{count:,} notifications ({self.summary.rows:,} rows) in {seconds:,.0f} s",
            extra={"seconds": round(seconds, 3), "rows": self.summary.rows},
        )
