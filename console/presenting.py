"""How the console shows things: times in the viewer's zone with seconds and the zone's name
(UTC on hover), badges for states, the email preview's sandbox document. No database."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from logs.vocabulary import Channel, DeliveryState, EventSubKind, NotificationStatus

# The browser's zone (console.js stores Intl's answer in this cookie); UTC until it has.
TZ_COOKIE = "console_tz"


def viewer_zone(request) -> ZoneInfo:
    name = unquote(request.COOKIES.get(TZ_COOKIE, ""))  # the script URL-encodes the "/"
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # a tampered or unknown cookie: the safe, labelled default


@dataclass(frozen=True)
class Stamp:
    local: str  # "2026-11-27 06:04:13 CET"
    utc: str  # "2026-11-27 05:04:13 UTC", on hover
    iso: str


def stamp(moment: datetime | None, zone: ZoneInfo) -> Stamp | None:
    if moment is None:
        return None
    local = moment.astimezone(zone)
    return Stamp(
        local=f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()}",
        utc=f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
        iso=moment.astimezone(UTC).isoformat(timespec="microseconds"),
    )


# Symbols every system font has (no emoji font, no icon font download).
def time_html(moment: Stamp | None) -> str:
    """The same as templates/console/_time.html, for lists rendered in Python."""
    if moment is None:
        return "—"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.iso, moment.utc, moment.local
    )


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
