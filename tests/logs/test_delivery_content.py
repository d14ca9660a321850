"""A delivery's content is stored compressed with its template as dictionary (logs/content.py),
and the notification page and the API detail still show exactly what the user received: on
every channel, after the template changed, for rows written before (plain columns). Content
retention clears it, tenant deletion removes the dictionaries, erasure leaves them (they hold
no merge-tag value)."""

import email
import email.policy
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.deletion import environment_purge
from logs.content import content_fields, deliveries_content, dictionary_id, template_dictionary
from logs.content_retention import environment_content_clear
from logs.erasure import erasure_request, erasure_run
from logs.models import ContentDictionary, Delivery, Notification
from logs.services import event_record, notification_create
from logs.vocabulary import Channel
from notifications.models import InAppNotification
from tests.accounts.test_deletion import mark_deleting
from tests.console.conftest import console_user
from tests.helpers import smtp_server
from tests.logs.api.conftest import client_for
from tests.notifications import conftest as send_fixtures
from tests.notifications.conftest import SECRET
from tests.notifications.factories import ChannelTemplateFactory
from tests.notifications.helpers import delivery, send

pytestmark = pytest.mark.django_db

# The send tests' fixtures: an environment, its client-secret credential, a catalogue type;
# dispatch in this process on the sandbox, its callbacks going nowhere.
environment = send_fixtures.environment
auth = send_fixtures.auth
order_tracking = send_fixtures.order_tracking
eager_celery = send_fixtures.eager_celery
sandbox_callbacks_nowhere = send_fixtures.sandbox_callbacks_nowhere

# A real email's shape: a long layout around a few merge tags (HTML-only: the text part is
# derived, as most templates are written).
LAYOUT = '<!DOCTYPE html><html><body style="font-family:Helvetica,Arial,sans-serif">' + "".join(
    f'<tr><td style="padding:8px;border-bottom:1px solid #eee">Line {n} of our '
    f"newsletter: shoes, jackets and tents for the season</td></tr>"
    for n in range(40)
)
HTML_TEMPLATE = (
    LAYOUT + "<p>Hi {{ first_name }}, order <b>{{ order_id }}</b> is on its way.</p></body></html>"
)
# Merge-tag values with what HTML escapes, and beyond ASCII.
MERGE_TAGS = {"first_name": 'Zoë <Ada> & "co"', "order_id": "A-1042"}
BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "zoe@example.com", "number": "+14155550100"},
    "mergeTags": MERGE_TAGS,
    "forceChannels": ["EMAIL", "SMS", "CALL", "INAPP_WEB"],
}


@pytest.fixture
def templates(order_tracking):
    """The send tests' type, its email HTML-only and long, with a call script."""
    email_template = order_tracking.templates.get(channel=Channel.EMAIL)
    email_template.html, email_template.text = HTML_TEMPLATE, ""
    email_template.save()
    ChannelTemplateFactory(
        notification_type=order_tracking,
        channel=Channel.CALL,
        subject="",
        html="",
        text="Hello {{ first_name }}. Your order {{ order_id }} shipped. Goodbye.",
    )
    return order_tracking


@pytest.fixture
def smtp(settings):
    with smtp_server(settings, email_provider=True) as inbox:
        yield inbox


def _page_cards(client, environment, notification) -> dict[str, tuple[str, str, str]]:
    """Channel -> (subject, text, html) as the console's notification page shows them."""
    client.force_login(console_user(environment))
    response = client.get(f"/admin/logs/notification/{notification.id}/change/")
    assert response.status_code == 200
    return {
        card.delivery.channel: (card.subject, card.text, card.html)
        for card in response.context["cards"]
    }


def _api_deliveries(environment, notification) -> dict[str, tuple[str, str, str]]:
    """Channel -> (subject, html, text) as GET /api/v1/logs/{trackingId} answers."""
    response = client_for(environment, SECRET).get(f"/api/v1/logs/{notification.id}")
    assert response.status_code == 200, response.content
    return {
        d["channel"]: (d["subject"], d["html"], d["text"]) for d in response.json()["deliveries"]
    }


def test_every_channel_shows_exactly_what_was_sent_and_the_email_is_stored_compressed(
    client, environment, auth, templates, smtp, django_capture_on_commit_callbacks
):
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    [envelope] = smtp.messages
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    # The MIME parts as received, without the line ends SMTP adds (CRLF, a last one).
    html = received.get_body(("html",)).get_content().replace("\r\n", "\n").strip()
    text = received.get_body(("plain",)).get_content().replace("\r\n", "\n").strip()
    assert "Zoë &lt;Ada&gt; &amp; &quot;co&quot;" in html or "Zoë &lt;Ada&gt;" in html
    sms = "Order A-1042 shipped"
    call = 'Hello Zoë <Ada> & "co". Your order A-1042 shipped. Goodbye.'
    [item] = InAppNotification.objects.filter(notification_id=notification.id)

    api = _api_deliveries(environment, notification)
    # What the SMTP server received.
    assert api["email"] == (received["Subject"], html, text)
    assert api["email"][2] == strip_tags(api["email"][1]).strip()
    assert api["sms"] == ("", "", sms)
    assert api["call"] == ("", "", call)
    assert api["in_app"] == ("", "", item.title) and item.title == "Order A-1042 shipped"

    cards = _page_cards(client, environment, notification)
    assert cards["email"] == (received["Subject"], text, html)
    assert cards["sms"] == ("", sms, "")
    assert cards["call"] == ("", call, "")
    assert cards["in_app"] == (item.title, "", "")

    # Stored compressed with the template as dictionary: the merge tags and little more.
    stored = delivery(notification, Channel.EMAIL)
    assert (stored.html, stored.text) == ("", "")
    assert stored.content_dictionary_id is not None
    # (Deflate's longest match is 258 bytes: about 1 byte per 100 of the template.)
    assert len(stored.content_packed) < (len(html) + len(text)) / 50
    [dictionary] = ContentDictionary.objects.filter(pk=stored.content_dictionary_id)
    assert dictionary.content == template_dictionary(
        html=HTML_TEMPLATE, text=strip_tags(HTML_TEMPLATE).strip()
    )


def test_a_template_edited_after_the_send_still_shows_what_was_sent(
    client, environment, auth, templates, django_capture_on_commit_callbacks
):
    body = {**BODY, "forceChannels": ["EMAIL", "SMS"]}
    before = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    shown = _api_deliveries(environment, before)
    for channel in (Channel.EMAIL, Channel.SMS):
        template = templates.templates.get(channel=channel)
        template.html = template.html.replace("on its way", "delayed")
        template.text = template.text.replace("shipped", "delayed")
        template.save()
    after = send(client, environment, auth, body, django_capture_on_commit_callbacks)

    assert _api_deliveries(environment, before) == shown
    assert "is on its way" in shown["email"][1] and shown["sms"][2] == "Order A-1042 shipped"
    page = _page_cards(client, environment, before)
    assert (page["email"][2], page["sms"][1]) == (shown["email"][1], shown["sms"][2])
    now_shown = _api_deliveries(environment, after)
    assert "is delayed" in now_shown["email"][1] and now_shown["sms"][2] == "Order A-1042 delayed"
    # One dictionary per template text: the edit made new ones, the old ones stay.
    assert ContentDictionary.objects.filter(environment=environment).count() == 4


def test_a_row_written_before_the_compression_reads_as_it_was(client, environment):
    """Rows from before the migration keep their content in the html and text columns."""
    created_at = timezone.now() - timedelta(minutes=5)
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id="usr_old",
        email="old@example.com", merge_tags={}, request={}, created_at=created_at,
    )  # fmt: skip
    event_record(
        notification_id=notification.id, notification_created_at=created_at, channel="email",
        kind="sending", source="pipeline", occurred_at=created_at + timedelta(seconds=1),
        delivery_fields={"subject": "Old subject", "html": "<p>Old</p>", "text": "Old"},
    )  # fmt: skip
    assert delivery(notification, Channel.EMAIL).content_packed is None
    assert _api_deliveries(environment, notification) == {
        "email": ("Old subject", "<p>Old</p>", "Old")
    }
    assert _page_cards(client, environment, notification)["email"] == (
        "Old subject", "Old", "<p>Old</p>",
    )  # fmt: skip


def test_content_retention_clears_the_compressed_content(
    client, environment, auth, templates, django_capture_on_commit_callbacks
):
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert delivery(notification, Channel.EMAIL).content_packed is not None
    environment.content_retention_days = 1
    environment.save()
    environment_content_clear(environment=environment, now=timezone.now() + timedelta(days=2))

    rows = Delivery.objects.filter(notification_id=notification.id)
    assert {(d.html, d.text, d.content_packed, d.content_dictionary_id) for d in rows} == {
        ("", "", None, None)
    }
    assert {content.html + content.text for content in deliveries_content(rows)} == {""}
    shown = _api_deliveries(environment, notification)
    assert {html + text for _, html, text in shown.values()} == {""}


def test_erasure_removes_the_content_and_the_dictionaries_hold_no_merge_tag(
    client, environment, auth, templates, django_capture_on_commit_callbacks
):
    send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    job, _ = erasure_request(environment=environment, user_id="usr_1", requested_by="test")
    erasure_run(job_id=job.id)
    assert not Delivery.objects.filter(environment_id=environment.id).exists()
    dictionaries = ContentDictionary.objects.filter(environment=environment)
    assert dictionaries.exists()
    assert not any(b"Zo\xc3\xab" in bytes(d.content) for d in dictionaries)


def test_tenant_deletion_removes_the_dictionaries(
    client, environment, auth, templates, django_capture_on_commit_callbacks
):
    send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    assert ContentDictionary.objects.filter(environment=environment).exists()
    mark_deleting(environment)
    assert environment_purge(environment_id=environment.id)
    assert not ContentDictionary.objects.filter(environment_id=environment.id).exists()
    assert not Notification.objects.filter(environment_id=environment.id).exists()


def test_what_does_not_get_smaller_is_stored_plain(environment):
    fields = content_fields(
        environment_id=environment.id, subject="Hi", html="", text="Code 4",
        dictionary=template_dictionary(text="Code {{ code }}"),
    )  # fmt: skip
    assert fields["text"] == "Code 4" and fields["content_packed"] is None
    assert not ContentDictionary.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_first_sends_of_a_template_write_one_dictionary(environment):
    """Race-safe: concurrent first uses (each its own connection) get the same row."""
    dictionary = template_dictionary(html=HTML_TEMPLATE)
    ids, barrier = [], threading.Barrier(4)

    def first_use():
        barrier.wait()
        try:
            ids.append(dictionary_id(environment.id, dictionary))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert ContentDictionary.objects.filter(environment=environment).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # this connection still works
