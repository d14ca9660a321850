"""The sandbox provider's callbacks are real HTTP requests, in the providers' formats and
signed the real way, through our receivers (a live server) and the inbox."""

import pytest
from django.test import override_settings

from logs.models import Delivery, Event
from tests.factories import EnvironmentFactory
from tests.webhooks.providers import WEBHOOK_SETTINGS, sent_delivery
from webhooks.models import InboxEntry, InboxState
from webhooks.sandbox import sandbox_callbacks_enqueue

CASES = [
    ("email", "bounce@example.com", ("failed", "bounce"), [("failed", "bounce")]),
    ("email", "delay@example.com", ("delivered", ""),
     [("failed", "delivery_delay"), ("delivered", "")]),
    ("email", "complaint@example.com", ("delivered", ""),
     [("delivered", ""), ("engagement", "complained")]),
    ("email", "reject@example.com", ("sent", ""), []),
    ("email", "alice@example.com", ("delivered", ""), [("delivered", "")]),
    ("sms", "+14155550001", ("failed", "undelivered"), [("sent", ""), ("failed", "undelivered")]),
    ("sms", "+14155550002", ("failed", "infrastructure"), [("failed", "infrastructure")]),
    ("sms", "+14155550100", ("delivered", ""), [("sent", ""), ("delivered", "")]),
    ("call", "+14155550003", ("delivered", "busy"), [("sent", ""), ("delivered", "busy")]),
    ("call", "+14155550004", ("delivered", "no_answer"),
     [("sent", ""), ("delivered", "no_answer")]),
    ("call", "+14155550005", ("failed", "cannot_reach"), [("failed", "cannot_reach")]),
    ("call", "+14155550100", ("delivered", "completed"),
     [("sent", ""), ("sent", ""), ("delivered", "completed")]),
]  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_eager")
@pytest.mark.parametrize(("channel", "destination", "final", "events"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])  # fmt: skip
def test_magic_recipients_get_their_documented_outcome(
    live_server, channel, destination, final, events
):
    environment = EnvironmentFactory()
    message_id = f"sandbox-{channel}-{destination}"
    notification = sent_delivery(environment=environment, channel=channel,
                                 message_id=message_id, provider="sandbox")  # fmt: skip
    settings = WEBHOOK_SETTINGS | {"PUBLIC_BASE_URL": live_server.url, "SANDBOX_CALLBACK_DELAY": 0}

    with override_settings(**settings):
        # Outside a transaction the on-commit schedule runs at once; eager Celery runs the
        # task, which posts to the live server, whose on-commit processing runs too.
        sandbox_callbacks_enqueue(
            environment_id=environment.id,
            channel=channel,
            provider_message_id=message_id,
            destination=destination,
        )

    delivery = Delivery.objects.get(notification_id=notification.id)
    assert (delivery.state, delivery.state_detail) == final
    recorded = Event.objects.filter(notification_id=notification.id, source="sandbox")
    assert sorted(recorded.values_list("kind", "sub_kind")) == sorted(events)
    assert set(InboxEntry.objects.values_list("state", flat=True)) <= {InboxState.PROCESSED}
    # One callback per event, each a request of its own.
    assert InboxEntry.objects.count() == len(events)
