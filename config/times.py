"""Times in the viewer's zone, as every console page shows them: with seconds and the zone's
name, UTC on hover ("2026-11-27 06:04:13 CET"). Plumbing every admin page uses (the support
pages, the other apps' admins, config's display helpers, the mailbox, the background banner).
No database."""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.html import format_html

# The browser's zone (zone.js and console.js store Intl's answer in this cookie); UTC until it
# has.
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


def time_html(moment: Stamp | None) -> str:
    """The same as templates/console/_time.html, for lists rendered in Python."""
    if moment is None:
        return "—"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', moment.iso, moment.utc, moment.local
    )
