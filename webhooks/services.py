"""Processing the inbox: a stored callback becomes timeline events, exactly once.

`inbox_process` claims a batch of pending rows (oldest first; FOR UPDATE SKIP LOCKED, so two
workers take different rows, and a lease, so a worker that dies leaves them pending), parses
each with its provider's module, finds every message's delivery by provider message id in
one query (restricted to the environment the callback URL named, when it named one; on
Citus one query per environment, webhooks/message_environments.py), and
records the batch's events with `logs.services.events_record`, idempotent on the provider's
event id, in one transaction with the UPDATE that finishes the batch's rows. Running a row
twice, or on two workers at once, records nothing twice.

A callback can beat our own Sent write: its message id is not known yet. The row stays
pending and is retried with backoff (by the sweeper) for WEBHOOK_RETRY_WINDOW, then marked
orphaned; `inbox_adopt` (run on commit of every Sent that names a message id: webhooks.apps)
and `orphans_adopt` (beat) bring it back once the id exists.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from logs.erasure import ErasedBatch, raw_delete
from logs.models import Delivery, Notification
from logs.recording import EventSpec
from logs.services import events_record
from logs.statements import prepared_instances, prepared_rows
from webhooks.events import CallbackEvent, UnparseableCallback
from webhooks.inbox import inbox_process_enqueue
from webhooks.message_environments import message_environments
from webhooks.models import WAITING_FOR_MESSAGE, InboxEntry, InboxState
from webhooks.receivers.email import email_events
from webhooks.receivers.twilio import twilio_sms_events, twilio_voice_events

logger = logging.getLogger("webhooks")

# The longest wait between two tries of a callback whose message is not known yet.
MAX_BACKOFF = timedelta(seconds=60)
# Rows the sweeper hands to workers per run (the next run takes the rest).
SWEEP_BATCH = 1000
# Rows one processing task claims at most: enough to share the claim, the delivery lookup
# and the closing UPDATE when a backlog builds, few enough that the other worker processes
# take the next rows instead of waiting behind one long batch.
PROCESS_BATCH = 100


def inbox_events(entry: InboxEntry) -> list[CallbackEvent]:
    """Parse a stored callback with its provider's module. Raises UnparseableCallback."""
    body = bytes(entry.body)
    if entry.provider == "twilio_sms":
        return twilio_sms_events(body, received_at=entry.received_at)
    if entry.provider == "twilio_voice":
        return twilio_voice_events(body, received_at=entry.received_at)
    return email_events(
        entry.provider,
        body=body,
        path=entry.path,
        headers=entry.headers,
        received_at=entry.received_at,
    )


@dataclass(frozen=True)
class _Target:
    notification_id: object
    notification_created_at: datetime
    environment_id: int
    source: str


class _Rejected(Exception):
    pass


_DELIVERIES_BY_MESSAGE_ID = (
    "SELECT provider_message_id, channel, notification_id, notification_created_at, "
    "environment_id, provider FROM logs_delivery "
    # The partial index's own predicate, so that a plan made once (prepared) may use it.
    "WHERE provider_message_id = ANY(%s::varchar[]) AND NOT provider_message_id = ''"
)


# On Citus: the same, naming one environment, so it runs on that environment's shard.
_DELIVERIES_OF_ENVIRONMENT_BY_MESSAGE_ID = f"{_DELIVERIES_BY_MESSAGE_ID} AND environment_id = %s"


def _deliveries_find(parsed: list[tuple[InboxEntry, list[CallbackEvent]]]) -> dict:
    """Every delivery the batch's events name: {(message id, channel): rows}. One query on
    plain PostgreSQL; on Citus one per environment (_message_ids_by_environment)."""
    found: dict[tuple[str, str], list[tuple]] = {}
    if settings.DATABASE_CITUS:
        lookups = [
            (_DELIVERIES_OF_ENVIRONMENT_BY_MESSAGE_ID, [sorted(ids), environment_id])
            for environment_id, ids in sorted(_message_ids_by_environment(parsed).items())
        ]
    else:
        message_ids = {e.provider_message_id for _, events in parsed for e in events if e.kind}
        lookups = [(_DELIVERIES_BY_MESSAGE_ID, [sorted(message_ids)])] if message_ids else []
    for sql, params in lookups:
        for message_id, channel, *target in prepared_rows(sql, params):
            found.setdefault((message_id, channel), []).append(tuple(target))
    return found


def _message_ids_by_environment(
    parsed: list[tuple[InboxEntry, list[CallbackEvent]]],
) -> dict[int, set[str]]:
    """The environments whose deliveries the batch's message ids may name (Citus): the one a
    callback URL named (?env=), else those webhooks.message_environments knows for the id
    (none yet when the callback came before the Sent: it waits, as on plain PostgreSQL)."""
    wanted: dict[int, set[str]] = {}
    unnamed: set[str] = set()
    for entry, events in parsed:
        ids = {event.provider_message_id for event in events if event.kind}
        if entry.environment_restricted:
            wanted.setdefault(entry.environment_id, set()).update(ids)
        else:
            unnamed |= ids
    for message_id, environment_ids in message_environments(unnamed).items():
        for environment_id in environment_ids:
            wanted.setdefault(environment_id, set()).add(message_id)
    return wanted


def _delivery_target(entry: InboxEntry, event: CallbackEvent, found: dict) -> _Target | None:
    """The delivery a callback event is about, or None when its message is not known yet.
    Raises _Rejected when the id names deliveries of several environments."""
    candidates = found.get((event.provider_message_id, event.channel), [])
    if entry.environment_restricted:
        # The callback URL named the environment whose credentials signed it: another
        # tenant's message with the same id can never be touched.
        candidates = [c for c in candidates if c[2] == entry.environment_id]
    if not candidates:
        return None
    if len(candidates) > 1:
        raise _Rejected(
            f"Message id {event.provider_message_id[:80]} matches deliveries of more than one "
            "notification; add ?env=<client id> to the callback URL to say whose it is."
        )
    notification_id, created_at, environment_id, provider = candidates[0]
    # Sandbox deliveries answer through the real receivers; their timeline says sandbox.
    source = provider if provider == "sandbox" else entry.provider.split("_")[0]
    return _Target(notification_id, created_at, environment_id, source)


def _spec(event: CallbackEvent, target: _Target) -> EventSpec:
    delivery_fields = {}
    if event.kind == "failed" and (event.error_code or event.error_message):
        delivery_fields = {
            "error_code": event.error_code[:50],
            "error_message": event.error_message,
        }
    return EventSpec(
        notification_id=target.notification_id,
        notification_created_at=target.notification_created_at,
        environment_id=target.environment_id,
        kind=event.kind,
        sub_kind=event.sub_kind,
        channel=event.channel,
        occurred_at=event.occurred_at,
        source=target.source,
        provider_event_id=event.provider_event_id,
        detail=event.detail,
        payload=event.payload,
        delivery_fields=delivery_fields,
    )


@dataclass
class _Plan:
    """What one claimed row's callback asks for: its events with the delivery each is about,
    the message ids not known yet, or why it is refused."""

    entry: InboxEntry
    events: list[CallbackEvent] | UnparseableCallback
    targeted: list[tuple[CallbackEvent, _Target]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rejected: str = ""


def _plan(entry: InboxEntry, events, found: dict) -> _Plan:
    plan = _Plan(entry, events)
    if isinstance(events, UnparseableCallback):
        return plan
    for event in events:
        if event.kind is None:
            continue
        try:
            target = _delivery_target(entry, event, found)
        except _Rejected as exc:
            return _Plan(entry, events, rejected=str(exc))
        if target is None:
            plan.missing.append(event.provider_message_id)
        else:
            plan.targeted.append((event, target))
    return plan


@dataclass
class _Outcome:
    recorded: int = 0
    missing: list[str] = field(default_factory=list)
    rejected: str = ""
    environment_id: int | None = None


def _plans_record(plans: list[_Plan]) -> list[_Outcome]:
    """Record every event of the plans in one events_record batch; what became of each."""
    outcomes = [_Outcome(missing=list(plan.missing), rejected=plan.rejected) for plan in plans]
    owners, specs = [], []
    for outcome, plan in zip(outcomes, plans, strict=True):
        for event, target in plan.targeted:
            owners.append((outcome, event, target))
            specs.append(_spec(event, target))
    for (outcome, event, target), recorded in zip(owners, events_record(specs), strict=True):
        if isinstance(recorded, ValueError):
            # The log refused it (e.g. a sub-kind that does not fit the channel).
            outcome.rejected = outcome.rejected or str(recorded)
        elif isinstance(recorded, Notification.DoesNotExist):
            outcome.missing.append(event.provider_message_id)
        else:
            outcome.recorded += recorded.created
            outcome.environment_id = target.environment_id
    return outcomes


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


def _claim_lease() -> timedelta:
    return timedelta(seconds=max(settings.WEBHOOK_SWEEP_INTERVAL * 6, 30))


_INBOX = InboxEntry._meta.db_table
# Claimable: pending and either never tried (it arrived and waits for a worker) or due (a
# retry's backoff is over, staff replayed it, a Sent adopted it, or the lease of a worker that
# died is over). The task's own rows first, those still claimable, so every enqueued row is
# taken by its own task at the latest; then the oldest others. Claiming counts the attempt
# and leases the row (next_attempt_at), so no other worker claims it meanwhile and a worker
# that dies mid-batch leaves it pending, due again once the lease is over. SKIP LOCKED: two
# workers claiming at once take different rows.
_CLAIMABLE = "state = 'pending' AND (attempts = 0 OR next_attempt_at <= %(now)s)"
_CLAIM = f"""
WITH own AS (
    SELECT id, received_at FROM {_INBOX}
    WHERE id = ANY(%(own)s::bigint[]) AND {_CLAIMABLE}
    FOR UPDATE SKIP LOCKED
), others AS (
    SELECT id, received_at FROM {_INBOX}
    WHERE {_CLAIMABLE} AND NOT id = ANY(%(own)s::bigint[])
    ORDER BY next_attempt_at
    LIMIT %(others)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {_INBOX} AS inbox
SET attempts = inbox.attempts + 1, next_attempt_at = %(lease)s
FROM (SELECT * FROM own UNION ALL SELECT * FROM others) AS picked
WHERE inbox.id = picked.id AND inbox.received_at = picked.received_at
RETURNING inbox.id, inbox.received_at, inbox.provider, inbox.path, inbox.headers, inbox.body,
    inbox.environment_id, inbox.environment_restricted, inbox.attempts
"""  # noqa: S608 (the table name is ours; every value is a parameter)
_CLAIMED = ["id", "received_at", "provider", "path", "headers", "body", "environment_id",
            "environment_restricted", "attempts"]  # fmt: skip


def _rows_claim(own: list[int], others: int, now: datetime) -> list[InboxEntry]:
    """Claim the claimable rows of `own` and up to `others` more, oldest first."""
    params = {"own": own, "others": others, "now": now, "lease": now + _claim_lease()}
    entries = prepared_instances(InboxEntry, _CLAIM, params, _CLAIMED)
    return sorted(entries, key=lambda entry: (entry.received_at, entry.id))


# Finishing a batch: one UPDATE for all its rows, each only while it is still pending (False
# for a row another worker finished first, e.g. after its lease ran out). NULL keeps a column.
# One array per column, so the text is the same whatever the batch's size: prepared, it is
# planned once per connection. A row's message ids travel as a JSON array (arrays of arrays
# must all be the same length).
_FINISH = f"""
UPDATE {_INBOX} AS inbox SET
    state = done.state,
    next_attempt_at = done.next_attempt_at,
    processed_at = COALESCE(done.processed_at, inbox.processed_at),
    message_ids = CASE WHEN done.message_ids IS NULL THEN inbox.message_ids
        ELSE ARRAY(SELECT jsonb_array_elements_text(done.message_ids))::varchar[] END,
    environment_id = COALESCE(inbox.environment_id, done.environment_id),
    events_recorded = inbox.events_recorded + done.recorded,
    error = done.error
FROM unnest(%s::bigint[], %s::timestamptz[], %s::varchar[], %s::timestamptz[],
    %s::timestamptz[], %s::jsonb[], %s::bigint[], %s::integer[], %s::text[])
    AS done(id, received_at, state, next_attempt_at, processed_at, message_ids,
        environment_id, recorded, error)
WHERE inbox.id = done.id AND inbox.received_at = done.received_at AND inbox.state = 'pending'
"""  # noqa: S608 (the table name is ours; every value is a parameter)


@dataclass
class _Finish:
    entry: InboxEntry
    state: str
    error: str = ""
    next_attempt_at: datetime | None = None
    processed_at: datetime | None = None
    message_ids: list[str] | None = None
    environment_id: int | None = None
    recorded: int = 0


def _rows_finish(finished: list[_Finish]) -> None:
    if not finished:
        return
    columns = [
        [row.entry.id for row in finished],
        [row.entry.received_at for row in finished],
        [row.state for row in finished],
        [row.next_attempt_at for row in finished],
        [row.processed_at for row in finished],
        [None if row.message_ids is None else Jsonb(row.message_ids) for row in finished],
        [row.environment_id for row in finished],
        [row.recorded for row in finished],
        [row.error for row in finished],
    ]
    prepared_rows(_FINISH, columns)


def _finish(plan: _Plan, outcome: _Outcome, now: datetime) -> _Finish:
    """What becomes of one claimed row, its events recorded."""
    entry, events = plan.entry, plan.events
    if isinstance(events, UnparseableCallback):
        logger.info("Inbox row %s (%s) is unparseable.", entry.id, entry.provider)
        return _Finish(entry, InboxState.UNPARSEABLE, processed_at=now, error=str(events))
    message_ids = list(dict.fromkeys(e.provider_message_id[:255] for e in events))
    if outcome.rejected:
        return _Finish(entry, InboxState.REJECTED, processed_at=now, message_ids=message_ids,
                       recorded=outcome.recorded, error=outcome.rejected)  # fmt: skip
    common = {
        "recorded": outcome.recorded,
        "message_ids": message_ids,
        "environment_id": outcome.environment_id,
    }
    missing = list(dict.fromkeys(outcome.missing))
    if not missing:
        return _Finish(entry, InboxState.PROCESSED, processed_at=now, **common)
    error = f"No delivery has message id {', '.join(m[:80] for m in missing[:3])}."
    if now - entry.received_at >= timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW):
        return _Finish(entry, InboxState.ORPHANED, error=error, **common)
    # `attempts` already counts this one (the claim did).
    retry_at = now + _backoff(entry.attempts)
    return _Finish(entry, InboxState.PENDING, next_attempt_at=retry_at, error=error, **common)


def _plans_process(plans: list[_Plan], now: datetime) -> list[_Finish]:
    """Record the plans' events and finish their rows, in one transaction: a row says
    processed exactly when its events are in the log."""
    with transaction.atomic():
        outcomes = _plans_record(plans)
        finished = [
            _finish(plan, outcome, now) for plan, outcome in zip(plans, outcomes, strict=True)
        ]
        _rows_finish(finished)
    return finished


def _plans_process_one_by_one(plans: list[_Plan], now: datetime) -> list[_Finish]:
    """Each plan in a transaction of its own; one that fails again stays pending and leased,
    and is claimed again once its lease is over (a retry, not a loss)."""
    finished = []
    for plan in plans:
        try:
            finished += _plans_process([plan], now)
        except DatabaseError as exc:
            logger.warning(
                "Inbox row %s could not be recorded (%s); it is taken again after its lease.",
                plan.entry.id,
                type(exc).__name__,
            )
    return finished


def _parsed(entry: InboxEntry) -> list[CallbackEvent] | UnparseableCallback:
    try:
        return inbox_events(entry)
    except UnparseableCallback as exc:
        return exc


def inbox_process(
    *,
    inbox_ids: Sequence[int] = (),
    limit: int = PROCESS_BATCH,
) -> dict[str, int]:
    """Claim claimable inbox rows (those of `inbox_ids` that no other task took, then the
    oldest others, up to `limit` in all; at least one other) and process them; returns how
    many ended in each state ({} when other tasks' batches took them all). A batch that took
    as many others as it could enqueues a task for the next.

    The batch shares its statements: one claim, one delivery lookup by message id, the
    reads of events_record (one lock, one read of events, one of deliveries), and one
    closing UPDATE, in the same transaction as the events (idempotent on the provider's
    event id), so a row says processed exactly when its events are in the log. A worker
    dying before the commit leaves its rows pending and leased; once the lease is over they
    are claimed again."""
    now = timezone.now()
    own = list(dict.fromkeys(inbox_ids))
    others = max(limit - len(own), 1)
    entries = _rows_claim(own, others, now)
    if not entries:
        return {}
    if len([entry for entry in entries if entry.id not in own]) >= others:
        # Perhaps more are waiting (a backlog, which the sweeper found or whose tasks are
        # still queued): a task for the next batch, for whichever process is free.
        transaction.on_commit(lambda: inbox_process_enqueue(inbox_id=None))
    parsed = [(entry, _parsed(entry)) for entry in entries]
    found = _deliveries_find([(e, ev) for e, ev in parsed if isinstance(ev, list)])
    plans = [_plan(entry, events, found) for entry, events in parsed]
    try:
        finished = _plans_process(plans, now)
    except DatabaseError as exc:
        # One row's write failed (a lock wait past lock_timeout, say) and took the batch's
        # transaction with it: each row in a transaction of its own, so the others go on.
        logger.warning(
            "A batch of %d callbacks could not be recorded together (%s); one by one.",
            len(plans),
            type(exc).__name__,
        )
        finished = _plans_process_one_by_one(plans, now)
    states: dict[str, int] = {}
    for row in finished:
        states[row.state] = states.get(row.state, 0) + 1
    return states


def _rows_reopen(rows: Iterable[InboxEntry], now: datetime) -> list[int]:
    """Set rows back to pending, due now, and have them processed once this commits."""
    reopened = []
    for row in rows:
        InboxEntry.objects.filter(id=row.id, received_at=row.received_at).update(
            state=InboxState.PENDING, next_attempt_at=now
        )
        reopened.append(row.id)
    _enqueue_on_commit(reopened)
    return reopened


def _enqueue_on_commit(inbox_ids: list[int]) -> None:
    # A task claims up to PROCESS_BATCH rows: one task per batch's worth of rows.
    for inbox_id in inbox_ids[::PROCESS_BATCH]:
        transaction.on_commit(_enqueuer(inbox_id))


def _enqueuer(inbox_id: int) -> Callable[[], None]:
    return lambda: inbox_process_enqueue(inbox_id=inbox_id)


def inbox_adopt(*, provider_message_id: str) -> None:
    """Process again the callbacks that waited for `provider_message_id` (orphaned, or still
    retrying). Run on commit of every Sent recorded with that id (webhooks.apps);
    safe to call for any id, any number of times."""
    inbox_adopt_many([provider_message_id])


def inbox_adopt_many(provider_message_ids: list[str]) -> None:
    """inbox_adopt for several message ids (a dispatch batch's Sents): one transaction."""
    wanted = sorted({message_id[:255] for message_id in provider_message_ids if message_id})
    if not wanted:
        return
    now = timezone.now()
    # WAITING_FOR_MESSAGE is the adopt index's predicate: a probe of that index (@> for one
    # id, && for several: the GIN index answers both).
    lookup = (
        {"message_ids__contains": wanted} if len(wanted) == 1 else {"message_ids__overlap": wanted}
    )
    with transaction.atomic():
        waiting = InboxEntry.objects.select_for_update(skip_locked=True).filter(
            WAITING_FOR_MESSAGE, **lookup
        )
        _rows_reopen(list(waiting.only("id", "received_at")), now)


def orphans_adopt(*, within: timedelta = timedelta(days=1), limit: int = SWEEP_BATCH) -> int:
    """Reopen orphaned callbacks of the last `within` whose message id now has a delivery
    (a Sent that arrived without calling inbox_adopt). Returns how many were reopened."""
    now = timezone.now()
    with transaction.atomic():
        orphans = list(
            InboxEntry.objects.select_for_update(skip_locked=True)
            .filter(state=InboxState.ORPHANED, received_at__gte=now - within)
            .only("id", "received_at", "message_ids")[:limit]
        )
        wanted = {message_id for row in orphans for message_id in row.message_ids}
        if settings.DATABASE_CITUS:
            # A Sent wrote the id's environment: no read of every shard.
            known = set(message_environments(wanted))
        else:
            known = set(
                Delivery.objects.filter(provider_message_id__in=wanted).values_list(
                    "provider_message_id", flat=True
                )
            )
        adoptable = [row for row in orphans if known.intersection(row.message_ids)]
        return len(_rows_reopen(adoptable, now))


def inbox_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Have the pending rows that are due processed: never enqueued (the broker was down
    when they arrived), waiting for a retry, or leased by a worker that died. Enqueues one
    processing task per PROCESS_BATCH of them (a task claims what is due, so a task the
    next sweep adds while this one waits finds nothing and costs one query). Returns how
    many rows were due (at most `limit`)."""
    now = timezone.now()
    due = list(
        InboxEntry.objects.filter(state=InboxState.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )
    _enqueue_on_commit(due)
    return len(due)


def inbox_replay(*, inbox_ids: Iterable[int]) -> int:
    """Staff's replay: process orphaned, unparseable or rejected callbacks once more (after
    a fix, or once the message exists). Returns how many were reopened."""
    now = timezone.now()
    with transaction.atomic():
        rows = InboxEntry.objects.select_for_update().filter(
            id__in=list(inbox_ids),
            state__in=[InboxState.ORPHANED, InboxState.UNPARSEABLE, InboxState.REJECTED],
        )
        return len(_rows_reopen(list(rows.only("id", "received_at")), now))


def inbox_entries_erase(batch: ErasedBatch) -> int:
    """A user's erasure (logs.erasure): the provider callbacks that name the deliveries of a
    batch of their notifications (a callback holds the address it went to; it names its
    delivery by the provider's message id)."""
    if not batch.message_ids:
        return 0
    return raw_delete(
        InboxEntry.objects.filter(
            Q(environment_id=batch.environment_id) | Q(environment_id=None),
            message_ids__overlap=batch.message_ids,
        )
    )
