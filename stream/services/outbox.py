"""The stream's outbox, written with the event: a message per matching subscription, in the
event's transaction, and the drains enqueued for them once it commits; the retry window each
message gets."""

import contextlib
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from config.enqueue import task
from config.hotcache import HotCache
from logs.vocabulary import SUB_KINDS_BY_KIND
from stream import compat
from stream.models import PayloadFormat, StreamMessage, Subscription

logger = logging.getLogger(__name__)

# An environment's enabled subscriptions, for HOT_CACHE_SECONDS (every event reads them; most
# environments have none): see config/hotcache.py. Cleared in this process on any change.
subscriptions_cache = HotCache("stream subscriptions")


def _enabled_subscriptions(environment_id: int) -> list[Subscription]:
    return subscriptions_cache.get(
        environment_id,
        lambda: list(Subscription.objects.filter(environment_id=environment_id, enabled=True)),
    )


def stream_event_enqueue(sender, *, notification, delivery, event, batch=None, **kwargs) -> None:
    """logs.signals.event_recorded receiver: one outbox row per matching subscription, in the
    event's transaction; their delivery is enqueued once it commits. No network here."""
    subscriptions = [
        subscription
        for subscription in _enabled_subscriptions(notification.environment_id)
        if event.kind in subscription.kinds and _matches(subscription, event)
    ]
    if subscriptions and batch is not None:
        batch.transaction()  # the event's id goes in the message; the hook waits for commit
    now = timezone.now()
    messages = []
    for subscription in subscriptions:
        event_type, body = _body(subscription.payload_format, notification, delivery, event)
        if event_type is None:
            continue
        messages.append(
            StreamMessage(
                subscription=subscription,
                environment_id=notification.environment_id,
                notification_id=notification.id,
                event_id=event.id,
                event_type=event_type,
                webhook_id=f"msg_{uuid.uuid4().hex}",
                body=body,
                created_at=now,
                retry_until=now + retry_window(),
                next_attempt_at=now + _sweep_after(),
            )
        )
    if messages:
        StreamMessage.objects.bulk_create(messages)
        subscription_ids = [subscription.pk for subscription in subscriptions]
        transaction.on_commit(lambda: drains_enqueue(subscription_ids))


def _matches(subscription: Subscription, event) -> bool:
    # Sub-kinds narrow only the kinds they belong to: [Failed, Delivered] with [Bounce]
    # means bounces and every Delivered.
    narrowing = [s for s in subscription.sub_kinds if s in SUB_KINDS_BY_KIND.get(event.kind, ())]
    return not narrowing or event.sub_kind in narrowing


def _body(payload_format: str, notification, delivery, event) -> tuple[str | None, dict]:
    if payload_format == PayloadFormat.NOTIFICATIONAPI:
        event_type = compat.event_type(
            kind=event.kind, sub_kind=event.sub_kind, channel=event.channel
        )
        if event_type is None:
            return None, {}
        return event_type, compat.body(
            event_type=event_type, notification=notification, channel=event.channel
        )
    event_type = f"notification.{event.kind}" + (f".{event.sub_kind}" if event.sub_kind else "")
    data = {
        "trackingId": str(notification.id),
        "eventId": event.id,
        "notificationType": notification.notification_type,
        "userId": notification.user_id,
        "channel": event.channel,
        "kind": event.kind,
        "subKind": event.sub_kind,
        "source": event.source,
        "detail": event.detail,
        "occurredAt": event.occurred_at.isoformat(),
        "recordedAt": event.recorded_at.isoformat(),
        "deliveryState": delivery.state if delivery is not None else None,
        "notificationStatus": notification.status,
    }
    return event_type, {
        "type": event_type,
        "timestamp": event.occurred_at.isoformat(),
        "data": data,
    }


def drains_enqueue(subscription_ids) -> None:
    """Hand subscriptions with messages to deliver to the outbound workers: one drain task per
    subscription, not one per message. A drain already queued for a subscription (a flag in
    the cache, cleared when the drain starts) takes the new messages too, so a busy
    environment queues one task, not one per event. Never raises for a broker outage: the
    sweeper enqueues them once it is back (their next_attempt_at passes)."""
    drain_task = task("stream.tasks.stream_subscription_drain_task")
    for subscription_id in dict.fromkeys(subscription_ids):
        try:
            queued = cache.add(drain_flag(subscription_id), 1, _drain_flag_seconds())
        except Exception:  # the cache is down: enqueue anyway (a spare drain finds nothing)
            queued = True
        if not queued:
            continue
        try:
            drain_task.apply_async(args=[subscription_id], retry=False)
        except (BrokerError, OSError) as exc:
            drain_flag_clear(subscription_id)
            logger.warning(
                "Broker unreachable (%s); the stream sweeper will deliver subscription %s's "
                "messages",
                type(exc).__name__,
                subscription_id,
            )
            return


def drain_flag(subscription_id: int) -> str:
    return f"stream:drain-queued:{subscription_id}"


def _drain_flag_seconds() -> float:
    # A lost task's flag lapses after about one drain's length; the sweeper enqueues again.
    return settings.STREAM_DRAIN_SECONDS + settings.STREAM_TIMEOUT_SECONDS + 60


def drain_flag_clear(subscription_id: int) -> None:
    with contextlib.suppress(Exception):
        cache.delete(drain_flag(subscription_id))


def retry_window() -> timedelta:
    """How long a message is tried before it is given up, from when it is written (or put
    back in line): STREAM_RETRY_WINDOW_SECONDS; a subscriber whose every delivery failed for
    as long is disabled."""
    return timedelta(seconds=settings.STREAM_RETRY_WINDOW_SECONDS)


def _sweep_after() -> timedelta:
    return timedelta(seconds=settings.STREAM_SWEEP_AFTER_SECONDS)
