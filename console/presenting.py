"""How the console shows things: badges for states, the email preview's sandbox document,
pretty JSON. No database. Times in the viewer's zone are config/times.py's (every admin page
shows them)."""

import json
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html_join
from django.utils.safestring import mark_safe

from logs.vocabulary import Channel, DeliveryState, EventSubKind, NotificationStatus

# Symbols every system font has (no emoji font, no icon font download).
CHANNEL_ICONS = {
    Channel.EMAIL: "✉",
    Channel.SMS: "✆",
    Channel.CALL: "☎",
    Channel.IN_APP: "◈",
    Channel.PUSH: "⚑",
    Channel.WEB_PUSH: "⊕",
}
# One tone per meaning, the same on every page: grey waits, blue moves, green arrived, red
# failed, amber was skipped on purpose.
STATE_TONES = {
    DeliveryState.RECEIVED: "wait",
    DeliveryState.SENDING: "move",
    DeliveryState.SENT: "move",
    DeliveryState.DELIVERED: "good",
    DeliveryState.FAILED: "bad",
    DeliveryState.IGNORED: "skip",
}
STATUS_TONES = {
    NotificationStatus.RECEIVED: "wait",
    NotificationStatus.SUCCESS: "good",
    NotificationStatus.FAILURE: "bad",
}
KIND_TONES = {
    "received": "wait",
    "sending": "move",
    "sent": "move",
    "delivered": "good",
    "failed": "bad",
    "ignored": "skip",
    "engagement": "info",
}


@dataclass(frozen=True)
class ChannelBadge:
    channel: str
    channel_label: str
    icon: str
    state: str
    state_label: str
    tone: str


def channel_badge(delivery) -> ChannelBadge:
    state_label = DeliveryState(delivery.state).label
    if delivery.state_detail:
        state_label = EventSubKind(delivery.state_detail).label
    return ChannelBadge(
        channel=delivery.channel,
        channel_label=Channel(delivery.channel).label,
        icon=CHANNEL_ICONS.get(delivery.channel, "•"),
        state=delivery.state,
        state_label=state_label,
        tone=STATE_TONES.get(delivery.state, "wait"),
    )


def badges_html(badges: list[ChannelBadge]) -> str:
    """One chip per channel (templates/console/_badges.html, for lists rendered in Python)."""
    if not badges:
        return mark_safe('<span class="muted">no channel yet</span>')
    return format_html_join(
        " ",
        '<span class="chip tone-{}" title="{}: {}"><span aria-hidden="true">{}</span> '
        "{} · {}</span>",
        (
            (b.tone, b.channel_label, b.state_label, b.icon, b.channel_label, b.state_label)
            for b in badges
        ),
    )


def status_tone(status: str) -> str:
    return STATUS_TONES.get(status, "wait")


# The preview runs in <iframe sandbox=""> (no scripts, no forms, no navigation of the page);
# this policy also stops the email fetching anything (tracking pixels, fonts) until support
# asks for images.
_CSP_BLOCKED = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSP_IMAGES = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:"


def email_srcdoc(body: str, *, images: bool) -> str:
    policy = _CSP_IMAGES if images else _CSP_BLOCKED
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    return f"<!doctype html>{meta}{body}"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
