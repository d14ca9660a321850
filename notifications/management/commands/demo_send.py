"""`make run`'s living demo: notification types with templates on every channel in the demo
environment, a few identified users and preferences, and a few dozen sends through the
sandbox that cover every outcome of the magic-recipient table (providers.md). Runs once: a
demo environment that already has notifications is left alone. Refused in production."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.management.commands.bootstrap_demo import DEMO_ACCOUNT
from accounts.models import Environment
from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import ChannelTemplate, EndUser, NotificationType, UserPreference
from notifications.services import notification_send
from notifications.wire import send_request_parse

# key: (name, {channel: (subject, html, text, enabled)})
CATALOGUE = {
    "order_tracking": (
        "Order tracking",
        {
            Channel.EMAIL: (
                "Order {{ order_id }} has shipped",
                "<p>Hi {{ first_name }}, order <b>{{ order_id }}</b> is on its way.</p>",
                "Hi {{ first_name }}, order {{ order_id }} is on its way.",
                True,
            ),
            Channel.SMS: ("", "", "Order {{ order_id }} shipped. Track it in the app.", True),
            Channel.IN_APP: ("Order {{ order_id }} shipped", "", "", True),
        },
    ),
    "password_reset": (
        "Password reset",
        {
            Channel.EMAIL: (
                "Reset your password",
                '<p>Hi {{ first_name }}, <a href="{{ link }}">reset it here</a>.</p>',
                "",
                True,
            ),
            Channel.SMS: ("", "", "Your reset code is {{ code }}", True),
        },
    ),
    "delivery_call": (
        "Delivery call",
        {
            Channel.CALL: (
                "",
                "",
                "Hello {{ first_name }}, your courier arrives in ten minutes.",
                True,
            ),
            Channel.SMS: ("", "", "Your courier arrives in ten minutes.", True),
        },
    ),
    "weekly_digest": (
        "Weekly digest",
        {
            Channel.EMAIL: ("Your week, {{ first_name }}", "<p>{{ summary }}</p>", "", True),
            # Turned off in the console: every send shows Ignored - Dashboard Preference.
            Channel.IN_APP: ("Your weekly digest is ready", "", "", False),
        },
    ),
}

# (user id, email, number): the local parts and number endings are the sandbox's magic.
USERS = [
    ("alice", "alice@example.com", "+14155550100"),
    ("bob", "bounce@example.com", "+14155550001"),
    ("carol", "delay@example.com", "+14155550002"),
    ("dave", "complaint@example.com", "+14155550003"),
    ("erin", "reject@example.com", "+14155550004"),
    ("frank", "frank@example.com", "+14155550005"),
]


class Command(BaseCommand):
    help = "Give the demo environment a catalogue and a few dozen sandbox sends (once)."

    def handle(self, *args, **options):
        if settings.PRODUCTION:
            raise CommandError("demo_send writes demo data and is refused in production.")
        environment = Environment.objects.filter(
            account__name=DEMO_ACCOUNT, name="production"
        ).first()
        if environment is None:
            raise CommandError("No demo environment: run manage.py bootstrap_demo first.")
        self._catalogue(environment)
        if Notification.objects.filter(environment_id=environment.id).exists():
            self.stdout.write("Demo notifications exist already; none sent.")
            return
        sent = sum(1 for body in self._sends() if self._send(environment, body))
        self.stdout.write(f"Demo: {sent} notifications sent through the sandbox.")

    @transaction.atomic
    def _catalogue(self, environment: Environment) -> None:
        for key, (name, templates) in CATALOGUE.items():
            notification_type, _ = NotificationType.objects.get_or_create(
                environment=environment, key=key, defaults={"name": name}
            )
            for channel, (subject, html, text, enabled) in templates.items():
                ChannelTemplate.objects.get_or_create(
                    notification_type=notification_type,
                    channel=channel,
                    defaults={"subject": subject, "html": html, "text": text, "enabled": enabled},
                )
        for user_id, email, number in USERS:
            EndUser.objects.get_or_create(
                environment=environment,
                user_id=user_id,
                defaults={"email": email, "number": number, "timezone": "Europe/Paris"},
            )
        # Frank turned weekly digest emails off.
        UserPreference.objects.get_or_create(
            environment=environment,
            user_id="frank",
            notification_type="weekly_digest",
            channel=Channel.EMAIL,
            defaults={"delivery": UserPreference.Delivery.OFF},
        )

    def _sends(self):
        tags = {
            "first_name": "Sam",
            "order_id": "A-1001",
            "link": "https://example.com/r",
            "code": "482913",
            "summary": "3 orders, 1 return.",
        }
        for index, (user_id, _, _) in enumerate(USERS):
            for key in CATALOGUE:
                yield {
                    "notificationId": key,
                    "user": {"id": user_id},
                    "mergeTags": {**tags, "order_id": f"A-{1000 + index}"},
                }
        # A missing merge tag and a user with no address: Failed, naming what to fix.
        yield {"notificationId": "order_tracking", "user": {"id": "alice"}, "mergeTags": {}}
        yield {"notificationId": "password_reset", "user": {"id": "newcomer"}, "mergeTags": tags}
        # Push has no provider yet; one send tomorrow waits in the outbox.
        yield {
            "notificationId": "order_tracking",
            "user": {"id": "alice"},
            "mergeTags": tags,
            "forceChannels": ["PUSH", "EMAIL"],
        }
        tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
        yield {
            "notificationId": "weekly_digest",
            "user": {"id": "alice"},
            "mergeTags": tags,
            "schedule": tomorrow,
        }

    def _send(self, environment: Environment, body: dict) -> bool:
        notification_send(
            environment=environment,
            send_request=send_request_parse(body),
            raw_request=body,
            source="demo",
        )
        return True
