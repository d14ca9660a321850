"""Email through Django's email API: EMAIL_BACKEND picks plain SMTP or a django-anymail ESP.

The provider message id is anymail's `message_id` when the backend is anymail's (the id its
tracking webhooks carry), else the Message-ID header we set, which is all plain SMTP gives.

The Message-ID is stable: derived from the tracking id and the channel, the same on every
attempt. A worker killed after the server took the message but before Sent was recorded sends
it again (dispatch is at least once); the repeat carries the same Message-ID, which receiving
MTAs, mailbox providers and ESPs use to drop duplicates (how far each does is theirs to say).
"""

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from notifications.providers.base import Accepted, OutgoingMessage, Provider, ProviderError

try:  # anymail is installed, but its backends are only used when EMAIL_BACKEND names one.
    from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
except ImportError:  # pragma: no cover
    AnymailAPIError = AnymailError = AnymailRecipientsRefused = ()  # type: ignore[assignment,misc]


def _message_id_domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(" >") or "localhost"


def message_id_for(message: OutgoingMessage) -> str:
    """The Message-ID of a notification's email: one per (tracking id, channel), so every
    attempt to send it carries the same (RFC 5322 section 3.6.4: a unique id per message)."""
    return f"<{message.notification_id}.{message.channel}@{_message_id_domain()}>"


def _smtp_error(exc: smtplib.SMTPException) -> ProviderError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reason = next(iter(exc.recipients.values()), (550, b"refused"))
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return ProviderError(f"Recipient refused: {text}", code=str(code), transient=code < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return ProviderError(
            f"SMTP error: {text}", code=str(exc.smtp_code), transient=exc.smtp_code < 500
        )
    # Disconnected, connection refused, timeouts: the server may be back later.
    return ProviderError(f"SMTP unavailable: {exc}", code="smtp", transient=True)


def _anymail_error(exc: Exception) -> ProviderError:
    if isinstance(exc, AnymailRecipientsRefused):
        return ProviderError(f"Recipient refused: {exc}", code="rejected")
    status = getattr(exc, "status_code", None)
    transient = isinstance(exc, AnymailAPIError) and (
        status is None or status >= 500 or status == 429
    )
    return ProviderError(str(exc).splitlines()[0], code=str(status or "esp"), transient=transient)


class EmailProvider(Provider):
    name = "email"

    def send(self, message: OutgoingMessage) -> Accepted:
        message_id = message_id_for(message)
        content = message.content
        email = EmailMultiAlternatives(
            subject=content.subject,
            body=content.text,
            from_email=message.from_email or settings.DEFAULT_FROM_EMAIL,
            to=[message.destination],
            cc=message.cc,
            bcc=message.bcc,
            reply_to=message.reply_to,
            headers={"Message-ID": message_id},
        )
        if content.html:
            email.attach_alternative(content.html, "text/html")
        try:
            email.send()
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from None
        except AnymailError as exc:
            raise _anymail_error(exc) from None
        except OSError as exc:
            raise ProviderError(
                f"Email server unreachable: {exc}", code="smtp", transient=True
            ) from None
        status = getattr(email, "anymail_status", None)
        if status is not None and status.message_id:
            return Accepted(provider_message_id=str(status.message_id), reports_delivery=True)
        # WORKAROUND: plain SMTP never reports delivery; the Message-ID we set is the only id.
        return Accepted(provider_message_id=message_id.strip("<>"), reports_delivery=False)
