"""Resend in a real browser: the button asks first, names the channels it will use and the
ones it will not, and sends only when confirmed."""

import pytest
from playwright.sync_api import expect

from console.models import ResendLink
from tests.console.conftest import bounced_email, console_user
from tests.console.test_browser import browser, log_in, page  # noqa: F401 (fixtures)
from tests.console.test_console_polish import _resend_setup


@pytest.mark.django_db(transaction=True)
def test_resend_asks_which_channels_then_sends(page, live_server, tenants):  # noqa: F811
    mine, _ = tenants
    _resend_setup(mine)  # email and SMS templates, a call turned off, SMS off for the user
    original = bounced_email(mine)
    log_in(page, live_server, console_user(mine))
    page.goto(f"{live_server.url}/admin/logs/notification/{original.id}/change/")

    page.click("text=↻ Resend…")
    expect(page.locator("#resend-channels")).to_have_text("Email to alice@example.com")
    expect(page.locator("#resend-ignored")).to_contain_text("SMS: user usr_alice turned it off")
    expect(page.locator("#resend-ignored")).to_contain_text("Call: turned off in the console")
    assert not ResendLink.objects.exists()  # asking sent nothing

    page.click("#resend-cancel")
    expect(page.locator("#tracking-id")).to_have_text(str(original.id))
    assert not ResendLink.objects.exists()

    page.click("text=↻ Resend…")
    page.click("text=Yes, resend by Email")
    expect(page.locator(".messagelist")).to_contain_text("Resent as a new notification")
    expect(page.locator(".resend-link")).to_contain_text("Resend of")
    [link] = ResendLink.objects.all()
    assert link.original_id == original.id
    expect(page.locator("#tracking-id")).to_have_text(str(link.resend_id))
