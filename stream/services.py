"""The outbound event stream: write the outbox with the event, deliver signed POSTs outside
any transaction, retry with backoff, keep each notification's events in order.

Delivery is at least once: a worker that dies after the POST and before recording it sends
again; the webhook-id header is the same every time, so receivers dedupe on it (Standard
Webhooks)."""

import base64
import json
import logging
import secrets
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from standardwebhooks import Webhook

from accounts.crypto import secret_encrypt
from accounts.models import Account, Environment
from config import outbound
from config.batches import BATCH_SIZE, rows_delete
from config.hotcache import HotCache
from config.outbound import OutboundResult
from logs.vocabulary import SUB_KINDS_BY_KIND, EventKind
from stream import compat
from stream.models import MessageState, PayloadFormat, StreamAttempt, StreamMessage, Subscription

logger = logging.getLogger(__name__)

USER_AGENT = "notification-log-stream/1"


# --- subscriptions ---------------------------------------------------------------------------


def subscription_filters_check(*, kinds: list[str], sub_kinds: list[str], payload_format: str):
    """Errors by field name ({} when the choice is valid): every sub-kind must belong to a
    chosen kind, and the compatibility format only takes what it has an eventType for."""
    errors: dict[str, str] = {}
    if not kinds:
        errors["kinds"] = "Choose at least one event kind."
    unknown = [k for k in kinds if k not in EventKind.values]
    if unknown:
        errors["kinds"] = f"Unknown event kind(s): {', '.join(unknown)}."
    allowed = set().union(*(SUB_KINDS_BY_KIND.get(kind, ()) for kind in kinds))
    stray = [s for s in sub_kinds if s not in allowed]
    if stray:
        errors["sub_kinds"] = (
            f"Sub-kind(s) {', '.join(stray)} belong to no chosen kind: choose their kind too, "
            "or remove them."
        )
    if payload_format == PayloadFormat.NOTIFICATIONAPI:
        unsent = [k for k in kinds if k not in compat.KINDS]
        if unsent:
            errors["kinds"] = (
                f"The NotificationAPI format has no eventType for {', '.join(unsent)}: choose "
                "Failed and/or Engagement, or the Standard Webhooks format."
            )
        unsent_subs = [s for s in sub_kinds if s not in compat.SUB_KINDS]
        if unsent_subs:
            errors["sub_kinds"] = (
                f"The NotificationAPI format has no eventType for {', '.join(unsent_subs)}."
            )
    return errors


def subscription_secret_generate() -> str:
    # Standard Webhooks' secret format: whsec_ and base64 of 24 to 64 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscription_create(
    *,
    environment: Environment,
    url: str,
    kinds: list[str],
    sub_kinds: list[str] | None = None,
    payload_format: str = PayloadFormat.STANDARD,
) -> tuple[Subscription, str]:
    """Validate and save a subscription; returns it and its signing secret (shown once)."""
    sub_kinds = sub_kinds or []
    outbound.url_check(url)
    errors = subscription_filters_check(
        kinds=kinds, sub_kinds=sub_kinds, payload_format=payload_format
    )
    if errors:
        raise ValidationError(errors)
    secret = subscription_secret_generate()
    subscription = Subscription.objects.create(
        environment=environment,
        url=url,
        kinds=kinds,
        sub_kinds=sub_kinds,
        payload_format=payload_format,
        secret_encrypted=secret_encrypt(secret),
    )
    return subscription, secret


def subscription_enable(*, subscription: Subscription) -> int:
    """Turn a disabled subscriber back on: its pending messages get a fresh retry window and
    go out at once. Returns how many were pending."""
    now = timezone.now()
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(
            enabled=True, failing_since=None, disabled_at=None, disabled_reason=""
        )
        transaction.on_commit(subscriptions_cache.clear)
        pending = StreamMessage.objects.filter(subscription=subscription, state="pending")
        count = pending.update(retry_until=now + _window(), next_attempt_at=now)
        transaction.on_commit(lambda: messages_enqueue(_chain_heads(subscription.pk)))
    return count


# --- the outbox, written with the event ------------------------------------------------------

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
                retry_until=now + _window(),
                next_attempt_at=now + _sweep_after(),
            )
        )
    if messages:
        StreamMessage.objects.bulk_create(messages)
        ids = [message.id for message in messages]
        transaction.on_commit(lambda: messages_enqueue(ids))


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


def messages_enqueue(message_ids: list[int]) -> None:
    """Hand messages to workers. Never raises for a broker outage: the sweeper enqueues
    them once it is back (their next_attempt_at passes)."""
    from stream.tasks import stream_message_deliver_task

    for message_id in message_ids:
        try:
            stream_message_deliver_task.apply_async(args=[message_id], retry=False)
        except (BrokerError, OSError) as exc:
            logger.warning(
                "Broker unreachable (%s); the stream sweeper will deliver message %s",
                type(exc).__name__,
                message_id,
            )
            return


# --- delivery --------------------------------------------------------------------------------


def message_deliver(*, message_id: int) -> str:
    """Send one message if it is due: pending, not being sent by another worker, its
    subscription enabled and no earlier message of its notification pending. Returns what
    happened: "delivered", "retry", "given_up" or "skipped"."""
    message = _claim(message_id)
    if message is None:
        return "skipped"
    result = _post(message)
    return _attempt_record(message, result)


def _claim(message_id: int) -> StreamMessage | None:
    now = timezone.now()
    with transaction.atomic():
        message = (
            StreamMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription")
            .filter(pk=message_id, state=MessageState.PENDING, subscription__enabled=True)
            .filter(Q(leased_until=None) | Q(leased_until__lte=now))
            .first()
        )
        if message is None or _earlier_pending(message).exists():
            return None
        message.leased_until = now + timedelta(seconds=settings.STREAM_TIMEOUT_SECONDS + 30)
        message.attempt_count += 1
        message.save(update_fields=["leased_until", "attempt_count"])
    return message


def _earlier_pending(message: StreamMessage):
    return StreamMessage.objects.filter(
        subscription_id=message.subscription_id,
        notification_id=message.notification_id,
        state=MessageState.PENDING,
        id__lt=message.id,
    )


def message_sign(*, secret: str, webhook_id: str, sent_at: datetime, body: bytes) -> dict:
    """The Standard Webhooks headers for one POST (standardwebhooks signs)."""
    signature = Webhook(secret).sign(webhook_id, sent_at, body.decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }


def _post(message: StreamMessage) -> OutboundResult:
    body = json.dumps(message.body, separators=(",", ":")).encode()
    headers = message_sign(
        secret=message.subscription.secret(),
        webhook_id=message.webhook_id,
        sent_at=timezone.now(),
        body=body,
    ) | {"content-type": "application/json", "user-agent": USER_AGENT}
    return outbound.post(
        message.subscription.url,
        content=body,
        headers=headers,
        deadline=settings.STREAM_TIMEOUT_SECONDS,
    )


def _attempt_record(message: StreamMessage, result: OutboundResult) -> str:
    now = timezone.now()
    with transaction.atomic():
        StreamAttempt.objects.create(
            message=message,
            attempted_at=now,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        if result.succeeded:
            outcome = MessageState.DELIVERED
            _subscription_succeeded(message.subscription_id)
        else:
            outcome = "given_up" if now >= message.retry_until else "retry"
            _subscription_failed(message.subscription, now)
        updates = {"leased_until": None}
        if outcome == "retry":
            updates["next_attempt_at"] = now + _backoff(message.attempt_count)
        else:
            updates |= {"state": outcome, "finished_at": now}
        StreamMessage.objects.filter(pk=message.pk).update(**updates)
        if outcome != "retry":
            # The next event of this notification was waiting for this one.
            transaction.on_commit(lambda: messages_enqueue(_chain_next(message)))
    return outcome


def _chain_next(message: StreamMessage) -> list[int]:
    following = StreamMessage.objects.filter(
        subscription_id=message.subscription_id,
        notification_id=message.notification_id,
        state=MessageState.PENDING,
        id__gt=message.id,
    )
    return list(following.order_by("id").values_list("id", flat=True)[:1])


def _subscription_succeeded(subscription_id: int) -> None:
    # Filtered so the common case (not failing) updates, and locks, nothing.
    Subscription.objects.filter(pk=subscription_id, failing_since__isnull=False).update(
        failing_since=None
    )


def _subscription_failed(subscription: Subscription, now: datetime) -> None:
    Subscription.objects.filter(pk=subscription.pk, failing_since=None).update(failing_since=now)
    reason = (
        f"Disabled at {now:%Y-%m-%d %H:%M} UTC: every delivery failed for "
        f"{_window_text()}. Fix the endpoint, then tick Enabled to resume."
    )
    disabled = Subscription.objects.filter(
        pk=subscription.pk, enabled=True, failing_since__lte=now - _window()
    ).update(enabled=False, disabled_at=now, disabled_reason=reason)
    if disabled:
        transaction.on_commit(subscriptions_cache.clear)
        logger.warning(
            "Stream subscription %s (environment %s) disabled: every delivery failed for %s",
            subscription.pk,
            subscription.environment_id,
            _window_text(),
        )


def _backoff(attempts: int) -> timedelta:
    seconds = settings.STREAM_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.STREAM_RETRY_MAX_BACKOFF_SECONDS))


def _window() -> timedelta:
    return timedelta(seconds=settings.STREAM_RETRY_WINDOW_SECONDS)


def _window_text() -> str:
    hours = settings.STREAM_RETRY_WINDOW_SECONDS / 3600
    return f"{hours:g} hours" if hours >= 1 else f"{settings.STREAM_RETRY_WINDOW_SECONDS:g} s"


def _sweep_after() -> timedelta:
    return timedelta(seconds=settings.STREAM_SWEEP_AFTER_SECONDS)


# --- sweeping, replay, purge -----------------------------------------------------------------


def messages_sweep(*, limit: int = 500) -> int:
    """Enqueue pending messages that are due (a retry's backoff passed, or the broker never
    got them) and first in line for their notification. Rows are claimed with SKIP LOCKED,
    so two sweepers never enqueue the same message; each gets a new due time, so a message
    whose task is lost is swept again later. Returns how many were enqueued."""
    now = timezone.now()
    earlier = StreamMessage.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        notification_id=OuterRef("notification_id"),
        state=MessageState.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        due = (
            StreamMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=MessageState.PENDING, next_attempt_at__lte=now)
            .filter(subscription__enabled=True)
            .filter(Q(leased_until=None) | Q(leased_until__lte=now))
            .exclude(Exists(earlier))
            .order_by("next_attempt_at")
        )
        ids = list(due.values_list("id", flat=True)[:limit])
        StreamMessage.objects.filter(pk__in=ids).update(next_attempt_at=now + _sweep_after())
        transaction.on_commit(lambda: messages_enqueue(ids))
    return len(ids)


def _chain_heads(subscription_id: int) -> list[int]:
    earlier = StreamMessage.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        notification_id=OuterRef("notification_id"),
        state=MessageState.PENDING,
        id__lt=OuterRef("id"),
    )
    heads = StreamMessage.objects.filter(
        subscription_id=subscription_id, state=MessageState.PENDING
    ).exclude(Exists(earlier))
    return list(heads.values_list("id", flat=True)[:1000])


def message_replay(*, message_ids: list[int]) -> int:
    """Send messages again (delivered or given up ones too), with the same webhook-id and a
    fresh retry window. Returns how many were put back in line."""
    now = timezone.now()
    with transaction.atomic():
        replayed = StreamMessage.objects.filter(pk__in=message_ids).update(
            state=MessageState.PENDING,
            finished_at=None,
            leased_until=None,
            retry_until=now + _window(),
            next_attempt_at=now + _sweep_after(),
        )
        ids = list(message_ids)
        transaction.on_commit(lambda: messages_enqueue(ids))
    return replayed


def messages_purge(*, older_than_days: int, batch_size: int = BATCH_SIZE) -> int:
    """Remove finished messages (and their attempts) older than the logs they came from, in
    short batches: after `older_than_days` (the install's retention), or after an account's
    own shorter retention for its environments' messages (they carry its users' ids and
    event details). Returns how many went."""
    removed = _finished_messages_purge(
        StreamMessage.objects.all(), older_than_days=older_than_days, batch_size=batch_size
    )
    shorter = Account.objects.filter(retention_days__lt=older_than_days)
    for account_id, retention_days in shorter.values_list("pk", "retention_days"):
        environment_ids = Environment.all_objects.filter(account_id=account_id).values_list(
            "pk", flat=True
        )
        messages = StreamMessage.objects.filter(environment_id__in=list(environment_ids))
        removed += _finished_messages_purge(
            messages, older_than_days=retention_days, batch_size=batch_size
        )
    return removed


def _finished_messages_purge(messages, *, older_than_days: int, batch_size: int) -> int:
    # Along the created_at index, a batch per short transaction (config/batches.py); each
    # batch's attempts go with it by the database's cascade (indexed on message_id).
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return rows_delete(
        messages.filter(created_at__lt=cutoff).exclude(state=MessageState.PENDING),
        order_by="created_at",
        batch_size=batch_size,
    )
