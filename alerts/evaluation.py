"""Evaluating alert rules (Celery beat, every minute): read each rule's window from the
per-minute counters, fire once, stay firing without repeating, resolve with hysteresis.
Notices are rows enqueued on commit; sending them never holds up an evaluation."""

import logging
from collections import Counter
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.conditions import Reading, rule_reading
from alerts.models import Alert, AlertNotice, AlertRule
from alerts.notices import alert_notice_enqueue
from alerts.selectors import rule_ids_enabled, window_counts, window_start
from alerts.vocabulary import RESOLVE_AFTER_CLEAR_EVALUATIONS, NoticeChannel, Transition

logger = logging.getLogger(__name__)


def alert_rules_evaluate(*, now: datetime | None = None) -> Counter:
    """One pass over every enabled rule; returns how many ended in each outcome."""
    now = now or timezone.now()
    outcomes: Counter = Counter()
    for rule_id in rule_ids_enabled():
        outcomes[alert_rule_evaluate(rule_id=rule_id, now=now)] += 1
    return outcomes


def alert_rule_evaluate(*, rule_id: int, now: datetime) -> str:
    """Evaluate one rule in its own short transaction, under its row lock: a second beat
    pass running at the same time skips it, and a pass within the same minute does nothing
    (so hysteresis counts minutes, not passes)."""
    with transaction.atomic():
        rule = (
            AlertRule.objects.select_for_update(skip_locked=True)
            .filter(id=rule_id, enabled=True)
            .first()
        )
        if rule is None or _evaluated_this_minute(rule, now):
            return "skipped"
        since = window_start(now=now, minutes=rule.window_minutes)
        reading = rule_reading(rule, window_counts(rule=rule, since=since))
        open_alert = rule.alerts.filter(resolved_at__isnull=True).first()
        outcome = _transition(rule, open_alert, reading, now=now, since=since)
        rule.evaluated_at, rule.last_value = now, reading.value
        rule.save(update_fields=["evaluated_at", "last_value", "clear_streak"])
        return outcome


def _evaluated_this_minute(rule: AlertRule, now: datetime) -> bool:
    last = rule.evaluated_at
    return last is not None and last.replace(second=0, microsecond=0) >= now.replace(
        second=0, microsecond=0
    )


def _transition(rule, open_alert, reading: Reading, *, now, since) -> str:
    if reading.holds:
        rule.clear_streak = 0
        if open_alert is None:
            _fire(rule, reading, now=now, since=since)
            return "fired"
        open_alert.last_value = reading.value
        open_alert.save(update_fields=["last_value"])
        return "firing"
    if open_alert is None:
        rule.clear_streak = 0
        return "ok"
    rule.clear_streak += 1
    open_alert.last_value = reading.value
    if rule.clear_streak < RESOLVE_AFTER_CLEAR_EVALUATIONS:
        open_alert.save(update_fields=["last_value"])
        return "clearing"
    open_alert.resolved_at = now
    open_alert.summary = f"{open_alert.summary}\nResolved: {reading.summary}"
    open_alert.save(update_fields=["last_value", "resolved_at", "summary"])
    rule.clear_streak = 0
    _notices_create(open_alert, rule, Transition.RESOLVED)
    return "resolved"


def _fire(rule: AlertRule, reading: Reading, *, now, since) -> Alert:
    alert = Alert.objects.create(
        rule=rule,
        environment_id=rule.environment_id,
        fired_at=now,
        fired_value=reading.value,
        last_value=reading.value,
        summary=reading.summary,
        window_start=since,
    )
    logger.info("alert %s fired for rule %s", alert.id, rule.id)
    _notices_create(alert, rule, Transition.FIRED)
    return alert


def _notices_create(alert: Alert, rule: AlertRule, transition: str) -> None:
    channels = ([NoticeChannel.EMAIL] if rule.recipients() else []) + (
        [NoticeChannel.WEBHOOK] if rule.webhook_url else []
    )
    for channel in channels:
        notice = AlertNotice.objects.create(alert=alert, transition=transition, channel=channel)
        transaction.on_commit(lambda notice_id=notice.id: alert_notice_enqueue(notice_id=notice_id))
