from datetime import date

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from logs.partitions import PARTITIONED_TABLES, partition_list, partitions_ensure


class Command(BaseCommand):
    help = "Create the daily log partitions from today (or --from) through --days ahead."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=settings.LOG_PARTITIONS_AHEAD,
            help="Days ahead of today to create (default LOG_PARTITIONS_AHEAD).",
        )
        parser.add_argument(
            "--from", dest="start", type=date.fromisoformat, default=None,
            help="First day to create (YYYY-MM-DD), for back-filled history.",
        )  # fmt: skip
        parser.add_argument("--list", action="store_true", help="List the partitions after.")

    def handle(self, *args, days: int, start: date | None, list: bool, **options):
        if days < 0:
            raise CommandError("--days must be 0 or more.")
        created = partitions_ensure(days_ahead=days, start=start)
        self.stdout.write(f"{len(created)} partition(s) created" + (":" if created else "."))
        for name in created:
            self.stdout.write(f"  {name}")
        if list:
            for table in PARTITIONED_TABLES:
                for partition in partition_list(table):
                    span = (
                        "DEFAULT"
                        if partition.is_default
                        else f"{partition.start:%Y-%m-%d} .. {partition.end:%Y-%m-%d}"
                    )
                    self.stdout.write(f"{partition.name:40} {span}")
