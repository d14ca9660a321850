"""Accepting a send, the durable hand-off: the notification, its Received event
(logs.services), the outbox row and the idempotency key are one transaction; the dispatch task
is enqueued on commit. If the broker is down the enqueue fails quietly and the outbox sweeper
sends it later: nothing accepted is lost. Also the send path's fences (the schedule within the
retention, the sender domains) and the errors the API answers 404 and 409 with.
"""

import difflib
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Environment
from config.batching import TaskBatcher
from config.enqueue import task
from config.hotcache import HotCache
from logs.services import notification_create
from logs.statements import insert_statement
from logs.vocabulary import Channel
from notifications import selectors
from notifications.models import NotificationType, Outbox, SenderDomain, SendIdempotencyKey
from notifications.rendering import content_parts, merge_tags_used
from notifications.wire import CHANNEL_TO_WIRE, Recipient, RequestInvalid, SendRequest

DEFAULT_TEMPLATE_ID = "default"


class NotFound(LookupError):
    """Answered with 404; the message says what was not found and what exists."""


class Conflict(ValueError):
    """Answered with 409: the object exists but is past the point this change applies to."""


@dataclass(frozen=True)
class SendAccepted:
    notification_id: uuid.UUID
    # Warnings for a 202 (e.g. an unknown templateId fell back to the default).
    warnings: list[str] = field(default_factory=list)
    # True when an Idempotency-Key repeat answered an earlier send.
    replayed: bool = False


def _dispatch_batch_task():
    return task("notifications.tasks.notification_dispatch_batch_task")


# Dispatch requests leave each server process in batches (config/batching.py): one Celery
# message per few milliseconds of sends, not one per send. A batch shares its round trips
# (notifications.dispatch: one claim, one read of each kind, and per channel a transaction
# for up to DISPATCH_CALLS_PER_TRANSACTION calls' Sendings and one for their outcomes), so
# up to 32 a batch: send.dispatch (a burst of 500) went 28-47 notifications/s at 10 a batch
# to 55-90 at 32 (no better at 50 or 100). Not more: a batch is dispatched in order by one
# worker process, and a burst should still spread over all of them.
dispatch_batcher = TaskBatcher(
    _dispatch_batch_task, max_batch=32, max_wait=0.01, what="notifications to dispatch"
)


def dispatch_enqueue(notification_id: uuid.UUID) -> None:
    """Hand a notification to a worker. Called on commit; never raises for a broker outage:
    the outbox row stays and the sweeper enqueues it once the broker is back."""
    dispatch_batcher.add(notification_id)


# Notification types by (environment id, key), for HOT_CACHE_SECONDS: see config/hotcache.py.
notification_type_cache = HotCache("notification types")


def notification_type_required(*, environment: Environment, key: str) -> NotificationType:
    # With its channel templates (cached with it): the send warns about merge tags they need.
    found = notification_type_cache.get(
        (environment.id, key),
        lambda: (
            selectors.notification_types(environment=environment)
            .filter(key=key)
            .prefetch_related("templates")
            .first()
        ),
    )
    if found is not None:
        return found
    keys = selectors.notification_types(environment=environment).values_list("key", flat=True)
    close = difflib.get_close_matches(key, list(keys), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(k) for k in close)}?" if close else ""
    raise NotFound(
        f"Unknown notificationId {key!r} in this environment.{hint} Create the notification "
        "type in the console (Notification types) first."
    )


def request_hash(raw_request: dict) -> str:
    """What identifies a send's body for its Idempotency-Key: key order and spacing aside."""
    canonical = json.dumps(raw_request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotent_replay(
    environment: Environment, key: str, body_hash: str, *, within_retention: bool = True
) -> uuid.UUID | None:
    """The tracking id of the send that used `key`, or None. Raises Conflict when that send
    had another body: a key names one request, and a changed request under an old key is a
    client bug, not a retry."""
    keys = SendIdempotencyKey.objects.filter(environment=environment, key=key)
    if within_retention:
        keys = keys.filter(
            created_at__gte=timezone.now() - timedelta(days=settings.LOG_RETENTION_DAYS)
        )
    earlier = keys.values_list("notification_id", "request_hash").first()
    if earlier is None:
        return None
    notification_id, stored_hash = earlier
    if stored_hash and stored_hash != body_hash:
        raise Conflict(
            f"Idempotency-Key {key[:80]!r} was already used by a send with a different body "
            f"(tracking id {notification_id}); nothing was sent. Use a new key for a new "
            "request, or repeat the first request exactly."
        )
    return notification_id


def _recipient_completed(environment: Environment, recipient: Recipient) -> Recipient:
    """Fill the addresses a send omitted from the identified end user, if any. A send that
    names both addresses skips the lookup (one query less on the hot path)."""
    if recipient.email and recipient.number:
        return recipient
    known = selectors.end_user_get(environment=environment, user_id=recipient.user_id)
    if known is None:
        return recipient
    return Recipient(
        user_id=recipient.user_id,
        email=recipient.email or known.email,
        number=recipient.number or known.number,
        timezone=recipient.timezone or known.timezone,
        push_tokens=recipient.push_tokens or known.push_tokens,
        web_push_tokens=recipient.web_push_tokens or known.web_push_tokens,
    )


class _KeyTaken(Exception):
    pass


# Fences of the send path: what a tenant may ask the install to do (docs/architecture.md,
# "Rules that hold everywhere"). Each refusal is a RequestInvalid, answered 400 naming the field.


def default_sender_domain() -> str:
    """The domain of the install's DEFAULT_FROM_EMAIL: every environment may send from it."""
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2].lower()


def sender_domains_allowed(*, environment_id: int) -> list[str]:
    """The From domains an environment may use: the install's, then its verified ones."""
    verified = SenderDomain.objects.filter(environment_id=environment_id).values_list(
        "domain", flat=True
    )
    return list(dict.fromkeys([default_sender_domain(), *verified]))


def sender_refusal(*, environment_id: int, address: str, field_name: str) -> str:
    """Why `address` may not be the From of this environment's email, or "" when it may.
    Only a From outside the install's domain costs a query."""
    domain = address.rpartition("@")[2].lower()
    if not address or domain == default_sender_domain():
        return ""
    allowed = sender_domains_allowed(environment_id=environment_id)
    if domain in allowed:
        return ""
    shown = ", ".join(allowed[:10])
    if len(allowed) > 10:
        shown += f" and {len(allowed) - 10} more"
    return (
        f"{field_name} {address!r} is not on a verified sender domain of this environment: "
        f"send from an address at {shown}, or ask an owner of the account to add {domain} "
        "under Verified sender domains in the console."
    )


def _senders_check(environment: Environment, send_request: SendRequest) -> None:
    for address, field_name in (
        (send_request.email_options.from_address, "options.email.fromAddress"),
        (send_request.content.get(Channel.EMAIL, {}).get("from_address", ""), "email.senderEmail"),
    ):
        refusal = sender_refusal(
            environment_id=environment.id, address=address, field_name=field_name
        )
        if refusal:
            raise RequestInvalid(refusal)


def schedule_check(
    *, environment: Environment, schedule: datetime | None, created_at: datetime
) -> None:
    """A notification's rows live in the day it was created and go with that day when it
    passes the retention (the account's, if shorter, else LOG_RETENTION_DAYS): a send must be
    due a full day before that, or the purge would drop it unsent and without a Failed event."""
    if schedule is None:
        return
    retention = min(
        environment.account.retention_days or settings.LOG_RETENTION_DAYS,
        settings.LOG_RETENTION_DAYS,
    )
    latest = created_at + timedelta(days=retention - 1)
    if schedule > latest:
        raise RequestInvalid(
            f"schedule {schedule:%Y-%m-%dT%H:%M:%SZ} is too far ahead: this environment keeps "
            f"its logs {retention} days, so a send can be scheduled at most {retention - 1} "
            f"days after it is made (here until {latest:%Y-%m-%dT%H:%M:%SZ}). Send it nearer "
            "its time."
        )


def _merge_tag_warnings(notification_type: NotificationType, send_request: SendRequest) -> list:
    """Warnings naming the merge tags the type's catalogue templates read that the send
    lacks: each would fail its channel at dispatch ('x' is undefined), so say it now, in the
    202 the SDKs log. Inline parts are the sender's own and are not looked at."""
    templates = {t.channel: t for t in notification_type.templates.all() if t.enabled}
    chosen = send_request.force_channels
    if chosen is None:
        chosen = set(templates) | set(send_request.content)
    given = set(send_request.merge_tags)
    needed_by: dict[str, list[str]] = {}
    for channel in [c for c in Channel.values if c in chosen and c in templates]:
        template = templates[channel]
        parts, inline = content_parts(
            channel=channel,
            template={"subject": template.subject, "html": template.html, "text": template.text},
            inline=send_request.content.get(channel, {}),
        )
        used = set().union(
            *(merge_tags_used(source) for part, source in parts.items() if part not in inline)
        )
        for tag in sorted(used - given):
            needed_by.setdefault(tag, []).append(CHANNEL_TO_WIRE[channel])
    if not needed_by:
        return []
    tags = ", ".join(sorted(needed_by))
    channels = sorted({c for names in needed_by.values() for c in names})
    return [
        f"mergeTags lacks {tags}, used by the {' and '.join(channels)} template(s) of "
        f"{notification_type.key!r}: send them, or those channels will be Failed "
        "('... is undefined')."
    ]


def notification_send(
    *,
    environment: Environment,
    send_request: SendRequest,
    raw_request: dict,
    idempotency_key: str = "",
    source: str = "api",
) -> SendAccepted:
    """Accept a send: write it durably and enqueue its dispatch on commit.

    Raises NotFound for an unknown notification type, RequestInvalid for a schedule past the
    retention window or a From outside the environment's sender domains. With an idempotency
    key already used (within the log retention), answers the first send's tracking id and
    writes nothing. Warnings (a 202) name merge tags the type's templates need and the send
    lacks.
    """
    body_hash = request_hash(raw_request) if idempotency_key else ""
    if idempotency_key:
        earlier = _idempotent_replay(environment, idempotency_key, body_hash)
        if earlier is not None:
            return SendAccepted(earlier, replayed=True)
    notification_type = notification_type_required(
        environment=environment, key=send_request.notification_type
    )
    now = timezone.now()
    schedule_check(environment=environment, schedule=send_request.schedule, created_at=now)
    _senders_check(environment, send_request)
    warnings = _merge_tag_warnings(notification_type, send_request)
    if send_request.template_id and send_request.template_id != DEFAULT_TEMPLATE_ID:
        warnings.append(
            f"templateId {send_request.template_id!r} does not exist; the default template "
            f"of {notification_type.key!r} was used."
        )
    recipient = _recipient_completed(environment, send_request.recipient)
    due_at = max(send_request.schedule or now, now)
    tracking_id = uuid.uuid4()
    outbox = Outbox(
        notification_id=tracking_id,
        notification_created_at=now,
        environment=environment,
        due_at=due_at,
        next_sweep_at=(
            due_at if due_at > now else now + timedelta(seconds=settings.OUTBOX_SWEEP_AFTER_SECONDS)
        ),
        created_at=now,
    )
    create = functools.partial(
        notification_create,
        notification_id=tracking_id,
        environment_id=environment.id,
        notification_type=notification_type.key,
        user_id=recipient.user_id,
        email=recipient.email,
        number=recipient.number,
        timezone_name=recipient.timezone,
        merge_tags=send_request.merge_tags,
        request=raw_request,
        created_at=now,
        source=source,
        idempotency_key=idempotency_key,
        scheduled_for=send_request.schedule,
        # The outbox row, in the same round trip: the sweeper's guarantee that it is sent.
        statements_after=[insert_statement(outbox)],
    )
    if not idempotency_key:
        # The hot path: one statement, atomic by itself (no BEGIN/COMMIT).
        create()
        if due_at <= now:
            transaction.on_commit(lambda: dispatch_enqueue(tracking_id))
        return SendAccepted(tracking_id, warnings=warnings)
    try:
        with transaction.atomic():
            create()
            _idempotency_key_claim(environment, idempotency_key, tracking_id, body_hash)
            if due_at <= now:
                transaction.on_commit(lambda: dispatch_enqueue(tracking_id))
    except _KeyTaken:
        # A concurrent send with the same key committed first (or an expired key the nightly
        # purge has not removed yet): answer its tracking id.
        earlier = _idempotent_replay(
            environment, idempotency_key, body_hash, within_retention=False
        )
        return SendAccepted(earlier, replayed=True)
    return SendAccepted(tracking_id, warnings=warnings)


def _idempotency_key_claim(
    environment: Environment, key: str, notification_id, body_hash: str
) -> None:
    # A savepoint, so a duplicate key rolls back to here and then the whole send, cleanly.
    # PostgreSQL makes a concurrent insert of the same key wait for the first transaction,
    # so the loser sees the winner's committed row.
    try:
        with transaction.atomic():
            SendIdempotencyKey.objects.create(
                environment=environment,
                key=key,
                notification_id=notification_id,
                request_hash=body_hash,
            )
    except IntegrityError:
        raise _KeyTaken from None
