"""Provider mapping: pure functions from a stored body to events (docs/architecture.md's tables)."""

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from webhooks.events import UnparseableCallback
from webhooks.receivers.twilio import twilio_sms_events, twilio_voice_events

AT = datetime(2026, 11, 27, tzinfo=UTC)


def sms(status, **extra):
    body = urlencode({"MessageSid": "SM1", "MessageStatus": status, **extra}).encode()
    (event,) = twilio_sms_events(body, received_at=AT)
    return event.kind, event.sub_kind


def call(status, **extra):
    body = urlencode({"CallSid": "CA1", "CallStatus": status, **extra}).encode()
    (event,) = twilio_voice_events(body, received_at=AT)
    return event.kind, event.sub_kind


@pytest.mark.parametrize(
    ("status", "extra", "expected"),
    [
        ("queued", {}, (None, "")),
        ("sent", {}, ("sent", "")),
        ("delivered", {}, ("delivered", "")),
        ("undelivered", {"ErrorCode": "30003"}, ("failed", "undelivered")),
        ("failed", {"ErrorCode": "30008"}, ("failed", "infrastructure")),
        ("failed", {"ErrorCode": "21610"}, ("failed", "")),  # unsubscribed recipient
        ("canceled", {}, ("failed", "")),
    ],
)
def test_sms_statuses(status, extra, expected):
    assert sms(status, **extra) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("initiated", (None, "")),
        ("ringing", ("sent", "")),
        ("in-progress", ("sent", "")),
        ("completed", ("delivered", "completed")),
        ("busy", ("delivered", "busy")),
        ("no-answer", ("delivered", "no_answer")),
        ("failed", ("failed", "cannot_reach")),
        ("canceled", ("failed", "")),
    ],
)
def test_call_statuses(status, expected):
    assert call(status) == expected


def test_sms_event_id_is_sid_and_status_and_voice_adds_the_sequence_number():
    body = urlencode({"SmsSid": "SM9", "SmsStatus": "sent"}).encode()
    assert twilio_sms_events(body, received_at=AT)[0].provider_event_id == "SM9:sent"
    body = urlencode({"CallSid": "CA9", "CallStatus": "ringing", "SequenceNumber": "1"}).encode()
    assert twilio_voice_events(body, received_at=AT)[0].provider_event_id == "CA9:ringing:1"


def test_voice_time_is_twilios_timestamp():
    body = urlencode(
        {"CallSid": "CA1", "CallStatus": "busy", "Timestamp": "Fri, 27 Nov 2026 04:10:00 +0000"}
    ).encode()
    assert twilio_voice_events(body, received_at=AT)[0].occurred_at == datetime(
        2026, 11, 27, 4, 10, tzinfo=UTC
    )


@pytest.mark.parametrize("body", [b"", b"MessageSid=SM1", b"\xff\xfe", b"MessageStatus=sent"])
def test_unreadable_sms_bodies_are_unparseable(body):
    with pytest.raises(UnparseableCallback):
        twilio_sms_events(body, received_at=AT)
