"""The contract every receiver keeps (anymail's tests/webhook_cases.py, for our inbox): a valid
callback becomes its event; a forged one is refused and nothing is stored; the same callback
twice gives one event; every order of one message's callbacks gives the same final state; an
unknown message id is orphaned after the retry window, then adopted by a later Sent."""

import itertools
import logging
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from logs.models import Delivery, Event
from tests.factories import EnvironmentFactory
from tests.webhooks.providers import PROVIDERS, sent_delivery
from webhooks.models import InboxEntry, InboxState
from webhooks.services import inbox_sweep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings", "celery_eager")]
by_name = pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)


def post(client, provider, message_id, step, capture, **kwargs):
    """Post one callback; its on-commit processing runs (eagerly) as a worker would."""
    with capture(execute=True):
        response = provider.post(client, message_id, step, **kwargs)
    return response


def provider_events(notification):
    return list(
        Event.objects.filter(notification_id=notification.id)
        .exclude(source="pipeline")
        .exclude(kind="received")
        .values_list("kind", "sub_kind")
    )


@by_name
def test_valid_callback_records_its_event(client, provider, django_capture_on_commit_callbacks):
    environment = EnvironmentFactory()
    message_id = provider.new_message_id()
    notification = sent_delivery(
        environment=environment,
        channel=provider.channel,
        message_id=message_id,
        provider=provider.provider,
    )

    response = post(client, provider, message_id, provider.single_step,
                    django_capture_on_commit_callbacks)  # fmt: skip

    assert response.status_code == 200, response.content
    assert provider_events(notification) == [provider.single_event]
    entry = InboxEntry.objects.get()
    assert entry.state == InboxState.PROCESSED
    assert entry.provider == provider.name
    assert entry.environment_id == environment.id
    assert "Authorization" not in entry.headers
    delivery = Delivery.objects.get(notification_id=notification.id)
    assert (delivery.state, delivery.state_detail) == provider.single_event


@by_name
def test_forged_callback_is_refused_and_nothing_stored(
    client, provider, caplog, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=environment, channel=provider.channel,
                                 message_id=message_id, provider=provider.provider)  # fmt: skip
    forged = provider.forge(provider.request(message_id, provider.single_step, at=timezone.now()))

    with caplog.at_level(logging.WARNING, logger="webhooks"):
        response = client.post(**forged)

    assert response.status_code == provider.forged_status
    assert not InboxEntry.objects.exists()
    assert provider_events(notification) == []
    refused = [r for r in caplog.records if r.name == "webhooks"]
    assert len(refused) == 1 and "Refused" in refused[0].getMessage()
    # The warning never carries the body.
    assert message_id.strip("<>") not in caplog.text


@by_name
def test_missing_authentication_is_refused(client, provider):
    request = provider.request(provider.new_message_id(), provider.single_step, timezone.now())
    request["headers"] = {}

    response = client.post(**request)

    # Amazon SNS is first challenged for basic auth (401), as anymail answers it.
    expected = 401 if provider.name == "amazon_ses" else provider.forged_status
    assert response.status_code == expected
    assert not InboxEntry.objects.exists()


@by_name
def test_the_same_callback_twice_records_one_event(
    client, provider, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()
    message_id = provider.new_message_id()
    notification = sent_delivery(environment=environment, channel=provider.channel,
                                 message_id=message_id, provider=provider.provider)  # fmt: skip

    for _ in range(2):
        response = post(client, provider, message_id, provider.single_step,
                        django_capture_on_commit_callbacks)  # fmt: skip
        assert response.status_code == 200

    assert provider_events(notification) == [provider.single_event]
    assert list(InboxEntry.objects.values_list("state", "events_recorded")) == [
        ("processed", 0),
        ("processed", 1),
    ]


@by_name
def test_every_order_of_a_messages_callbacks_gives_the_same_final_state(
    client, provider, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()
    finals = set()
    for order in itertools.permutations(provider.steps):
        message_id = provider.new_message_id()
        notification = sent_delivery(environment=environment, channel=provider.channel,
                                     message_id=message_id, provider=provider.provider)  # fmt: skip
        for step in order:
            response = post(client, provider, message_id, step,
                            django_capture_on_commit_callbacks)  # fmt: skip
            assert response.status_code == 200
        delivery = Delivery.objects.get(notification_id=notification.id)
        finals.add((order, delivery.state, delivery.state_detail))

    assert {(state, detail) for _, state, detail in finals} == {provider.final}, finals


@by_name
def test_unknown_message_is_orphaned_after_the_retry_window_then_adopted(
    client, provider, django_capture_on_commit_callbacks
):
    environment = EnvironmentFactory()
    message_id = provider.new_message_id()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        response = post(client, provider, message_id, provider.single_step,
                        django_capture_on_commit_callbacks)  # fmt: skip
        assert response.status_code == 200
        entry = InboxEntry.objects.get()
        assert (entry.state, entry.attempts) == (InboxState.PENDING, 1)
        assert entry.message_ids == [message_id]

        # Retried with backoff by the sweeper while the window lasts...
        clock.shift(timedelta(seconds=5))
        with django_capture_on_commit_callbacks(execute=True):
            assert inbox_sweep() == 1
        assert InboxEntry.objects.get().state == InboxState.PENDING
        # ... and orphaned, not dropped, once it is over.
        clock.shift(timedelta(seconds=900))
        with django_capture_on_commit_callbacks(execute=True):
            inbox_sweep()
        entry = InboxEntry.objects.get()
        assert entry.state == InboxState.ORPHANED
        assert message_id[:40] in entry.error

    # The Sent write itself adopts the orphan (logs.signals.event_recorded), once it commits.
    with django_capture_on_commit_callbacks(execute=True):
        notification = sent_delivery(environment=environment, channel=provider.channel,
                                     message_id=message_id, provider=provider.provider)  # fmt: skip

    assert InboxEntry.objects.get().state == InboxState.PROCESSED
    assert provider_events(notification) == [provider.single_event]
