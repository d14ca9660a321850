"""The console's filters in a real browser (Chromium through Playwright): a channel chosen with
a status or an event lists the notifications whose delivery on that channel matches, not those
where another channel does (docs/console.md, "Finding a notification")."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from logs.services import event_record, notification_create
from tests.console.conftest import console_user
from tests.console.test_browser import browser, log_in, page  # noqa: F401 (fixtures)


def _notification(environment, user_id, minutes_ago, outcomes):
    """One notification; `outcomes` maps channel -> (kind, sub_kind) after Sent."""
    created_at = timezone.now() - timedelta(minutes=minutes_ago)
    notification = notification_create(
        environment_id=environment.id, notification_type="order_tracking", user_id=user_id,
        email=f"{user_id}@example.com", number="+14155550100", created_at=created_at,
    )  # fmt: skip
    for channel, (kind, sub_kind) in outcomes.items():
        event_record(notification_id=notification.id, kind="sent", channel=channel,
                     source="sandbox", occurred_at=created_at)  # fmt: skip
        event_record(notification_id=notification.id, kind=kind, sub_kind=sub_kind,
                     channel=channel, source="sandbox", occurred_at=created_at)  # fmt: skip
    return notification


def _listed_users(page) -> list[str]:  # noqa: F811
    rows = page.locator("table.results tbody tr")
    return sorted(
        user for user in ("usr_email_bounced", "usr_sms_failed", "usr_all_delivered")
        if rows.filter(has_text=user).count()
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_sms_with_failure_or_failed_lists_only_notifications_whose_sms_failed(
    page,  # noqa: F811
    live_server,
    tenants,
):
    mine, _ = tenants
    _notification(mine, "usr_email_bounced", 3,
                  {"email": ("failed", "bounce"), "sms": ("delivered", "")})  # fmt: skip
    _notification(mine, "usr_sms_failed", 2,
                  {"email": ("delivered", ""), "sms": ("failed", "undelivered")})  # fmt: skip
    _notification(mine, "usr_all_delivered", 1,
                  {"email": ("delivered", ""), "sms": ("delivered", "")})  # fmt: skip
    log_in(page, live_server, console_user(mine))
    expect(page.locator("table.results tbody tr")).to_have_count(3)

    page.select_option("#id_status", "failure")
    page.click("button:has-text('Search')")
    expect(page.locator("table.results tbody tr")).to_have_count(2)
    assert _listed_users(page) == ["usr_email_bounced", "usr_sms_failed"]

    page.select_option("#id_channel", "sms")
    page.click("button:has-text('Search')")
    expect(page.locator("table.results tbody tr")).to_have_count(1)
    assert _listed_users(page) == ["usr_sms_failed"]
    expect(page.locator("#id_channel")).to_have_value("sms")

    page.select_option("#id_status", "")
    page.select_option("#id_event", "failed")
    page.click("button:has-text('Search')")
    expect(page.locator("table.results tbody tr")).to_have_count(1)
    assert _listed_users(page) == ["usr_sms_failed"]

    page.select_option("#id_channel", "email")
    page.select_option("#id_event", "failed:bounce")
    page.click("button:has-text('Search')")
    expect(page.locator("table.results tbody tr")).to_have_count(1)
    assert _listed_users(page) == ["usr_email_bounced"]

    page.select_option("#id_channel", "sms")
    page.click("button:has-text('Search')")
    expect(page.locator(".empty")).to_contain_text("No notification matches")
