"""The WSGI application gunicorn serves (config.wsgi): provider callbacks skip the console's
middleware (webhooks/handler.py), every other page keeps it."""

import io
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from config.wsgi import application
from tests.factories import UserFactory
from tests.webhooks.providers import TwilioSms
from webhooks.models import InboxEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_settings")]
sms = TwilioSms()


@pytest.fixture(autouse=True)
def _connections_kept():
    # As Django's test client does: the handler's request signals would close the test's
    # connection (it is inside the test's transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _call(method: str, path: str, *, body: bytes = b"", headers: dict | None = None):
    """The WSGI application called as gunicorn calls it: (status code, headers, body)."""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "testserver",
    }  # fmt: skip
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    started = []
    chunks = application(
        environ, lambda status, response_headers: started.append((status, response_headers))
    )
    content = b"".join(chunks)
    chunks.close()
    status, response_headers = started[0]
    return int(status.split()[0]), dict(response_headers), content


def _signed_callback(message_id: str) -> tuple[bytes, dict]:
    request = sms.request(message_id, "delivered", None)
    headers = {"Content-Type": request["content_type"], **request["headers"]}
    return request["data"].encode(), headers


def _console_cookie(client) -> str:
    client.force_login(UserFactory(username="support"))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_a_callback_is_stored_with_one_statement_even_with_a_console_session_cookie(client):
    cookie = _console_cookie(client)
    body, headers = _signed_callback(sms.new_message_id())

    with CaptureQueriesContext(connection) as queries:
        status, response_headers, _ = _call(
            "POST", sms.path, body=body, headers={**headers, "Cookie": cookie}
        )

    assert status == 200
    assert InboxEntry.objects.count() == 1
    # The inbox INSERT only: no session read, no user read, no session touched (the console's
    # middleware ran 3 statements more before the receiver started).
    assert [query["sql"].split()[:3] for query in queries.captured_queries] == [
        ["INSERT", "INTO", '"webhooks_inbox"']
    ]
    assert "Set-Cookie" not in response_headers


def test_a_callback_with_a_bad_signature_is_still_refused(client):
    body, headers = _signed_callback(sms.new_message_id())
    headers["X-Twilio-Signature"] = "forged"

    status, _, content = _call("POST", sms.path, body=body, headers=headers)

    assert status == 403
    assert b"X-Twilio-Signature" in content
    assert not InboxEntry.objects.exists()


def test_console_pages_keep_the_console_middleware(client):
    # Signed in (session and authentication middleware) and framed by nobody.
    cookie = _console_cookie(client)

    status, response_headers, _ = _call("GET", "/admin/", headers={"Cookie": cookie})
    assert (status, response_headers.get("X-Frame-Options")) == (200, "DENY")

    # Without the session: the login page.
    status, response_headers, _ = _call("GET", "/admin/")
    assert status == 302 and "/login/" in response_headers["Location"]


def test_a_post_to_a_console_page_without_its_csrf_token_is_refused(client):
    cookie = _console_cookie(client)

    status, _, _ = _call(
        "POST", "/admin/logout/", body=urlencode({"next": "/"}).encode(),
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip

    assert status == 403
