from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Environment
from insights.services import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the hourly rollups from the log (a backfill, e.g. after seed_logs, which "
        "writes with COPY and records no events through the service). Scans the log once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=400, help="how far back (default 400)")
        parser.add_argument(
            "--environment", action="append", default=[], help="a client id (default: all)"
        )

    def handle(self, *args, days: int, environment: list[str], **options):
        if days < 1:
            raise CommandError("--days must be at least 1.")
        environments = Environment.objects.order_by("id")
        if environment:
            environments = environments.filter(client_id__in=environment)
            missing = set(environment) - set(environments.values_list("client_id", flat=True))
            if missing:
                raise CommandError(f"No environment with client id {', '.join(sorted(missing))}.")
        since = timezone.now() - timedelta(days=days)
        for each in environments:
            result = rollups_rebuild(environment_id=each.id, since=since)
            if result.busy:
                raise CommandError("A fold or rebuild is running; try again in a moment.")
            self.stdout.write(f"{each.client_id}: {result.rows} rollup rows")
