"""The demo's writes: the catalogue its notifications use, a seeded week, live sends.

One catalogue for everything the Demo account shows: the seeded notifications (the demo's
generator), the live sandbox sends and any Resend from the console all use the types of
demo.catalogue.TYPES with the merge tags the seeded requests carry, so every seeded
notification can be resent as it is.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Environment
from demo.catalogue import TAGS, TYPES, channel_templates, environment_profile
from demo.loader import seed_logs
from insights.services import rollups_rebuild
from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import ChannelTemplate, EndUser, NotificationType, UserPreference
from notifications.services.sends import notification_send
from notifications.wire import send_request_parse

DEMO_ACCOUNT = "Demo"
DEMO_ENVIRONMENT = "production"
SEED_NOTIFICATIONS = 10_000
SEED_DAYS = 7
SEED_CHUNK = 1_000  # notifications per committed chunk: a progress line each

# The live sends' users: local parts and number endings are the sandbox's magic recipients
# (docs/architecture.md, "Sandbox provider"): (user id, first name, email, number).
USERS = [
    ("alice", "Alice", "alice@example.com", "+14155550100"),
    ("bob", "Bob", "bounce@example.com", "+14155550001"),
    ("carol", "Carol", "delay@example.com", "+14155550002"),
    ("dave", "Dave", "complaint@example.com", "+14155550003"),
    ("erin", "Erin", "reject@example.com", "+14155550004"),
    ("frank", "Frank", "frank@example.com", "+14155550005"),
]


def demo_environment() -> Environment | None:
    return (
        Environment.objects.filter(account__name=DEMO_ACCOUNT, name=DEMO_ENVIRONMENT)
        .select_related("account")
        .first()
    )


@transaction.atomic
def demo_catalogue_install(*, environment: Environment, profile_index: int = 0) -> int:
    """Give the environment every demo type with a template on each of its channels, in the
    brand the seeder gives the environment at `profile_index` (the Demo account has one).
    Creates only what is missing: a template edited in the console stays as edited.
    Returns the number of templates created."""
    brand, domain, _, _ = environment_profile(profile_index)
    created = 0
    for kind in TYPES:
        notification_type, _ = NotificationType.objects.get_or_create(
            environment=environment,
            key=kind.key,
            defaults={"name": kind.key.replace("_", " ").capitalize()},
        )
        for channel, parts in channel_templates(kind, brand, domain).items():
            _, made = ChannelTemplate.objects.get_or_create(
                notification_type=notification_type, channel=channel, defaults=parts
            )
            created += made
    for user_id, _, email, number in USERS:
        EndUser.objects.get_or_create(
            environment=environment,
            user_id=user_id,
            defaults={"email": email, "number": number, "timezone": "Europe/Paris"},
        )
    # Frank turned the weekly digest off: his digests show Ignored - User Preference.
    UserPreference.objects.get_or_create(
        environment=environment,
        user_id="frank",
        notification_type="weekly_digest",
        channel=Channel.EMAIL,
        defaults={"delivery": UserPreference.Delivery.OFF},
    )
    return created


@dataclass(frozen=True)
class DemoSeed:
    notifications: int
    rollup_rows: int
    seconds: float


def demo_seed(
    *,
    environment: Environment,
    notifications: int = SEED_NOTIFICATIONS,
    days: int = SEED_DAYS,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSeed:
    """A week of notifications in the demo account (the generator, demo/generator.py), then its
    insights rollups rebuilt from them (the seeder writes the log directly, so no rollup
    delta was recorded for these rows)."""
    summary = seed_logs(
        notifications=notifications,
        days=days,
        account=environment.account.name,
        seed=17,
        chunk_size=SEED_CHUNK,
        progress=progress,
    )
    rebuilt = rollups_rebuild(environment_id=environment.id, since=summary.start)
    return DemoSeed(
        notifications=summary.notifications, rollup_rows=rebuilt.rows, seconds=summary.seconds
    )


def demo_sends(*, environment: Environment, seed: int = 1) -> int:
    """A few dozen sends through the pipeline (the sandbox provider in development), covering
    the magic recipients' outcomes, a missing merge tag, a user without an address, a channel
    without a provider and a scheduled send. Returns the number accepted."""
    rng = random.Random(seed)  # noqa: S311 (made-up demo values)

    def body(kind, user_id: str, first_name: str) -> dict:
        tags = {"firstName": first_name} | {tag: TAGS[tag](rng) for tag in kind.tags}
        return {"notificationId": kind.key, "user": {"id": user_id}, "mergeTags": tags}

    # Every type once (to Alice), and the two-channel order_tracking and security_alert to
    # every magic recipient: a couple of dozen, so the worker is through them in seconds.
    bodies = [body(kind, "alice", "Alice") for kind in TYPES]
    for user_id, first_name, _, _ in USERS[1:]:
        for kind in TYPES:
            if kind.key in ("order_tracking", "security_alert", "verification_call"):
                bodies.append(body(kind, user_id, first_name))
    order = {"firstName": "Alice"} | {tag: TAGS[tag](rng) for tag in TYPES[0].tags}
    bodies += [
        # A missing merge tag and a user with no address: Failed, naming what to fix.
        {"notificationId": "order_tracking", "user": {"id": "alice"}, "mergeTags": {}},
        {"notificationId": "password_reset", "user": {"id": "newcomer"}, "mergeTags": order},
        # Push has no provider yet.
        {
            "notificationId": "order_tracking",
            "user": {"id": "alice"},
            "mergeTags": order,
            "forceChannels": ["PUSH", "EMAIL"],
        },
        # Due tomorrow: waits in the outbox.
        {
            "notificationId": "weekly_digest",
            "user": {"id": "alice"},
            "mergeTags": {"firstName": "Alice", "newItems": "12"},
            "schedule": (timezone.now() + timedelta(days=1)).isoformat(),
        },
    ]
    for body in bodies:
        notification_send(
            environment=environment,
            send_request=send_request_parse(body),
            raw_request=body,
            source="demo",
        )
    return len(bodies)


def demo_has_notifications(environment: Environment) -> bool:
    return Notification.objects.filter(environment_id=environment.id).exists()
