"""Personal data by need: an account that masks addresses for its viewers shows them
`a•••@example.com` and `+1 ••• ••0100` on every surface they read (the list, the notification
page with its raw payloads and request, the live timeline feed, the user's timeline), and the
full address is nowhere in the response. Support sees all: it searches by them."""

import pytest

from accounts.models import Membership
from tests.console.conftest import bounced_email, console_user
from tests.console.test_pages import EXPORT, LIST, USER, page_of

EMAIL, NUMBER = "alice@example.com", "+14155550100"
SHOWN_EMAIL, SHOWN_NUMBER = "a•••@example.com", "+1 ••• ••0100"


def _surfaces(client, environment, notification) -> dict[str, str]:
    everywhere = {"environment": environment.id}
    return {
        "list": client.get(LIST, everywhere).content.decode(),
        "page": client.get(page_of(notification)).content.decode(),
        "timeline feed": client.get(
            page_of(notification).replace("change/", "events.json")
        ).content.decode(),
        "user timeline": client.get(USER, {**everywhere, "user": "usr_alice"}).content.decode(),
    }


@pytest.fixture
def masking_account(tenants):
    mine, _ = tenants
    mine.account.viewer_addresses = "masked"
    mine.account.save()
    return mine


@pytest.mark.django_db
def test_a_masked_viewer_never_reads_a_full_address(client, masking_account):
    notification = bounced_email(masking_account)
    client.force_login(console_user(masking_account, role=Membership.Role.VIEWER))
    surfaces = _surfaces(client, masking_account, notification)
    for surface, body in surfaces.items():
        assert EMAIL not in body, surface
        assert NUMBER not in body and "4155550100" not in body, surface
    for surface in ("list", "page", "user timeline"):
        assert SHOWN_EMAIL in surfaces[surface], surface
        assert SHOWN_NUMBER in surfaces[surface], surface
    # The raw payload of the bounce and the envelope name the recipient: masked there too.
    assert "&quot;recipient&quot;: &quot;a•••@example.com&quot;" in surfaces["page"]
    assert "masked for this account's viewers" in surfaces["page"]
    # Viewers do not export: the CSV is refused, with no row in it.
    export = client.get(EXPORT, {"environment": masking_account.id})
    assert export.status_code == 403
    assert EMAIL not in export.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.SUPPORT, Membership.Role.OWNER])
def test_support_and_managers_of_a_masking_account_read_addresses_in_full(
    client, masking_account, role
):
    notification = bounced_email(masking_account)
    client.force_login(console_user(masking_account, role=role))
    for surface, body in _surfaces(client, masking_account, notification).items():
        if surface != "timeline feed":  # the feed has no line for the first poll's reader
            assert EMAIL in body, surface


@pytest.mark.django_db
def test_viewers_of_an_account_that_shows_all_read_addresses(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine, role=Membership.Role.VIEWER))
    assert EMAIL in client.get(page_of(notification)).content.decode()
    assert NUMBER in client.get(LIST, {"environment": mine.id}).content.decode()


@pytest.mark.django_db
def test_only_owners_choose_what_viewers_see(client, tenants):
    mine, _ = tenants
    change = f"/admin/accounts/account/{mine.account.id}/change/"
    form = {"name": mine.account.name, "viewer_addresses": "masked"}
    admin = console_user(mine, role=Membership.Role.ADMIN)
    admin.user_permissions.add(*_account_permissions())
    client.force_login(admin)
    client.post(change, form)
    mine.account.refresh_from_db()
    assert mine.account.viewer_addresses == "all"  # read-only for an admin
    owner = console_user(mine, role=Membership.Role.OWNER)
    owner.user_permissions.add(*_account_permissions())
    client.force_login(owner)
    assert client.post(change, form).status_code == 302
    mine.account.refresh_from_db()
    assert mine.account.viewer_addresses == "masked"


def _account_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(
        content_type__app_label="accounts", codename__endswith="account"
    )
