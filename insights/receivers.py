"""Receivers that keep the insights tables up to date; each calls one service."""

from insights.services import callback_refusal_record, rollup_event_count


def rollup_count_event(sender, *, notification, delivery, event, **kwargs) -> None:
    # Inside the event's transaction: the delta commits or rolls back with the event.
    rollup_event_count(notification=notification, event=event)


def callback_refusal_count(sender, *, provider: str, status: int, **kwargs) -> None:
    callback_refusal_record(provider=provider, status=status)
