"""Evaluating alert rules (Celery beat, every minute): read each environment's window from
the per-minute counters once, decide every rule of it, fire once, stay firing without
repeating, resolve with hysteresis. Notices are rows enqueued on commit; sending them never
holds up an evaluation."""

import logging
from collections import Counter
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from alerts.conditions import Reading, rule_reading
from alerts.models import Alert, AlertNotice, AlertRule
from alerts.notices import alert_notice_enqueue
from alerts.selectors import (
    environment_count_rows,
    environments_with_rules,
    window_counts,
    window_start,
)
from alerts.vocabulary import RESOLVE_AFTER_CLEAR_EVALUATIONS, NoticeChannel, Transition

logger = logging.getLogger(__name__)


def alert_rules_evaluate(*, now: datetime | None = None) -> Counter:
    """One pass over every enabled rule; returns how many ended in each outcome (fired,
    firing, clearing, resolved, ok; skipped: already evaluated this minute)."""
    now = now or timezone.now()
    outcomes: Counter = Counter()
    for environment_id in environments_with_rules():
        outcomes += environment_rules_evaluate(environment_id=environment_id, now=now)
    return outcomes


def environment_rules_evaluate(*, environment_id: int, now: datetime) -> Counter:
    """An environment's rules in one short transaction, under their row locks: a second pass
    running at the same time skips them (SKIP LOCKED), and a pass within a minute already
    evaluated does nothing (so hysteresis counts minutes, not passes). A handful of queries
    whatever the number of rules; writes only for rules whose alert changes."""
    outcomes: Counter = Counter()
    with transaction.atomic():
        rules = list(
            AlertRule.objects.select_for_update(skip_locked=True)
            .filter(environment_id=environment_id, enabled=True)
            .order_by("id")
        )
        due = [rule for rule in rules if not _evaluated_this_minute(rule, now)]
        outcomes["skipped"] = len(rules) - len(due)
        if not due:
            return +outcomes
        starts = {rule.id: window_start(now=now, minutes=rule.window_minutes) for rule in due}
        rows = environment_count_rows(environment_id=environment_id, starts=set(starts.values()))
        open_alerts = {
            alert.rule_id: alert
            for alert in Alert.objects.filter(rule__in=due, resolved_at__isnull=True)
        }
        for rule in due:
            since = starts[rule.id]
            reading = rule_reading(rule, window_counts(rule=rule, rows=rows, since=since))
            outcome = _transition(rule, open_alerts.get(rule.id), reading, now=now, since=since)
            rule.evaluated_at, rule.last_value = now, reading.value
            outcomes[outcome] += 1
        AlertRule.objects.bulk_update(due, ["evaluated_at", "last_value", "clear_streak"])
        still_open = [alert for alert in open_alerts.values() if alert.resolved_at is None]
        Alert.objects.bulk_update(still_open, ["last_value"])
    return +outcomes


def _evaluated_this_minute(rule: AlertRule, now: datetime) -> bool:
    last = rule.evaluated_at
    return last is not None and last.replace(second=0, microsecond=0) >= now.replace(
        second=0, microsecond=0
    )


def _transition(rule, open_alert, reading: Reading, *, now, since) -> str:
    if open_alert is not None:
        open_alert.last_value = reading.value
    if reading.holds:
        rule.clear_streak = 0
        if open_alert is None:
            _fire(rule, reading, now=now, since=since)
            return "fired"
        return "firing"
    if open_alert is None:
        rule.clear_streak = 0
        return "ok"
    rule.clear_streak += 1
    if rule.clear_streak < RESOLVE_AFTER_CLEAR_EVALUATIONS:
        return "clearing"
    _resolve(rule, open_alert, reading, now=now)
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


def _resolve(rule: AlertRule, alert: Alert, reading: Reading, *, now) -> None:
    alert.resolved_at = now
    alert.summary = f"{alert.summary}\nResolved: {reading.summary}"
    alert.save(update_fields=["last_value", "resolved_at", "summary"])
    rule.clear_streak = 0
    logger.info("alert %s resolved for rule %s", alert.id, rule.id)
    _notices_create(alert, rule, Transition.RESOLVED)


def _notices_create(alert: Alert, rule: AlertRule, transition: str) -> None:
    channels = ([NoticeChannel.EMAIL] if rule.recipients() else []) + (
        [NoticeChannel.WEBHOOK] if rule.webhook_url else []
    )
    for channel in channels:
        notice = AlertNotice.objects.create(alert=alert, transition=transition, channel=channel)
        transaction.on_commit(lambda notice_id=notice.id: alert_notice_enqueue(notice_id=notice_id))
