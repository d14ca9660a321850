"""Two-factor console logins (issue 20, item 1), through the admin's own login form with a
request, as a browser signs in (django-axes is on, as in production): after the password, a
user with an authenticator app must enter its code before any console page opens; members
of an account that requires it, and superusers in production, must set one up first;
recovery codes work once; and who may reset whose second factor is decided on the server.
The same flows run in a real browser in test_two_factor_browser.py."""

import html
from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership
from accounts.two_factor import WRONG_CODE, two_factor_verify
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from tests.security.two_factor import code_for, enrolled

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
NOTIFICATIONS = "/admin/logs/notification/"


def sign_in(client, user):
    return client.post(
        reverse("admin:login"),
        {"username": user.username, "password": PASSWORD, "next": NOTIFICATIONS},
    )


def opens(client, path: str = "/admin/") -> bool:
    return client.get(path).status_code == 200


def test_a_user_with_an_app_enters_its_code_before_any_page(client):
    user = UserFactory(username="alice")
    device, _ = enrolled(user)

    signed = sign_in(client, user)
    held = client.get(NOTIFICATIONS)
    mailbox = client.get("/admin/mailbox/")

    assert signed.status_code == 302
    verify_url = reverse("two-factor-verify")
    assert held.status_code == 302 and held["Location"].startswith(verify_url)
    assert "next=%2Fadmin%2Flogs%2Fnotification%2F" in held["Location"]
    assert mailbox.status_code == 302 and mailbox["Location"].startswith(verify_url)
    # A password alone does not reach the page that manages the second factor either.
    assert client.get(reverse("two-factor"))["Location"].startswith(verify_url)

    done = client.post(verify_url, {"code": code_for(device), "next": NOTIFICATIONS})

    assert done.status_code == 302 and done["Location"] == NOTIFICATIONS
    assert opens(client)


def test_a_session_from_before_the_app_was_set_up_must_enter_its_code_to_turn_it_off(client):
    user = UserFactory(username="alice")
    sign_in(client, user)  # no app yet: the password alone signs in
    enrolled(user)  # set up from another browser

    off = client.post(reverse("two-factor"), {"action": "disable"})

    assert off["Location"].startswith(reverse("two-factor-verify"))
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    assert not opens(client)


def test_a_wrong_code_says_what_to_enter_and_lets_nothing_in(client):
    user = UserFactory(username="alice")
    enrolled(user)
    sign_in(client, user)

    wrong = client.post(reverse("two-factor-verify"), {"code": "000000"})

    assert wrong.status_code == 400
    assert WRONG_CODE in wrong.content.decode()
    assert not opens(client)


def test_wrong_codes_slow_further_tries_down(client):
    user = UserFactory(username="alice")
    device, _ = enrolled(user)
    sign_in(client, user)
    client.post(reverse("two-factor-verify"), {"code": "000000"})

    # Even the right code waits out the delay a wrong one started.
    right_too_soon = client.post(reverse("two-factor-verify"), {"code": code_for(device)})

    assert right_too_soon.status_code == 400
    assert "Too many wrong codes: wait" in right_too_soon.content.decode()
    assert not opens(client)


def test_a_recovery_code_lets_in_once(client):
    user = UserFactory(username="alice")
    _, codes = enrolled(user)
    sign_in(client, user)

    used = client.post(reverse("two-factor-verify"), {"code": codes[0].upper()})
    client.logout()
    sign_in(client, user)
    again = client.post(reverse("two-factor-verify"), {"code": codes[0]})

    assert used.status_code == 302
    assert again.status_code == 400 and WRONG_CODE in again.content.decode()
    assert StaticToken.objects.filter(device__user=user).count() == 9


def test_a_user_without_an_app_signs_in_with_the_password_alone(client):
    user = UserFactory(username="alice")
    MembershipFactory(user=user)

    sign_in(client, user)

    assert opens(client)


def test_an_account_that_requires_it_sends_members_to_set_it_up(client):
    account = AccountFactory(name="Acme", require_two_factor=True)
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=account)

    sign_in(client, user)
    held = client.get(NOTIFICATIONS)
    setup = client.get(held["Location"])

    assert held["Location"].startswith(reverse("two-factor"))
    assert "Acme requires two-factor login: set it up to continue." in " ".join(
        setup.content.decode().split()
    )
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    confirmed = client.post(
        reverse("two-factor"),
        {"action": "confirm", "code": code_for(device), "next": NOTIFICATIONS},
    )
    codes = client.get(confirmed["Location"])

    assert confirmed["Location"].startswith(reverse("two-factor-recovery-codes"))
    assert codes.content.decode().count("<li><code>") == 10
    assert opens(client)
    # Shown once.
    assert client.get(reverse("two-factor-recovery-codes")).status_code == 410


def test_a_requirement_turned_on_mid_session_holds_the_member_within_a_minute(client):
    account = AccountFactory(name="Acme")
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=account)
    sign_in(client, user)
    assert opens(client)

    account.require_two_factor = True
    account.save()
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        held = client.get("/admin/")

    assert held.status_code == 302 and held["Location"].startswith(reverse("two-factor"))


@override_settings(PRODUCTION=True)
def test_superusers_must_set_it_up_in_production(client):
    root = UserFactory(username="root", is_superuser=True)

    sign_in(client, root)
    held = client.get("/admin/")

    assert held["Location"].startswith(reverse("two-factor"))


def test_superusers_may_go_without_it_in_development(client):
    root = UserFactory(username="root", is_superuser=True)

    sign_in(client, root)

    assert opens(client)


def test_it_cannot_be_turned_off_where_required(client):
    account = AccountFactory(require_two_factor=True)
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=account)
    device, _ = enrolled(user)
    sign_in(client, user)
    client.post(reverse("two-factor-verify"), {"code": code_for(device)})

    off = client.post(reverse("two-factor"), {"action": "disable"}, follow=True)

    assert "it cannot be turned off" in off.content.decode()
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


# --- Who requires it, and who resets whose second factor (a lost phone) ---


def test_only_owners_turn_the_requirement_on(client):
    account = AccountFactory(name="Acme")
    admin_user = UserFactory(username="admin")
    owner = UserFactory(username="owner")
    for user, role in ((admin_user, Membership.Role.ADMIN), (owner, Membership.Role.OWNER)):
        MembershipFactory(user=user, account=account, role=role)
        _managers(user)
    url = reverse("admin:accounts_account_change", args=[account.pk])
    form = {"name": "Acme", "require_two_factor": "on", "viewer_addresses": "all"}

    client.force_login(admin_user)
    client.post(url, form)
    account.refresh_from_db()
    by_admin = account.require_two_factor
    client.force_login(owner)
    client.post(url, form)
    account.refresh_from_db()

    assert by_admin is False
    assert account.require_two_factor is True


def _managers(user):
    from accounts.groups import managers_group_sync

    user.groups.add(managers_group_sync())


def _reset(client, actor, member_of: Membership):
    client.force_login(actor)
    device = TOTPDevice.objects.filter(user=actor, confirmed=True).first()
    if device:
        client.post(reverse("two-factor-verify"), {"code": code_for(device)})
    return client.post(
        reverse("admin:accounts_membership_changelist"),
        {"action": "reset_two_factor", "_selected_action": [member_of.pk]},
        follow=True,
    )


def _has_app(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@pytest.fixture
def acme():
    """An account with an owner, a second owner, an admin and a support member, each with an
    authenticator app; the owner and admin have the managers' rights."""
    account = AccountFactory(name="Acme")
    people = {}
    for role in ("owner", "owner2", "admin", "support"):
        user = UserFactory(username=role)
        membership = MembershipFactory(user=user, account=account, role=role.rstrip("2"))
        enrolled(user)
        people[role] = (user, membership)
        if role != "support":
            _managers(user)
    return account, people


def test_an_owner_resets_a_members_second_factor_and_ends_their_sessions(client, acme):
    from django.test import Client

    _, people = acme
    owner, _ = people["owner"]
    member, membership = people["support"]
    members_browser = Client()
    members_browser.force_login(member)

    shown = _reset(client, owner, membership)

    assert "Reset the two-factor login of support" in shown.content.decode()
    assert not _has_app(member)
    assert not StaticToken.objects.filter(device__user=member).exists()
    # Whoever holds the lost phone and a session is out.
    assert members_browser.get("/admin/").status_code == 302


def test_an_owner_cannot_reset_another_owners(client, acme):
    _, people = acme
    shown = _reset(client, people["owner"][0], people["owner2"][1])

    assert "Skipped 1: Only a superuser can reset an owner's second factor" in html.unescape(
        shown.content.decode()
    )
    assert _has_app(people["owner2"][0])


def test_an_admin_cannot_reset_anyones(client, acme):
    _, people = acme
    _reset(client, people["admin"][0], people["support"][1])

    assert _has_app(people["support"][0])


def test_an_owner_cannot_reset_a_member_of_an_account_they_do_not_own(client, acme):
    _, people = acme
    member, membership = people["support"]
    MembershipFactory(user=member, account=AccountFactory(name="Elsewhere"))

    _reset(client, people["owner"][0], membership)

    assert _has_app(member)


def test_a_superuser_resets_an_owners(client, acme):
    _, people = acme
    root = UserFactory(username="root", is_superuser=True)

    _reset(client, root, people["owner"][1])

    assert not _has_app(people["owner"][0])


def test_the_rule_itself_refuses_without_the_admin(acme):
    from accounts.two_factor import TwoFactorRefused, two_factor_reset

    _, people = acme
    with pytest.raises(TwoFactorRefused, match="Only a superuser"):
        two_factor_reset(user=people["support"][0], member=people["owner"][0])
    assert _has_app(people["owner"][0])


def test_a_code_is_checked_against_the_users_own_app_only():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    alices, _ = enrolled(alice)
    enrolled(bob)

    from accounts.two_factor import TwoFactorRefused

    with pytest.raises(TwoFactorRefused):
        two_factor_verify(user=bob, code=code_for(alices))
