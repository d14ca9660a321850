"""A viewer of an account that masks addresses, in a real browser: the list, the notification
page and the user's timeline show `a•••@example.com` and `+1 ••• ••0100`, never the
address. (No screenshots are written here.)"""

import pytest
from playwright.sync_api import expect

from accounts.models import Membership
from tests.console.conftest import bounced_email, console_user
from tests.console.test_browser import browser, log_in, page  # noqa: F401


@pytest.mark.django_db(transaction=True)
def test_a_masked_viewer_reads_masked_addresses_everywhere(page, live_server, tenants):  # noqa: F811
    mine, _ = tenants
    mine.account.viewer_addresses = "masked"
    mine.account.save()
    notification = bounced_email(mine)
    log_in(page, live_server, console_user(mine, role=Membership.Role.VIEWER))

    row = page.locator("table.results tbody tr").first
    expect(row).to_contain_text("a•••@example.com")
    expect(row).to_contain_text("+1 ••• ••0100")
    assert "alice@example.com" not in page.content()

    row.locator(f"a[href^='/admin/logs/notification/{notification.id}/change/']").click()
    expect(page.locator("#timeline")).to_contain_text("Failed - Bounce")
    expect(page.locator(".addresses-note")).to_contain_text("masked")
    card = page.locator(".channel-card[data-channel=email]")
    expect(card).to_contain_text("a•••@example.com")
    assert "alice@example.com" not in page.content()
    assert "4155550100" not in page.content()

    page.click("text=User usr_alice")
    expect(page.locator(".user-side")).to_contain_text("a•••@example.com")
    assert "alice@example.com" not in page.content()


@pytest.mark.django_db(transaction=True)
def test_support_of_the_same_account_reads_the_address(page, live_server, tenants):  # noqa: F811
    mine, _ = tenants
    mine.account.viewer_addresses = "masked"
    mine.account.save()
    notification = bounced_email(mine)
    log_in(page, live_server, console_user(mine))
    page.goto(f"{live_server.url}/admin/logs/notification/{notification.id}/change/")
    expect(page.locator(".channel-card[data-channel=email]")).to_contain_text("alice@example.com")
