"""The API reference (/api/schema/ and its page /api/docs/): every operation summarised, the
send body documented field by field with examples, the intro covering sending as well as
reading, and descriptions rendered as CommonMark, not shown raw."""

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

SEND_FIELDS = {"notificationId", "user", "mergeTags", "forceChannels", "schedule", "options"}
INLINE_CONTENT = {"email", "sms", "call", "inapp", "web_push", "mobile_push"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def resolve(schema, spec: dict) -> dict:
    if len(spec.get("allOf", ())) == 1:
        spec = spec["allOf"][0]
    if "$ref" in spec:
        return schema["components"]["schemas"][spec["$ref"].rsplit("/", 1)[-1]]
    return spec


def json_body(schema, operation) -> tuple[dict, dict]:
    media = operation["requestBody"]["content"]["application/json"]
    return resolve(schema, media["schema"]), media.get("examples", {})


def test_every_operation_has_a_summary(schema):
    missing = [label for label, operation in operations(schema) if not operation.get("summary")]
    assert not missing, f"no summary: {missing}"


@pytest.mark.parametrize("path", ["/{client_id}/sender", "/api/v1/notifications"])
def test_the_send_body_is_documented_field_by_field_with_examples(schema, path):
    body, examples = json_body(schema, schema["paths"][path]["post"])

    fields = body["properties"]
    assert set(fields) >= SEND_FIELDS | INLINE_CONTENT
    assert {"notificationId", "user"} <= set(body["required"])
    for name in SEND_FIELDS | INLINE_CONTENT:
        assert fields[name].get("description"), f"{name} has no description"
    user = resolve(schema, fields["user"])
    assert {"id", "email", "number", "timezone"} <= set(user["properties"])
    assert user["required"] == ["id"]
    email_options = resolve(schema, resolve(schema, fields["options"])["properties"]["email"])
    assert {"replyToAddresses", "ccAddresses", "bccAddresses", "fromAddress"} <= set(
        email_options["properties"]
    )
    assert {"subject", "html"} <= set(resolve(schema, fields["email"])["properties"])
    assert resolve(schema, fields["forceChannels"]["items"])["enum"] == [
        "EMAIL", "SMS", "CALL", "INAPP_WEB", "PUSH", "WEB_PUSH",
    ]  # fmt: skip
    assert fields["schedule"]["format"] == "date-time"
    # Between them, the examples show every documented field of the send.
    shown = set().union(*(example["value"] for example in examples.values()))
    assert shown >= SEND_FIELDS
    assert {"type", "to", "parameters", "email", "sms"} <= shown


def test_every_send_api_body_is_described_not_a_free_form_object(schema):
    for label, operation in operations(schema):
        if "requestBody" not in operation:
            continue
        body, _ = json_body(schema, operation)
        body = resolve(schema, body.get("items", body))
        assert body.get("properties"), f"{label}: its body has no documented fields"
        assert set(operation["requestBody"]["content"]) == {"application/json"}, label


def test_the_intro_covers_sending_as_well_as_reading(schema):
    intro = schema["info"]["description"]

    assert "POST /{clientId}/sender" in intro and "POST /api/v1/notifications" in intro
    assert "GET /api/v1/logs/{trackingId}" in intro
    assert "`send` scope" in intro and "`read` scope" in intro


def test_the_docs_page_renders_markdown_and_lists_body_fields():
    response = APIClient().get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()

    intro = html[html.index("<h1>") : html.index("Machine-readable")]
    assert "<h2>Send</h2>" in intro and "<h2>Read</h2>" in intro
    assert "<code>POST /{clientId}/sender</code>" in intro
    assert "<strong>Received</strong>" in intro
    # No Markdown left raw anywhere in the page's prose (code examples are in <pre>; "``" is
    # drf-spectacular's name for a blank choice in its lists of enum values, not markup).
    prose = re.sub(r"<pre>.*?</pre>", "", html, flags=re.DOTALL).replace("<li>`` - ", "<li>")
    assert "`" not in prose and "**" not in prose
    sender = html[html.index('id="sender"') : html.index('id="sender_retract"')]
    for field in ("user.email", "options.email.ccAddresses", "email.subject", "sms.message"):
        assert f"<code>{field}</code>" in sender, field
    assert "Example: Scheduled, email only, with options" in sender


def test_markdown_in_descriptions_cannot_inject_markup():
    from logs.api.docs import _markdown

    html = _markdown('`code` <img src=x onerror="alert(1)"> [x](javascript:alert(1))')

    assert "<code>code</code>" in html
    assert "<img" not in html and 'href="javascript' not in html
