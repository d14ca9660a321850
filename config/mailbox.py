"""The development mailbox: email that `make run` sends is kept here, not sent anywhere.

In development (the default EMAIL_BACKEND outside production and tests) every message sent
through Django's email API, notification emails through the `email` provider and alert
notices alike, is written as one .eml file in MAILBOX_DIR (.var/mailbox/). Superusers read
them in the console at /admin/mailbox/ (every tenant's mail is there, so not support staff).
"""

import email
import email.policy
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404
from django.template.response import TemplateResponse

from config.times import stamp, viewer_zone

LISTED = 200  # newest messages listed; older ones stay on disk


def mailbox_dir() -> Path:
    return Path(settings.MAILBOX_DIR)


class EmailBackend(BaseEmailBackend):
    """Writes each message to MAILBOX_DIR as <time>-<id>.eml (written, then renamed into place,
    so the console never reads half a message)."""

    def send_messages(self, email_messages) -> int:
        directory = mailbox_dir()
        directory.mkdir(parents=True, exist_ok=True)
        written = 0
        for message in email_messages:
            if not message.recipients():
                continue
            name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
            partial = directory / f".{name}.part"
            partial.write_bytes(message.message().as_bytes())
            os.replace(partial, directory / name)
            written += 1
        return written


@dataclass(frozen=True)
class MailboxMessage:
    key: str
    received_at: datetime
    subject: str
    sender: str
    to: str
    text: str = ""
    html: str = ""


def _parse(path: Path, *, body: bool) -> MailboxMessage:
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = html = ""
    if body:
        part = parsed.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        part = parsed.get_body(preferencelist=("html",))
        html = part.get_content() if part is not None else ""
    return MailboxMessage(
        key=path.stem,
        received_at=datetime.fromtimestamp(int(path.stem.split("-")[0]) / 1e9, UTC),
        subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")),
        to=", ".join(filter(None, [str(parsed.get("To", "")), str(parsed.get("Cc", ""))])),
        text=text,
        html=html,
    )


def mailbox_messages() -> list[MailboxMessage]:
    directory = mailbox_dir()
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("*.eml"), reverse=True)[:LISTED]
    return [_parse(path, body=False) for path in paths]


def _superuser(request) -> None:
    if not settings.MAILBOX_ENABLED:
        raise Http404("The mailbox is for development: EMAIL_BACKEND sends email elsewhere.")
    if not request.user.is_superuser:
        raise PermissionDenied("The mailbox holds every tenant's email: superusers only.")


def mailbox_view(request, key: str | None = None):
    _superuser(request)
    zone = viewer_zone(request)
    context = admin.site.each_context(request) | {"title": "Mailbox", "directory": mailbox_dir()}
    if key is None:
        messages = mailbox_messages()
        context["rows"] = [(m, stamp(m.received_at, zone)) for m in messages]
        return TemplateResponse(request, "admin/mailbox.html", context)
    path = mailbox_dir() / f"{key}.eml"
    if "/" in key or key.startswith(".") or not path.is_file():
        raise Http404("No such message in the mailbox.")
    message = _parse(path, body=True)
    context |= {"message": message, "received": stamp(message.received_at, zone)}
    context["title"] = message.subject or "(no subject)"
    return TemplateResponse(request, "admin/mailbox_message.html", context)
