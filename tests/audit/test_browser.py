"""The access audit in a real browser: a support person opens a customer's notification; the
account's owner finds that read on the audit page, narrows it by person and by user id, and
exports it. (No screenshots are written here.)"""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.audit.test_access_audit import manager
from tests.console.conftest import bounced_email, console_user
from tests.console.test_browser import browser, log_in, page  # noqa: F401

AUDIT = "/admin/audit/accessrecord/"


@pytest.mark.django_db(transaction=True)
def test_an_owner_finds_who_opened_a_notification_and_exports_it(
    browser,  # noqa: F811
    page,  # noqa: F811
    live_server,
    tenants,
):
    mine, theirs = tenants
    notification = bounced_email(mine)
    other = bounced_email(mine, user_id="usr_bob", email="bob@example.com")
    their_notification = bounced_email(theirs)
    support = console_user(mine, username="support-sam")
    log_in(page, live_server, support)
    for opened in (notification, other):
        page.goto(f"{live_server.url}/admin/logs/notification/{opened.id}/change/")
        expect(page.locator("#timeline")).to_contain_text("Failed - Bounce")
    # Someone in another account reads their own notification: never on this owner's page.
    outsider = console_user(theirs, username="outsider-olga")
    outsider_page = browser.new_context(timezone_id="Europe/Paris").new_page()
    log_in(outsider_page, live_server, outsider)
    outsider_page.goto(f"{live_server.url}/admin/logs/notification/{their_notification.id}/change/")
    expect(outsider_page.locator("#timeline")).to_contain_text("Failed - Bounce")
    outsider_page.context.close()

    owner_context = browser.new_context(
        viewport={"width": 1360, "height": 900}, timezone_id="Europe/Paris", accept_downloads=True
    )
    owner_context.set_default_timeout(30_000)
    owner = owner_context.new_page()
    log_in(owner, live_server, manager(mine))
    owner.goto(f"{live_server.url}{AUDIT}")
    rows = owner.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("support-sam")
    expect(rows.first).to_contain_text(f"notification {other.id}")
    expect(owner.locator("#result_list")).not_to_contain_text("outsider-olga")

    # By person: the filter lists the account's members.
    owner.locator("#changelist-filter").get_by_role("link", name="support-sam").click()
    expect(rows).to_have_count(2)
    # By user id: the search box takes one, exactly.
    owner.fill("#searchbar", "usr_alice")
    owner.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"notification {notification.id}")
    # By time: today's reads.
    owner.locator("#changelist-filter").get_by_role("link", name="Today").click()
    expect(rows).to_have_count(1)

    with owner.expect_download() as download:
        owner.get_by_role("link", name="Export CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert "support-sam" in exported and str(notification.id) in exported
    assert str(other.id) not in exported  # the export is the list as filtered
    owner_context.close()


@pytest.mark.django_db(transaction=True)
def test_support_finds_no_audit_page(page, live_server, tenants):  # noqa: F811
    mine, _ = tenants
    log_in(page, live_server, console_user(mine))
    expect(page.locator("#nav-sidebar, #content")).not_to_contain_text("Access records")
    response = page.goto(f"{live_server.url}{AUDIT}")
    assert response.status == 403
