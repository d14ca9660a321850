from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from logs.retention import retention_purge


class Command(BaseCommand):
    help = (
        "Drop whole days of logs older than the retention period (LOG_RETENTION_DAYS), as the "
        "nightly beat task does."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=settings.LOG_RETENTION_DAYS,
            help="Days of logs to keep (default LOG_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be dropped; drop nothing."
        )

    def handle(self, *args, days: int, dry_run: bool, **options):
        try:
            purge = retention_purge(retention_days=days, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would drop" if dry_run else "Dropped"
        day_count = len({p.start for p in purge.partitions})
        self.stdout.write(
            f"{verb} {len(purge.partitions)} partition(s), {day_count} day(s) of logs."
        )
        for partition in purge.partitions:
            self.stdout.write(f"  {partition.name:40} {partition.start:%Y-%m-%d}")
        if purge.busy:
            names = ", ".join(partition.name for partition in purge.busy)
            raise CommandError(
                f"{len(purge.busy)} partition(s) past retention were busy and not dropped "
                f"({names}): their locks were not free within LOG_PARTITION_LOCK_TIMEOUT_MS. "
                "Run purge_logs again later; the nightly purge retries them too."
            )
