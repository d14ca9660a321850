"""Issue 16, item 3: template bombs. A tenant with a `send` credential writes the templates the
install renders (inline content in any send; the catalogue in the console). Every render is
fenced: loops, output, assigned variables, filters over huge ranges and wall-clock time. A
render over a limit fails its channel with the limit named; it never takes the worker down or
comes back through the sweeper. Bad inline templates are refused at the door; merge tags are
escaped in the HTML; a send that lacks merge tags its catalogue templates use is told so."""

import email
import email.policy
import json
import time

import pytest

from config.celery import app as celery_app
from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import Outbox, SandboxMessage
from tests.helpers import smtp_server
from tests.notifications import conftest as send_fixtures
from tests.notifications.helpers import refreshed, send, sent, timeline

pytestmark = pytest.mark.django_db

# The send tests' fixtures: an environment, its client-secret credential, a catalogue type.
environment = send_fixtures.environment
auth = send_fixtures.auth
order_tracking = send_fixtures.order_tracking

BODY = {
    "notificationId": "order_tracking",
    "user": {"id": "usr_1", "email": "alice@example.com", "number": "+14155550100"},
    "mergeTags": {"first_name": "Alice", "order_id": "A-1"},
    "forceChannels": ["EMAIL"],
}


@pytest.fixture(autouse=True)
def in_process_dispatch(settings):
    """Dispatch runs in this process on commit (the worker's own code path), on the sandbox."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the sandbox's callbacks go nowhere
    yield
    celery_app.conf.task_always_eager = previous


def post(client, environment, auth, body):
    return client.post(
        f"/{environment.client_id}/sender",
        data=json.dumps(body),
        content_type="application/json",
        headers=auth,
    )


def email_outcome(notification) -> tuple[list[str], str]:
    events = [(label, detail) for label, ch, detail in timeline(notification) if ch == "email"]
    return [label for label, _ in events], events[-1][1] if events else ""


BOMBS = {
    # The issue's own: 10^16 iterations writing "x"; before, the worker ran out of memory.
    "nested loops": (
        "{% for a in (1..99999999) %}{% for b in (1..99999999) %}x{% endfor %}{% endfor %}",
        "TEMPLATE_LOOP_ITERATION_LIMIT",
    ),
    # One filter call over a range builds a 100-million item list: no loop, no output.
    "filter over a huge range": (
        "{{ (1..99999999) | join: ',' }}",
        "TEMPLATE_LOOP_ITERATION_LIMIT",
    ),
    # A string that doubles on each of 40 assignments (10 bytes to 10 TB).
    "doubling string": (
        "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}"
        "{% endfor %}{{ s | size }}",
        "TEMPLATE_OUTPUT_LIMIT_BYTES",
    ),
    # Within the loop limit, but 4 MB of output.
    "big output": (
        "{% for a in (1..2000) %}{% for b in (1..2) %}" + "x" * 1000 + "{% endfor %}{% endfor %}",
        "TEMPLATE_OUTPUT_LIMIT_BYTES",
    ),
    # One match per character, each replaced by the whole string: quadratic.
    "replace everything": (
        "{% assign s = '" + "x" * 1000 + "' %}{{ s | replace: 'x', s | replace: 'x', s }}",
        "TEMPLATE_OUTPUT_LIMIT_BYTES",
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_template_bomb_fails_its_channel_naming_the_limit_and_sends_nothing(
    name, client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    template, setting = BOMBS[name]
    body = {**BODY, "email": {"subject": "Hi", "html": template}}
    started = time.monotonic()
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    labels, detail = email_outcome(notification)
    assert labels == ["Failed"], timeline(notification)
    assert "went over a limit" in detail and setting in detail, detail
    assert "Nothing was sent on this channel" in detail
    assert refreshed(notification).status == "failure"
    assert not SandboxMessage.objects.exists()
    assert not Outbox.objects.exists()  # finished: the sweeper has nothing to hand back
    # Cut by a limit, not run out (unfenced, these ran for minutes or ran out of memory); the
    # bound is loose so a loaded machine does not fail it.
    assert time.monotonic() - started < 60


def test_a_slow_template_is_cut_at_the_deadline(
    client, environment, auth, order_tracking, settings, django_capture_on_commit_callbacks
):
    settings.TEMPLATE_RENDER_TIMEOUT_SECONDS = 0.3
    # Within every size limit: 10,000 iterations of 500 empty tags, no output at all.
    slow = "{% for i in (1..10000) %}" + "{% if true %}{% endif %}" * 500 + "{% endfor %}"
    body = {**BODY, "email": {"subject": "Hi", "html": slow}}
    started = time.monotonic()
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    labels, detail = email_outcome(notification)
    assert labels == ["Failed"]
    assert "took longer than 0.3 s (TEMPLATE_RENDER_TIMEOUT_SECONDS)" in detail
    assert time.monotonic() - started < 60  # unfenced: minutes; loose for a loaded machine
    assert not SandboxMessage.objects.exists()


def test_a_catalogue_template_bomb_fails_the_same_way(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    # An account admin's catalogue is tenant input too.
    order_tracking.templates.filter(channel=Channel.EMAIL).update(
        html="{% for a in (1..99999999) %}{% for b in (1..99999999) %}x{% endfor %}{% endfor %}"
    )
    notification = send(client, environment, auth, BODY, django_capture_on_commit_callbacks)
    labels, detail = email_outcome(notification)
    assert labels == ["Failed"] and "TEMPLATE_LOOP_ITERATION_LIMIT" in detail


@pytest.mark.parametrize(
    ("inline", "field", "says"),
    [
        ({"email": {"html": "{% for x in items %}x"}}, "email.html", "is not a valid Liquid"),
        ({"email": {"subject": "{{ order_id "}}, "email.subject", "is not a valid Liquid"),
        ({"sms": {"message": "{% endif %}"}}, "sms.message", "is not a valid Liquid"),
        ({"email": {"html": "x" * 1001}}, "email.html", "TEMPLATE_INLINE_MAX_CHARS"),
    ],
)
def test_a_bad_inline_template_is_refused_at_intake_naming_the_field(
    inline, field, says, client, environment, auth, order_tracking, settings
):
    settings.TEMPLATE_INLINE_MAX_CHARS = 1000
    response = post(client, environment, auth, {**BODY, **inline})
    assert response.status_code == 400, response.content
    message = response.json()["message"]
    assert message.startswith(f"{field} ") and says in message, message
    assert not Notification.objects.exists()


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) the email provider delivers to."""
    with smtp_server(settings, email_provider=True) as inbox:
        yield inbox


def test_merge_tags_are_escaped_in_the_html_and_not_in_the_subject_or_text(
    client, environment, auth, order_tracking, smtp, django_capture_on_commit_callbacks
):
    # The tags come from the integrator's own users: a name is not markup.
    name = '<img src=x onerror="alert(1)"> & Bo'
    body = {**BODY, "mergeTags": {"first_name": name, "order_id": "A-1"}}
    notification = send(client, environment, auth, body, django_capture_on_commit_callbacks)
    [envelope] = smtp.messages
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    html = received.get_body(("html",)).get_content()
    assert "<img" not in html
    assert "Hi &lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Bo, order A-1" in html
    assert received.get_body(("plain",)).get_content().strip() == (
        f"Hi {name}, order A-1 is on its way."
    )
    assert received["Subject"] == "Order A-1 shipped"
    assert sent(notification, Channel.EMAIL).html.strip() == html.strip()


def test_a_send_lacking_merge_tags_its_templates_use_answers_202_naming_them(
    client, environment, auth, order_tracking
):
    body = {**BODY, "mergeTags": {"order_id": "A-1"}, "forceChannels": ["EMAIL", "SMS"]}
    response = post(client, environment, auth, body)
    assert response.status_code == 202, response.content
    [warning] = response.json()["messages"]
    # The email template reads first_name; the SMS one only order_id.
    assert "first_name" in warning and "EMAIL" in warning and "SMS" not in warning
    assert response.json()["trackingId"]
    # A send with every tag is a plain 200.
    complete = post(client, environment, auth, {**BODY, "forceChannels": ["EMAIL", "SMS"]})
    assert complete.status_code == 200 and "messages" not in complete.json()


def test_inline_templates_do_not_fill_the_workers_template_cache(
    client, environment, auth, order_tracking, django_capture_on_commit_callbacks
):
    from notifications import rendering

    send(client, environment, auth, BODY, django_capture_on_commit_callbacks)  # warm: catalogue
    cached = rendering._parse_cached.cache_info().currsize
    for index in range(20):
        body = {**BODY, "email": {"subject": f"One-off {index}", "html": f"<p>{index}</p>"}}
        send(client, environment, auth, body, django_capture_on_commit_callbacks)
    assert rendering._parse_cached.cache_info().currsize == cached


def test_a_catalogue_template_with_bad_syntax_is_refused_in_the_console(admin_client, environment):
    def add(html: str):
        return admin_client.post(
            "/admin/notifications/notificationtype/add/",
            {
                "environment": environment.pk,
                "key": "digest",
                "name": "Digest",
                "templates-TOTAL_FORMS": "1",
                "templates-INITIAL_FORMS": "0",
                "templates-0-channel": "email",
                "templates-0-enabled": "on",
                "templates-0-subject": "Your digest",
                "templates-0-html": html,
                "templates-0-text": "",
                "templates-0-updated_at_0": "2026-01-01",
                "templates-0-updated_at_1": "00:00:00",
            },
        )

    refused = add("{% for item in items %}<li>{{ item }}</li>")
    assert refused.status_code == 200
    assert "This is not a valid Liquid template" in refused.content.decode()
    assert not environment.notification_types.filter(key="digest").exists()
    assert add("{% for item in items %}<li>{{ item }}</li>{% endfor %}").status_code == 302
    assert environment.notification_types.filter(key="digest").exists()
