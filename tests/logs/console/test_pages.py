import pytest

from tests.logs.console.conftest import bounced_email, console_user

LIST = "/admin/logs/notification/"


@pytest.mark.django_db
def test_support_finds_a_bounced_email_by_address_and_reads_it(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine))
    listing = client.get(LIST, {"q": "ALICE@example.com"})
    body = listing.content.decode()
    assert listing.status_code == 200
    assert f"/admin/logs/notification/{notification.id}/change/" in body
    assert "as <strong>email</strong>" in body
    page = client.get(f"/admin/logs/notification/{notification.id}/change/").content.decode()
    assert "Failed - Bounce" in page
    assert "Reset your password" in page
