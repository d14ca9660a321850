import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from demo.loader import seed_logs


class Command(BaseCommand):
    help = (
        "Fill the log with realistic notifications, deliveries and events created over the last "
        "--days days, in --environments seed environments ('Seed account N / production', "
        "created or reused) or in every environment of --account NAME (e.g. Demo, so its "
        "support user sees them in the console), for demos and benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--notifications", type=int, required=True)
        parser.add_argument("--days", type=int, default=7)
        parser.add_argument("--environments", type=int, default=3)
        parser.add_argument(
            "--account",
            help="Fill this existing account's environments (a 'production' one is created if "
            "it has none) instead of the seed accounts, e.g. --account Demo.",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="Random seed: the same seed gives the same data."
        )
        parser.add_argument(
            "--no-analyze",
            action="store_true",
            help="Skip VACUUM (ANALYZE) of the log tables at the end.",
        )

    def handle(
        self, *args, notifications, days, environments, account, seed, no_analyze, **options
    ):
        if settings.PRODUCTION:
            raise CommandError(
                "seed_logs writes made-up notifications and is refused in production "
                "(APP_PROFILE=production); seed a development or benchmark database instead."
            )
        if notifications < 0 or days < 1 or environments < 1:
            raise CommandError(
                "--notifications must be 0 or more, --days and --environments 1 or more."
            )
        started = time.perf_counter()
        step = max(1, notifications // 10)
        reported = [0]

        def progress(done: int, total: int) -> None:
            if done - reported[0] >= step or done == total:
                reported[0] = done
                elapsed = time.perf_counter() - started
                self.stdout.write(f"  {done:,} / {total:,} notifications ({elapsed:.1f} s)")

        try:
            summary = seed_logs(
                notifications=notifications,
                days=days,
                environments=environments,
                account=account,
                seed=seed,
                analyze=not no_analyze,
                progress=progress,
            )
        except Account.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.notifications:,} notifications, {summary.deliveries:,} "
                f"deliveries and {summary.events:,} events ({summary.rows:,} rows) in "
                f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)."
            )
        )
        self.stdout.write(
            f"Created from {summary.start:%Y-%m-%d %H:%M} to {summary.end:%Y-%m-%d %H:%M} UTC, "
            f"{summary.users:,} users."
        )
        for env_id, name in zip(summary.environment_ids, summary.environment_names, strict=True):
            sample = summary.samples[env_id]
            self.stdout.write(f"Environment {env_id}: {name}")
            for label, values in (
                ("tracking id", sample.tracking_ids),
                ("user id", sample.user_ids),
                ("email", sample.emails),
                ("number", sample.numbers),
                ("provider message id", sample.provider_message_ids),
            ):
                if values:
                    self.stdout.write(f"  e.g. {label}: {values[0]}")
        total = sum(summary.statuses.values()) or 1
        mix = ", ".join(
            f"{status} {count:,} ({100 * count / total:.1f}%)"
            for status, count in sorted(summary.statuses.items())
        )
        self.stdout.write(f"Statuses: {mix}")
        self.stdout.write("Deliveries by channel and outcome:")
        for outcome, count in sorted(summary.outcomes.items()):
            self.stdout.write(f"  {outcome:40} {count:>10,}")
