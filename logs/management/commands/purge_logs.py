from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from logs.services import retention_purge


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
            expired = retention_purge(retention_days=days, dry_run=dry_run)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        verb = "Would drop" if dry_run else "Dropped"
        day_count = len({p.start for p in expired})
        self.stdout.write(f"{verb} {len(expired)} partition(s), {day_count} day(s) of logs.")
        for partition in expired:
            self.stdout.write(f"  {partition.name:40} {partition.start:%Y-%m-%d}")
