import base64
import hashlib

import pytest

from config.celery import app as celery_app
from logs.vocabulary import Channel
from tests.factories import ApiKeyFactory, EnvironmentFactory
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory
from tests.notifications.fakes import twilio_stand_in

SECRET = "s3cret-for-tests-0123456789"
# The install-wide Twilio account the `twilio` fixture configures.
TWILIO_INSTALL_SID = "AC" + "1" * 32
TWILIO_INSTALL_TOKEN = "token"


def basic(*parts: str) -> str:
    return "Basic " + base64.b64encode(":".join(parts).encode()).decode()


def user_hash(secret: str, user_id: str) -> str:
    # The Python SDK's form: base64(SHA-256(secret + userId)).
    digest = hashlib.sha256((secret + user_id).encode()).digest()
    return base64.b64encode(digest).decode()


@pytest.fixture(autouse=True)
def eager_celery():
    """Tasks run in-process unless a test starts a real worker (those use their own app
    settings in the worker process)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def sandbox_callbacks_nowhere(settings):
    """The sandbox posts its callbacks to PUBLIC_BASE_URL: in these tests, to a closed port
    (never to a server someone runs on :8000). tests/webhooks covers the callbacks."""
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"


@pytest.fixture
def environment(db):
    return EnvironmentFactory(client_secret=SECRET)


@pytest.fixture
def auth(environment) -> dict:
    return {"authorization": basic(environment.client_id, SECRET)}


@pytest.fixture
def order_tracking(environment):
    """A type with a template on every channel we can send."""
    notification_type = NotificationTypeFactory(environment=environment, key="order_tracking")
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel=Channel.EMAIL,
        subject="Order {{ order_id }} shipped",
        html="<p>Hi {{ first_name }}, order {{ order_id }} is on its way.</p>",
        text="Hi {{ first_name }}, order {{ order_id }} is on its way.",
    )
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel=Channel.SMS,
        subject="",
        html="",
        text="Order {{ order_id }} shipped",
    )
    ChannelTemplateFactory(
        notification_type=notification_type,
        channel=Channel.IN_APP,
        subject="Order {{ order_id }} shipped",
        html="",
        text="",
    )
    return notification_type


@pytest.fixture
def send_only_key(environment):
    return ApiKeyFactory(environment=environment, scopes=["send"])


@pytest.fixture
def read_only_key(environment):
    return ApiKeyFactory(environment=environment, scopes=["read"])


@pytest.fixture
def twilio(settings):
    """SMS and calls through Twilio, whose REST API is a local stand-in (its `requests` are
    what reached it); the install-wide account is TWILIO_INSTALL_SID / TWILIO_INSTALL_TOKEN."""
    state, server = twilio_stand_in()
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "twilio", "call": "twilio"}
    settings.TWILIO_ACCOUNT_SID = TWILIO_INSTALL_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_INSTALL_TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_API_BASE_URL = state.url
    settings.PUBLIC_BASE_URL = "https://notify.example.com"
    settings.SEND_RETRY_BACKOFF_SECONDS = 0
    yield state
    server.shutdown()
    server.server_close()
