"""A few dozen live sends through the sandbox in the demo environment, covering every outcome
of the magic-recipient table, once (left alone when the environment has notifications).
`make run` runs demo_populate, which does this after seeding a week. Refused in production."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.services import (
    demo_catalogue_install,
    demo_environment,
    demo_has_notifications,
    demo_sends,
)


class Command(BaseCommand):
    help = "Give the demo environment its catalogue and a few dozen sandbox sends (once)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_send writes demo data and is refused in production.")
        environment = demo_environment()
        if environment is None:
            raise CommandError("No demo environment: run manage.py bootstrap_demo first.")
        demo_catalogue_install(environment=environment)
        if demo_has_notifications(environment):
            self.stdout.write("Demo notifications exist already; none sent.")
            return
        sent = demo_sends(environment=environment)
        self.stdout.write(f"Demo: {sent} notifications sent through the sandbox.")
