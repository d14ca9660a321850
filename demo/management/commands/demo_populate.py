"""What `make run` does in the background once the server answers: the demo account's
catalogue, a seeded week (about 10,000 notifications) with its insights, then a few dozen live
sends through the sandbox. Once: an environment that has notifications is left alone (its
catalogue is still completed). Refused in production."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.services import (
    SEED_DAYS,
    SEED_NOTIFICATIONS,
    demo_catalogue_install,
    demo_environment,
    demo_has_notifications,
    demo_seed,
    demo_sends,
)


class Command(BaseCommand):
    help = "Fill the demo account once: catalogue, a seeded week with insights, live sends."

    def add_arguments(self, parser):
        parser.add_argument("--notifications", type=int, default=SEED_NOTIFICATIONS)
        parser.add_argument("--days", type=int, default=SEED_DAYS)

    def handle(self, *args, notifications, days, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_populate writes demo data and is refused in production.")
        environment = demo_environment()
        if environment is None:
            raise CommandError("No demo environment: run manage.py bootstrap_demo first.")
        demo_catalogue_install(environment=environment)
        if demo_has_notifications(environment):
            self.stdout.write("demo: the Demo account has notifications already; left as is.")
            return
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            self.stdout.write(
                f"demo: seeding the Demo account, {done:,} / {total:,} notifications "
                f"({elapsed:.1f} s)"
            )

        seeded = demo_seed(
            environment=environment, notifications=notifications, days=days, progress=progress
        )
        sent = demo_sends(environment=environment)
        self.stdout.write(
            f"demo: {seeded.notifications:,} notifications over {days} days and their "
            f"insights ({seeded.rollup_rows:,} hourly rollups), then {sent} live sandbox "
            f"sends, in {time.perf_counter() - started:.1f} s. Log in as support."
        )
