"""Whether a rule's condition holds, from its window's counts: pure functions, one per kind
of rule, and a short function choosing among them."""

from dataclasses import dataclass

from alerts.selectors import WindowCounts
from alerts.vocabulary import RuleKind
from logs.vocabulary import event_label


@dataclass(frozen=True)
class Reading:
    holds: bool
    value: float  # a percentage for failure rates, else a count
    summary: str  # one line for people: what was seen


def _where(rule) -> str:
    parts = [f"type {rule.notification_type}" if rule.notification_type else "",
             f"channel {rule.channel}" if rule.channel else ""]  # fmt: skip
    scope = " on ".join(part for part in parts if part)
    return f" ({scope})" if scope else ""


def failure_rate(rule, counts: WindowCounts) -> Reading:
    outcomes = counts.failed + counts.delivered
    rate = 100.0 * counts.failed / outcomes if outcomes else 0.0
    holds = outcomes >= rule.min_notifications and rate > float(rule.threshold_percent)
    summary = (
        f"Failure rate{_where(rule)} {rate:.1f}% over the last {rule.window_minutes} min "
        f"({counts.failed} failed of {outcomes}; threshold {rule.threshold_percent}%, "
        f"at least {rule.min_notifications})"
    )
    return Reading(holds, rate, summary)


def event_count(rule, counts: WindowCounts) -> Reading:
    label = event_label(rule.event_kind, rule.event_sub_kind)
    summary = (
        f"{counts.matching} {label}{_where(rule)} in the last {rule.window_minutes} min "
        f"(more than {rule.max_events} fires)"
    )
    return Reading(counts.matching > rule.max_events, float(counts.matching), summary)


def delivery_silence(rule, counts: WindowCounts) -> Reading:
    holds = counts.delivered == 0 and counts.sent >= rule.min_notifications
    summary = (
        f"{counts.delivered} Delivered{_where(rule)} in the last {rule.window_minutes} min "
        f"while {counts.sent} were Sent"
    )
    return Reading(holds, float(counts.sent if holds else counts.delivered), summary)


_BY_KIND = {
    RuleKind.FAILURE_RATE: failure_rate,
    RuleKind.EVENT_COUNT: event_count,
    RuleKind.DELIVERY_SILENCE: delivery_silence,
}


def rule_reading(rule, counts: WindowCounts) -> Reading:
    return _BY_KIND[rule.kind](rule, counts)
