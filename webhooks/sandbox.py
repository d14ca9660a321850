"""The sandbox provider's callbacks: real HTTP requests in the real providers' formats,
signed the real way, posted to our own receivers at PUBLIC_BASE_URL, so demos, tests and
benchmarks exercise the production path (inbox, processing, event_record).

Outcomes follow the magic recipients of docs/architecture.md (Sandbox provider): SMS and calls as
Twilio status callbacks (signed with the environment's Twilio token), email as Postmark
tracking webhooks through django-anymail (WEBHOOK_SECRET basic auth).
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.request_validator import RequestValidator

from accounts.models import Environment
from config.afterwards import later
from config.enqueue import task
from logs.vocabulary import Channel
from webhooks.receivers.twilio import twilio_auth_token

logger = logging.getLogger("webhooks")

SANDBOX_ACCOUNT_SID = "AC" + "5a" * 16
SANDBOX_FROM_NUMBER = "+15005550006"  # Twilio's magic "valid from" test number


@dataclass(frozen=True)
class SandboxCallback:
    path: str  # receiver path, e.g. /webhooks/twilio/sms/
    fields: dict  # form fields (Twilio) or the JSON body (email)
    is_json: bool


def _email_outcomes(local_part: str) -> list[tuple[str, str]]:
    """(Postmark RecordType, bounce Type) of each callback, in order."""
    return {
        "bounce": [("Bounce", "HardBounce")],
        "delay": [("Bounce", "Transient"), ("Delivery", "")],
        "complaint": [("Delivery", ""), ("SpamComplaint", "SpamComplaint")],
        # Rejected at send time by the sandbox provider itself: no callback follows.
        "reject": [],
    }.get(local_part, [("Delivery", "")])


def _sms_outcomes(number: str) -> list[tuple[str, str]]:
    """(MessageStatus, ErrorCode) of each callback, in order."""
    if number.endswith("0001"):
        return [("sent", ""), ("undelivered", "30003")]
    if number.endswith("0002"):
        return [("failed", "30008")]
    return [("sent", ""), ("delivered", "")]


def _call_outcomes(number: str) -> list[str]:
    if number.endswith("0003"):
        return ["ringing", "busy"]
    if number.endswith("0004"):
        return ["ringing", "no-answer"]
    if number.endswith("0005"):
        return ["failed"]
    return ["ringing", "in-progress", "completed"]


# Postmark's bounce types as its webhooks name and describe them (TypeCode, Name,
# Description), and the sandbox's own Details (where Postmark puts the receiving server's
# answer): each says something the others do not, as a real bounce's fields do, so the
# timeline line reads once ("bounced: The server was unable ...; Sandbox: bounce@ ...").
_POSTMARK_BOUNCES = {
    "HardBounce": (
        1,
        "Hard bounce",
        "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Sandbox: bounce@ is the magic address that always bounces.",
    ),
    "Transient": (
        2,
        "Message delayed",
        "The server could not temporarily deliver your message (ex: Message is delayed due "
        "to network troubles).",
        "Sandbox: delay@ is the magic address delayed once, then delivered.",
    ),
    "SpamComplaint": (
        512,
        "Spam complaint",
        "The subscriber explicitly marked this email as spam.",
        "Sandbox: complaint@ is the magic address that always complains.",
    ),
}


def _postmark_event(
    record_type: str, bounce_type: str, message_id: str, recipient: str, at: datetime, n: int
) -> dict:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "RecordType": record_type,
        "ServerID": 1,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Tag": "sandbox",
        "Metadata": {},
    }
    if record_type == "Delivery":
        return event | {"Recipient": recipient, "DeliveredAt": stamp, "Details": "Sandbox"}
    type_code, name, description, details = _POSTMARK_BOUNCES[bounce_type]
    return event | {
        # Bounce and complaint records have an id of their own; stable per message and step.
        "ID": int.from_bytes(f"{message_id}:{n}".encode()[-7:], "big"),
        "Type": bounce_type,
        "TypeCode": type_code,
        "Name": name,
        "Description": description,
        "Details": details,
        "Email": recipient,
        "From": "sandbox@example.com",
        "BouncedAt": stamp,
        "Inactive": bounce_type != "Transient",
        "CanActivate": True,
        "Subject": "",
    }


def sandbox_callbacks(
    *, channel: str, provider_message_id: str, destination: str, now: datetime
) -> list[SandboxCallback]:
    """The callbacks a sandbox message gets, in order (pure: no I/O)."""
    if channel == Channel.EMAIL:
        local_part = destination.split("@", 1)[0].lower()
        return [
            SandboxCallback(
                "/webhooks/email/postmark/tracking/",
                _postmark_event(
                    record, kind, provider_message_id, destination, now + timedelta(seconds=n), n
                ),
                is_json=True,
            )
            for n, (record, kind) in enumerate(_email_outcomes(local_part))
        ]
    common = {"AccountSid": SANDBOX_ACCOUNT_SID, "From": SANDBOX_FROM_NUMBER,
              "To": destination, "ApiVersion": "2010-04-01"}  # fmt: skip
    if channel == Channel.SMS:
        callbacks = []
        for status, error_code in _sms_outcomes(destination):
            fields = common | {"MessageSid": provider_message_id, "SmsSid": provider_message_id,
                               "MessageStatus": status, "SmsStatus": status}  # fmt: skip
            if error_code:
                fields["ErrorCode"] = error_code
            callbacks.append(SandboxCallback("/webhooks/twilio/sms/", fields, is_json=False))
        return callbacks
    if channel == Channel.CALL:
        return [
            SandboxCallback(
                "/webhooks/twilio/voice/",
                common
                | {
                    "CallSid": provider_message_id,
                    "CallStatus": status,
                    "Direction": "outbound-api",
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(n),
                    "Timestamp": format_datetime(now + timedelta(seconds=n), usegmt=True),
                    "CallDuration": "0" if status != "completed" else "12",
                },
                is_json=False,
            )
            for n, status in enumerate(_call_outcomes(destination))
        ]
    return []  # in-app and push have no provider callbacks


def _post(client: httpx.Client, callback: SandboxCallback, environment: Environment) -> int:
    url = f"{settings.PUBLIC_BASE_URL}{callback.path}?env={environment.client_id}"
    if callback.is_json:
        user, _, password = settings.ANYMAIL["WEBHOOK_SECRET"][0].partition(":")
        response = client.post(
            url,
            content=json.dumps(callback.fields),
            headers={"Content-Type": "application/json"},
            auth=(user, password),
        )
    else:
        token = twilio_auth_token(environment=environment)
        signature = RequestValidator(token).compute_signature(url, callback.fields)
        response = client.post(url, data=callback.fields,
                               headers={"X-Twilio-Signature": signature})  # fmt: skip
    return response.status_code


def sandbox_callbacks_send(
    *, environment_id: int, channel: str, provider_message_id: str, destination: str
) -> int:
    """Post a sandbox message's callbacks, in order; returns how many were accepted."""
    environment = Environment.objects.get(id=environment_id)
    callbacks = sandbox_callbacks(
        channel=channel,
        provider_message_id=provider_message_id,
        destination=destination,
        now=timezone.now(),
    )
    accepted = 0
    # trust_env=False: straight to our own receivers, whatever http_proxy says.
    with httpx.Client(timeout=10, trust_env=False) as client:
        for callback in callbacks:
            status = _post(client, callback, environment)
            if status == 200:
                accepted += 1
            else:
                logger.warning(
                    "The sandbox's %s callback for %s got HTTP %s.",
                    channel,
                    provider_message_id,
                    status,
                )
    return accepted


def sandbox_callbacks_enqueue(
    *, environment_id: int, channel: str, provider_message_id: str, destination: str
) -> None:
    """Schedule a sandbox message's callbacks SANDBOX_CALLBACK_DELAY seconds from the
    commit of the current transaction (call it once Sent is recorded). A dispatch batch's
    messages are scheduled together, as one task, when the batch ends (config.afterwards)."""
    message = (environment_id, channel, provider_message_id, destination)
    transaction.on_commit(lambda: later(_callbacks_schedule, message))


def _callbacks_schedule(messages: list[tuple[int, str, str, str]]) -> None:
    send_one = task("webhooks.tasks.sandbox_callbacks_send_task")
    send_many = task("webhooks.tasks.sandbox_callbacks_send_many_task")
    try:
        if len(messages) == 1:
            send_one.apply_async(
                messages[0], countdown=settings.SANDBOX_CALLBACK_DELAY, retry=False
            )
        else:
            send_many.apply_async(
                (messages,), countdown=settings.SANDBOX_CALLBACK_DELAY, retry=False
            )
    except Exception as exc:  # the broker's errors are many (kombu, redis, socket)
        # A simulated provider's callbacks: nothing of a user's is lost, so log and go on.
        logger.warning(
            "Could not schedule the sandbox's callbacks for %s (%s).",
            ", ".join(message[2] for message in messages),
            type(exc).__name__,
        )
