"""What a dispatch run reads for its batch: each notification with its type's templates, its
user's preferences, its deliveries' states and the attempts earlier runs made (Dispatch), a
query of each kind for the whole batch (dispatches_load)."""

import uuid
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat

from logs.citus import environment_groups
from logs.models import Delivery, Event, Notification
from logs.vocabulary import Channel, EventKind
from notifications import selectors
from notifications.models import ChannelTemplate, Outbox, UserPreference
from notifications.wire import RequestInvalid, SendRequest, send_request_parse


@dataclass
class Dispatch:
    notification: Notification
    outbox: Outbox
    send_request: SendRequest
    templates: dict[str, ChannelTemplate]
    preferences: list[UserPreference]
    states: dict[str, str]
    # Sending events already recorded per channel (by runs before this one).
    attempts: dict[str, int] = field(default_factory=dict)
    plan_allowed: bool | None = None
    claim: uuid.UUID | None = None
    # Set when its claim was found taken by another worker: nothing more is sent for it.
    lost: bool = False
    channel_label: dict[str, str] = field(default_factory=lambda: dict(Channel.choices))


class RequestRefused(Exception):
    def __init__(self, notification: Notification, reason: str):
        super().__init__(reason)
        self.notification = notification
        self.reason = reason


def _notifications_load(outboxes: list[Outbox]) -> dict[uuid.UUID, Notification]:
    """The batch's notifications by id, with their environment and account: one query, by
    (id, created_at), the primary key. On Citus one per environment (the outbox row knows
    it), naming it: each runs on the environment's shard."""
    notifications = {}
    for environment_id, group in environment_groups(outboxes, lambda o: o.environment_id):
        rows = Notification.objects.select_related("environment__account").filter(
            id__in=[outbox.notification_id for outbox in group],
            created_at__in={outbox.notification_created_at for outbox in group},
        )
        if environment_id is not None:
            rows = rows.filter(environment_id=environment_id)
        notifications.update((notification.id, notification) for notification in rows)
    return notifications


# The first attempt's Sending's key (logs.timeline.sending_key), in SQL, for its channel.
_FIRST_SENDING_KEY = Concat(Value("sending:"), F("channel"), Value(":1"))


def dispatches_load(
    outboxes: list[Outbox],
) -> list[tuple[Outbox, "Dispatch | RequestRefused | None"]]:
    """What the batch's dispatch reads, a query of each kind for all of it: the
    notifications (None for one purged), their types' templates, their users' preferences,
    their deliveries' states and how many attempts earlier runs made."""
    notifications = _notifications_load(outboxes)
    found = list(notifications.values())
    templates: dict[tuple[int, str], dict[str, ChannelTemplate]] = {}
    for template in ChannelTemplate.objects.filter(
        notification_type__environment_id__in={n.environment_id for n in found},
        notification_type__key__in={n.notification_type for n in found},
    ).select_related("notification_type"):
        key = (template.notification_type.environment_id, template.notification_type.key)
        templates.setdefault(key, {})[template.channel] = template
    preferences = selectors.user_preferences_of(
        (n.environment_id, n.user_id, n.notification_type) for n in found
    )
    states: dict[uuid.UUID, dict[str, str]] = {n.id: {} for n in found}
    attempts: dict[uuid.UUID, dict[str, int]] = {n.id: {} for n in found}
    # One read of each kind for the batch; on Citus one per environment (logs.citus).
    for environment_id, group in environment_groups(found, lambda n: n.environment_id):
        children = {
            "notification_id__in": [n.id for n in group],
            "notification_created_at__in": {n.created_at for n in group},
        }
        if environment_id is not None:
            children["environment_id"] = environment_id
        first_folded: set[tuple[uuid.UUID, str]] = set()
        for notification_id, channel, state, sending_at in Delivery.objects.filter(
            **children
        ).values_list("notification_id", "channel", "state", "sending_at"):
            states[notification_id][channel] = state
            if sending_at is not None:
                # The first attempt's Sending, folded into the delivery (logs.timeline).
                first_folded.add((notification_id, channel))
                attempts[notification_id][channel] = 1
        if any(states[n.id] for n in group):
            # Sending makes the channel's delivery: without one, no run attempted it. Its
            # rows: the later attempts, and the first where it is not folded (or, until the
            # release that stops writing them, too: then the larger count stands).
            for notification_id, channel, count, first in (
                Event.objects.filter(**children, kind=EventKind.SENDING)
                .values_list("notification_id", "channel")
                .annotate(
                    count=Count("id"),
                    first=Count("id", filter=Q(dedupe_key=_FIRST_SENDING_KEY)),
                )
            ):
                folded = (notification_id, channel) in first_folded and not first
                attempts[notification_id][channel] = count + folded
    loaded = []
    for outbox in outboxes:
        notification = notifications.get(outbox.notification_id)
        if notification is None or notification.created_at != outbox.notification_created_at:
            loaded.append((outbox, None))
            continue
        try:
            # Validated when it was accepted; parsed again for the options it carries.
            send_request = send_request_parse(notification.request)
        except RequestInvalid as exc:
            loaded.append((outbox, RequestRefused(notification, str(exc))))
            continue
        dispatch = Dispatch(
            notification=notification,
            outbox=outbox,
            send_request=send_request,
            templates=templates.get(
                (notification.environment_id, notification.notification_type), {}
            ),
            preferences=preferences.get(
                (notification.environment_id, notification.user_id, notification.notification_type),
                [],
            ),
            states=states[notification.id],
            attempts=attempts[notification.id],
        )
        loaded.append((outbox, dispatch))
    return loaded
