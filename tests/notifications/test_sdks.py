"""NotificationAPI's official server SDKs against a live server, changing only the base URL:
the Python SDK from PyPI (notificationapi_python_server_sdk) and the Node SDK from npm
(notificationapi-node-server-sdk, installed into a temporary directory and run by node)."""

import asyncio
import json
import shutil
import subprocess

import pytest
from notificationapi_python_server_sdk import notificationapi

from logs.models import Notification
from logs.vocabulary import Channel
from notifications.models import EndUser, InAppNotification, SubNotification, UserPreference
from tests.notifications.conftest import SECRET
from tests.notifications.helpers import labels

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sandbox(settings):
    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}


def _latest_for(user_id: str) -> Notification:
    return Notification.objects.filter(user_id=user_id).order_by("-created_at").first()


def test_python_sdk_send_preferences_identify_retract(live_server, environment, order_tracking):
    notificationapi.init(environment.client_id, SECRET, base_url=live_server.url)

    async def scenario() -> dict:
        responses = {}
        responses["identify"] = await notificationapi.identify_user(
            {"id": "py_user", "email": "py@example.com", "number": "+14155550123"}
        )
        responses["send"] = await notificationapi.send(
            {
                "notificationId": "order_tracking",
                "user": {"id": "py_user"},
                "mergeTags": {"first_name": "Py", "order_id": "P-1"},
            }
        )
        responses["prefs"] = await notificationapi.set_user_preferences(
            {
                "userId": "py_off",
                "userPreferences": [
                    {"notificationId": "order_tracking", "channel": "EMAIL", "delivery": "off"}
                ],
            }
        )
        responses["send_off"] = await notificationapi.send(
            {
                "notificationId": "order_tracking",
                "user": {"id": "py_off", "email": "off@example.com", "number": "+14155550124"},
                "mergeTags": {"first_name": "Off", "order_id": "P-2"},
            }
        )
        responses["retract"] = await notificationapi.retract(
            {"notificationId": "order_tracking", "userId": "py_user"}
        )
        responses["sub"] = await notificationapi.create_sub_notification(
            {"notification_id": "order_tracking", "sub_notification_id": "p1", "title": "P1"}
        )
        responses["delete_prefs"] = await notificationapi.delete_user_preferences(
            {"id": "py_off", "notificationId": "order_tracking"}
        )
        return responses

    responses = asyncio.run(scenario())
    assert {name: r.status_code for name, r in responses.items()} == dict.fromkeys(responses, 200)
    sent = Notification.objects.get(id=responses["send"].json()["trackingId"])
    assert (sent.email, sent.number) == ("py@example.com", "+14155550123")  # from identify
    assert labels(sent, Channel.EMAIL) == ["Sending", "Sent"]
    assert labels(sent, Channel.SMS) == ["Sending", "Sent"]
    off = _latest_for("py_off")
    assert labels(off, Channel.EMAIL) == ["Ignored - User Preference"]
    assert labels(off, Channel.SMS) == ["Sending", "Sent"]
    assert EndUser.objects.filter(user_id="py_user", email="py@example.com").exists()
    assert not InAppNotification.objects.filter(user_id="py_user").exists()  # retracted
    assert InAppNotification.objects.filter(user_id="py_off").exists()
    assert SubNotification.objects.filter(sub_notification_id="p1", title="P1").exists()
    assert not UserPreference.objects.filter(user_id="py_off").exists()


NODE_SCRIPT = """
const notificationapi = require('notificationapi-node-server-sdk').default;
const [clientId, secret, baseURL] = process.argv.slice(2);
notificationapi.init(clientId, secret, { baseURL });
(async () => {
  const out = {};
  const keep = (r) => ({ status: r.status, data: r.data });
  out.prefs = keep(await notificationapi.setUserPreferences('node_off', [
    { notificationId: 'order_tracking', channel: 'EMAIL', delivery: 'off' }]));
  out.send = keep(await notificationapi.send({
    type: 'order_tracking',
    to: { id: 'node_user', email: 'node@example.com', number: '+14155550125' },
    parameters: { first_name: 'Node', order_id: 'N-1' } }));
  out.sendOff = keep(await notificationapi.send({
    notificationId: 'order_tracking',
    user: { id: 'node_off', email: 'nodeoff@example.com' },
    mergeTags: { first_name: 'Off', order_id: 'N-2' } }));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.response ? e.response.data : e.message); process.exit(1); });
"""


@pytest.fixture(scope="session")
def node_sdk(tmp_path_factory):
    """npm-installs the official Node SDK once per test session into a temporary directory."""
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.fail("node and npm are needed for the Node SDK test (Node 20+).", pytrace=False)
    directory = tmp_path_factory.mktemp("node-sdk")
    result = subprocess.run(
        [
            "npm",
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "notificationapi-node-server-sdk",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode:
        pytest.fail(
            f"npm install notificationapi-node-server-sdk failed: {result.stderr}", pytrace=False
        )
    (directory / "scenario.js").write_text(NODE_SCRIPT)
    return directory


def test_node_sdk_send_and_preferences(live_server, environment, order_tracking, node_sdk):
    result = subprocess.run(
        ["node", "scenario.js", environment.client_id, SECRET, live_server.url],
        cwd=node_sdk,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert [out[name]["status"] for name in ("prefs", "send", "sendOff")] == [200, 200, 200]
    sent = Notification.objects.get(id=out["send"]["data"]["trackingId"])
    assert (sent.user_id, sent.merge_tags) == (
        "node_user",
        {"first_name": "Node", "order_id": "N-1"},
    )
    assert labels(sent, Channel.EMAIL) == ["Sending", "Sent"]
    off = Notification.objects.get(id=out["sendOff"]["data"]["trackingId"])
    assert labels(off, Channel.EMAIL) == ["Ignored - User Preference"]
