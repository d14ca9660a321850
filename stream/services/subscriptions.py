"""Subscriptions to the event stream: their filters checked, created with a signing secret
(shown once), enabled again after the stream disabled them."""

import base64
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.crypto import secret_encrypt
from accounts.models import Environment
from config import outbound
from logs.vocabulary import SUB_KINDS_BY_KIND, EventKind
from stream import compat
from stream.models import PayloadFormat, StreamMessage, Subscription
from stream.services.outbox import drains_enqueue, retry_window, subscriptions_cache


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
        count = pending.update(retry_until=now + retry_window(), next_attempt_at=now)
        transaction.on_commit(lambda: drains_enqueue([subscription.pk]))
    return count
