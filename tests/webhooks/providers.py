"""Provider callbacks of the documented shapes (the providers' own documentation and
django-anymail's parsers), signed the real way, for the contract suite."""

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

from logs.services import event_record, notification_create

PUBLIC_BASE_URL = "https://hooks.example.test"
TWILIO_TOKEN = "twilio-test-auth-token"
WEBHOOK_SECRET = "hook:s3cret"
MAILGUN_KEY = "mailgun-signing-key"
_SENDGRID_PRIVATE = ec.generate_private_key(ec.SECP256R1())
_SENDGRID_PUBLIC = b"".join(
    _SENDGRID_PRIVATE.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .splitlines()[1:-1]
).decode()

WEBHOOK_SETTINGS = {
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "WEBHOOK_RETRY_WINDOW": 900,
    "ANYMAIL": {
        "WEBHOOK_SECRET": [WEBHOOK_SECRET],
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": _SENDGRID_PUBLIC,
    },
}
T0 = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def basic_auth(secret: str = WEBHOOK_SECRET) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def sent_delivery(*, environment, channel: str, message_id: str, provider: str = "twilio"):
    """A notification whose `channel` delivery was Sent with `message_id` (as the sending
    pipeline records it)."""
    notification = notification_create(
        environment_id=environment.id,
        notification_type="order_tracking",
        user_id=f"usr_{uuid.uuid4().hex[:8]}",
        email="alice@example.com",
        number="+14155550100",
    )
    for kind in ("sending", "sent"):
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            kind=kind,
            channel=channel,
            source="pipeline",
            delivery_fields={"provider": provider, "provider_message_id": message_id}
            if kind == "sent"
            else None,
        )
    return notification


class Provider:
    """One receiver's contract: how to post a step of a message's life, and how to forge."""

    name = ""
    channel = ""
    path = ""
    forged_status = 403
    # One message's callbacks (any order gives `final`), and the one used for single checks.
    steps: list[str] = []
    final: tuple[str, str] = ("", "")
    single_step = "delivered"
    single_event: tuple[str, str] = ("delivered", "")
    provider = "twilio"  # what the sending pipeline stores as Delivery.provider

    def __init__(self, base_url: str = PUBLIC_BASE_URL):
        # The address the provider was given (Twilio signs over it).
        self.base_url = base_url

    def new_message_id(self) -> str:
        raise NotImplementedError

    def request(self, message_id: str, step: str, at: datetime, query: str = "") -> dict:
        raise NotImplementedError

    def forge(self, request: dict) -> dict:
        raise NotImplementedError

    def post(self, client, message_id, step, at=T0, query=""):
        return client.post(**self.request(message_id, step, at, query))


class TwilioProvider(Provider):
    forged_status = 403

    def __init__(self, base_url: str = PUBLIC_BASE_URL, token: str = TWILIO_TOKEN):
        super().__init__(base_url)
        # The auth token the callbacks are signed with (an environment's own, or the install's).
        self.token = token

    def _signed(self, fields: dict, query: str) -> dict:
        path = self.path + (f"?{query}" if query else "")
        signature = RequestValidator(self.token).compute_signature(self.base_url + path, fields)
        return {
            "path": path,
            "data": urlencode(fields),
            "content_type": "application/x-www-form-urlencoded",
            "headers": {"X-Twilio-Signature": signature},
        }

    def forge(self, request: dict) -> dict:
        signature = RequestValidator("not-the-token").compute_signature(
            self.base_url + request["path"], {}
        )
        return request | {"headers": {"X-Twilio-Signature": signature}}


class TwilioSms(TwilioProvider):
    name = "twilio_sms"
    channel = "sms"
    path = "/webhooks/twilio/sms/"
    steps = ["sent", "undelivered"]
    final = ("failed", "undelivered")

    def new_message_id(self) -> str:
        return "SM" + secrets.token_hex(16)

    def request(self, message_id, step, at, query=""):
        fields = {
            "MessageSid": message_id,
            "SmsSid": message_id,
            "MessageStatus": step,
            "SmsStatus": step,
            "AccountSid": "AC" + "1" * 32,
            "From": "+15005550006",
            "To": "+14155550100",
            "ApiVersion": "2010-04-01",
        }
        if step in ("undelivered", "failed"):
            fields["ErrorCode"] = "30003" if step == "undelivered" else "30008"
        return self._signed(fields, query)


class TwilioVoice(TwilioProvider):
    name = "twilio_voice"
    channel = "call"
    path = "/webhooks/twilio/voice/"
    steps = ["ringing", "in-progress", "busy"]
    final = ("delivered", "busy")
    single_step = "completed"
    single_event = ("delivered", "completed")
    _sequence = {"initiated": 0, "ringing": 1, "in-progress": 2}

    def new_message_id(self) -> str:
        return "CA" + secrets.token_hex(16)

    def request(self, message_id, step, at, query=""):
        sequence = self._sequence.get(step, 3)
        fields = {
            "CallSid": message_id,
            "CallStatus": step,
            "AccountSid": "AC" + "1" * 32,
            "From": "+15005550006",
            "To": "+14155550100",
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(at + timedelta(seconds=sequence), usegmt=True),
            "CallDuration": "0",
        }
        return self._signed(fields, query)


class EmailProvider(Provider):
    channel = "email"
    forged_status = 400
    single_step = "delivered"
    esp = ""

    @property
    def name(self):
        return self.esp

    @property
    def path(self):
        return f"/webhooks/email/{self.esp}/tracking/"

    @property
    def provider(self):
        return self.esp

    def new_message_id(self) -> str:
        return f"{uuid.uuid4()}"

    def _json(self, payload, query, headers=None) -> dict:
        return {
            "path": self.path + (f"?{query}" if query else ""),
            "data": json.dumps(payload),
            "content_type": "application/json",
            "headers": {"Authorization": basic_auth()} | (headers or {}),
        }

    def forge(self, request: dict) -> dict:
        return request | {
            "headers": request["headers"] | {"Authorization": basic_auth("hook:wrong")}
        }


class Postmark(EmailProvider):
    esp = "postmark"
    steps = ["deferred", "delivered", "opened"]
    final = ("delivered", "")

    def request(self, message_id, step, at, query=""):
        stamp = lambda offset: (at + timedelta(seconds=offset)).isoformat()  # noqa: E731
        base = {"MessageID": message_id, "ServerID": 23, "MessageStream": "outbound",
                "Tag": "welcome", "Metadata": {}}  # fmt: skip
        payload = {
            "delivered": base | {"RecordType": "Delivery", "Recipient": "alice@example.com",
                                 "DeliveredAt": stamp(1), "Details": "250 OK"},
            "deferred": base | {"RecordType": "Bounce", "ID": 4323372036854775807,
                                "Type": "Transient", "TypeCode": 2, "Name": "Message delayed",
                                "Description": "Delayed", "Details": "421 try later",
                                "Email": "alice@example.com", "BouncedAt": stamp(0),
                                "Inactive": False},
            "bounced": base | {"RecordType": "Bounce", "ID": 4323372036854775808,
                               "Type": "HardBounce", "TypeCode": 1, "Name": "Hard bounce",
                               "Description": "Unknown user", "Details": "550 no such user",
                               "Email": "alice@example.com", "BouncedAt": stamp(2),
                               "Inactive": True},
            "opened": base | {"RecordType": "Open", "Recipient": "alice@example.com",
                              "ReceivedAt": stamp(3), "FirstOpen": True,
                              "UserAgent": "Mozilla/5.0"},
        }[step]  # fmt: skip
        return self._json(payload, query)


class AmazonSes(EmailProvider):
    esp = "amazon_ses"
    steps = ["sent", "delivered", "bounced"]
    final = ("failed", "bounce")

    def request(self, message_id, step, at, query=""):
        offset = {"sent": 0, "delivered": 1, "bounced": 2, "deferred": 0}[step]
        stamp = (at + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        mail = {"timestamp": stamp, "source": "sender@example.com", "messageId": message_id,
                "destination": ["alice@example.com"], "headers": []}  # fmt: skip
        ses_event = {
            "sent": {"eventType": "Send", "mail": mail, "send": {}},
            "delivered": {"eventType": "Delivery", "mail": mail,
                          "delivery": {"timestamp": stamp, "recipients": ["alice@example.com"],
                                       "smtpResponse": "250 2.6.0 Message received"}},
            "bounced": {"eventType": "Bounce", "mail": mail,
                        "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                                   "bouncedRecipients": [{"emailAddress": "alice@example.com",
                                                          "diagnosticCode": "smtp; 550 5.1.1"}],
                                   "timestamp": stamp}},
            "deferred": {"eventType": "DeliveryDelay", "mail": mail,
                         "deliveryDelay": {"timestamp": stamp, "delayType": "MailboxFull",
                                           "delayedRecipients": []}},
        }[step]  # fmt: skip
        sns_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{message_id}/{step}"))
        sns = {
            "Type": "Notification",
            "MessageId": sns_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
            "Message": json.dumps(ses_event),
            "Timestamp": stamp,
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/unsubscribe",
        }
        return self._json(
            sns,
            query,
            {"X-Amz-Sns-Message-Type": "Notification", "X-Amz-Sns-Message-Id": sns_id},
        )


class Mailgun(EmailProvider):
    esp = "mailgun"
    steps = ["deferred", "delivered", "opened"]
    final = ("delivered", "")

    def new_message_id(self) -> str:
        # anymail wraps Mailgun's message ids in <>, as Mailgun's send API returns them.
        return f"<{uuid.uuid4().hex}@sandbox.mailgun.org>"

    def request(self, message_id, step, at, query=""):
        offset = {"deferred": 0, "delivered": 1, "opened": 2, "bounced": 3}[step]
        event = {"deferred": "failed", "bounced": "failed"}.get(step, step)
        event_data = {
            "event": event,
            "id": secrets.token_urlsafe(16),
            "timestamp": (at + timedelta(seconds=offset)).timestamp(),
            "recipient": "alice@example.com",
            "message": {"headers": {"message-id": message_id.strip("<>"),
                                    "to": "alice@example.com"}},
        }  # fmt: skip
        if event == "failed":
            event_data["severity"] = "temporary" if step == "deferred" else "permanent"
            event_data["reason"] = "generic"
            event_data["delivery-status"] = {"code": 452, "message": "try later",
                                             "description": ""}  # fmt: skip
        token = hashlib.sha256(f"{message_id}/{step}".encode()).hexdigest()[:50]
        timestamp = str(int(at.timestamp()))
        signature = hmac.new(
            MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
        ).hexdigest()
        payload = {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data,
        }
        return self._json(payload, query)


class SendGrid(EmailProvider):
    esp = "sendgrid"
    steps = ["deferred", "delivered", "opened"]
    final = ("delivered", "")

    def request(self, message_id, step, at, query=""):
        offset = {"deferred": 0, "delivered": 1, "opened": 2, "bounced": 3}[step]
        event = {"opened": "open", "bounced": "bounce"}.get(step, step)
        events = [
            {
                "email": "alice@example.com",
                "timestamp": int(at.timestamp()) + offset,
                "smtp-id": f"<{message_id}@example.com>",
                "anymail_id": message_id,
                "event": event,
                "sg_event_id": hashlib.sha256(f"{message_id}/{step}".encode()).hexdigest()[:22],
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
                "response": "250 OK" if event == "delivered" else "451 try later",
            }
        ]
        body = json.dumps(events)
        timestamp = str(int(at.timestamp()))
        signature = base64.b64encode(
            _SENDGRID_PRIVATE.sign(timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
        ).decode()
        request = self._json(
            events,
            query,
            {
                "X-Twilio-Email-Event-Webhook-Signature": signature,
                "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            },
        )
        request["data"] = body
        return request

    def forge(self, request: dict) -> dict:
        # Right basic auth, but a body that is not the one signed.
        return request | {"data": request["data"].replace("alice", "mallory")}


PROVIDERS = [TwilioSms(), TwilioVoice(), Postmark(), AmazonSes(), Mailgun(), SendGrid()]
