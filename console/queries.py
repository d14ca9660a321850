"""Reads the console needs beyond logs/selectors.py. Each takes the tenant (an environment,
or the environments the viewer may see) and runs one query, whatever the number of rows."""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.db.models import Q, QuerySet

from console.models import ConsoleSettings, ResendLink
from logs.masking import DEFAULT_SENSITIVE_WORDS
from logs.models import Delivery, Event, Notification
from logs.timeline import timeline
from notifications.models import InAppNotification, NotificationType, UserPreference


def notification_for_viewer(
    *, environment_ids: Sequence[int], tracking_id: uuid.UUID, environment_id: int | None = None
):
    """The notification if it is in one of the viewer's environments, else DoesNotExist (the
    view answers 404, as for an id that does not exist).

    `environment_id` (one of `environment_ids`: the console's own links name it) is looked in
    first, by one statement naming it: on Citus, the log distributed by environment, it runs
    on that environment's shard alone. Only a link without it (a tracking id typed into the
    address bar) or with another one reads the viewer's other environments at once (every
    shard holding one of them, when they are several)."""
    notifications = Notification.objects.select_related("environment__account").defer(
        "environment__client_secret_encrypted"
    )
    others = [pk for pk in environment_ids if pk != environment_id]
    if environment_id is not None and len(others) < len(environment_ids):
        try:
            return notifications.get(id=tracking_id, environment_id=environment_id)
        except Notification.DoesNotExist:
            if not others:
                raise
    return notifications.get(id=tracking_id, environment_id__in=others)


class ChannelState(NamedTuple):
    channel: str
    state: str
    state_detail: str


def channel_states_by_notification(
    *, environment_id: int, notifications: Iterable[Notification]
) -> dict[uuid.UUID, list[ChannelState]]:
    """The channels of a page of notifications, in one query: the notification ids and their
    days (the partition key, so PostgreSQL reads only those days' partitions)."""
    notifications = list(notifications)
    found: dict[uuid.UUID, list[ChannelState]] = defaultdict(list)
    if not notifications:
        return found
    rows = (
        Delivery.objects.filter(
            environment_id=environment_id,
            notification_id__in=[n.id for n in notifications],
            notification_created_at__in=sorted({n.created_at for n in notifications}),
        )
        .order_by("notification_id", "channel")
        .values_list("notification_id", "channel", "state", "state_detail")
    )
    for notification_id, *state in rows:
        found[notification_id].append(ChannelState(*state))
    return found


def events_after(
    *, notification: Notification, deliveries: Iterable[Delivery], after_id: int = 0
) -> list[Event]:
    """The notification's timeline (logs.timeline: its rows and the events folded into it and
    its `deliveries`, in the order they happened), less the rows up to the event `after_id`
    (ids only grow). The folded events have no id and always come back: the page knows each
    line by its dedupe key (a folded event and the row that may later stand for it share
    it), and skips the lines it has."""
    rows = Event.objects.filter(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        environment_id=notification.environment_id,
    )
    return [
        event
        for event in timeline(notification, deliveries, rows)
        if event.id is None or event.id > after_id
    ]


def in_app_item(*, notification: Notification) -> InAppNotification | None:
    """The item the in-app provider put in the user's feed: its link and image are kept there,
    not on the delivery (notifications.providers.in_app)."""
    return (
        InAppNotification.objects.filter(
            notification_id=notification.id, environment_id=notification.environment_id
        )
        .only("url", "image")
        .first()
    )


def resend_links(*, notification: Notification) -> list[ResendLink]:
    """The links that name this notification, as the original or as a resend."""
    return list(
        ResendLink.objects.filter(
            Q(original_id=notification.id) | Q(resend_id=notification.id),
            environment_id=notification.environment_id,
        )
    )


def sensitive_words_for(*, environment_id: int) -> list[str]:
    words = (
        ConsoleSettings.objects.filter(environment_id=environment_id)
        .values_list("sensitive_words", flat=True)
        .first()
    )
    return list(DEFAULT_SENSITIVE_WORDS) if words is None else list(words)


def notification_type_choices(*, environment_id: int) -> list[tuple[str, str]]:
    """The environment's catalogue as (key, label) choices."""
    types = NotificationType.objects.filter(environment_id=environment_id).values_list(
        "key", "name"
    )
    return [(key, f"{name} ({key})" if name and name != key else key) for key, name in types]


def user_preferences(*, environment_id: int, user_id: str) -> QuerySet[UserPreference]:
    return UserPreference.objects.filter(environment_id=environment_id, user_id=user_id).order_by(
        "notification_type", "channel", "sub_notification_id"
    )


def user_contact(*, environment_id: int, user_id: str) -> Notification | None:
    """The user's latest known email, number and time zone: from their newest notification
    (the log is where the console learns them)."""
    return (
        Notification.objects.filter(environment_id=environment_id, user_id=user_id)
        .only("email", "number", "timezone", "created_at")
        .order_by("-created_at", "-id")
        .first()
    )
