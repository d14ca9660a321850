"""Two-factor logins in a real browser (the machine's Chromium through Playwright) against
pytest-django's live server: setting up an app, signing in with and without the second
factor, a wrong code's message, a recovery code, an account that requires it, and an owner
resetting a member's lost phone. The code is computed from the key the page shows, as the
person's authenticator app computes it."""

import re
import time
from base64 import b32decode

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from accounts.groups import managers_group_sync
from accounts.models import Membership
from accounts.two_factor import WRONG_CODE
from tests.console.test_browser import browser, page  # noqa: F401 (fixtures)
from tests.factories import AccountFactory, MembershipFactory, UserFactory
from tests.security.two_factor import code_for, enrolled

PASSWORD = "correct horse battery staple"
pytestmark = pytest.mark.django_db(transaction=True)


def password_step(tab, live_server, user, next_path: str = "/admin/"):
    tab.goto(f"{live_server.url}/admin/login/?next={next_path}")
    tab.fill("#id_username", user.username)
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")


def code_step(tab, code: str):
    tab.fill("#id_code", code)
    tab.click("input[type=submit][value=Verify]")


def app_code_from_key(key_text: str) -> str:
    """What an authenticator app shows for the key a person typed from the page."""
    key = b32decode(key_text.replace(" ", "") + "=" * (-len(key_text.replace(" ", "")) % 8))
    totp = TOTP(key)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_set_up_then_sign_in_with_the_code_and_a_wrong_one(page, live_server):  # noqa: F811
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=AccountFactory(name="Acme"))

    # Without a second factor the password alone signs in.
    password_step(page, live_server, user)
    expect(page.locator("#user-tools")).to_contain_text("Two-factor login")
    page.click("#user-tools >> text=Two-factor login")
    expect(page.locator("#qr svg")).to_be_visible()
    key = page.locator("#totp-key").inner_text()
    expect(page.locator("#totp-uri")).to_contain_text(
        f"otpauth://totp/Notification%20log%3Aalice?secret={key.replace(' ', '')}"
    )
    page.fill("#id_code", app_code_from_key(key))
    page.click("text=Turn on two-factor login")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")
    expect(page.locator("#site-name")).to_contain_text("Notification log")
    page.click("#logout-form button, #logout-form input[type=submit]")

    # Now the code is asked for after the password, and nothing opens before it.
    password_step(page, live_server, user, next_path="/admin/sessions/")
    expect(page).to_have_url(re.compile(r"/admin/two-factor/verify/"))
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(re.compile(r"/admin/two-factor/verify/"))
    code_step(page, "123456" if app_code_from_key(key) != "123456" else "654321")
    expect(page.locator("#code-error")).to_have_text(WRONG_CODE)
    time.sleep(2)  # a wrong code makes the next try wait a second
    code_step(page, code_for(TOTPDevice.objects.get(user=user)))
    # Back to the page last asked for.
    expect(page.locator("#content h1")).to_have_text("Console")


def test_a_recovery_code_signs_in_once(page, live_server):  # noqa: F811
    user = UserFactory(username="alice")
    _, codes = enrolled(user)

    password_step(page, live_server, user)
    code_step(page, codes[3])
    expect(page.locator(".messagelist")).to_contain_text(
        "You signed in with a recovery code; 9 left."
    )
    page.click("#logout-form button, #logout-form input[type=submit]")
    password_step(page, live_server, user)
    code_step(page, codes[3])
    expect(page.locator("#code-error")).to_have_text(WRONG_CODE)


def test_an_account_that_requires_it_sends_a_member_to_set_it_up(page, live_server):  # noqa: F811
    account = AccountFactory(name="Acme", require_two_factor=True)
    user = UserFactory(username="alice")
    MembershipFactory(user=user, account=account)

    password_step(page, live_server, user)
    expect(page).to_have_url(re.compile(r"/admin/two-factor/\?next="))
    expect(page.locator("#enrol-required")).to_have_text(
        "Acme requires two-factor login: set it up to continue."
    )
    # Every other page sends the member back here.
    page.goto(f"{live_server.url}/admin/sessions/")
    expect(page.locator("#enrol-required")).to_be_visible()
    page.fill("#id_code", app_code_from_key(page.locator("#totp-key").inner_text()))
    page.click("text=Turn on two-factor login")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    page.click("#continue")
    expect(page.locator("#content h1")).to_have_text("Your sessions")


def test_an_owner_resets_a_members_lost_phone(page, live_server):  # noqa: F811
    account = AccountFactory(name="Acme")
    owner = UserFactory(username="owner")
    member = UserFactory(username="member")
    MembershipFactory(user=owner, account=account, role=Membership.Role.OWNER)
    MembershipFactory(user=member, account=account, role=Membership.Role.SUPPORT)
    owner.groups.add(managers_group_sync())
    owners_app, _ = enrolled(owner)
    enrolled(member)

    password_step(
        page, live_server, owner, next_path=reverse("admin:accounts_membership_changelist")
    )
    code_step(page, code_for(owners_app))
    row = page.locator("#result_list tr", has_text="member")
    expect(row.locator("img[alt=True]")).to_have_count(1)  # two-factor login: on
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "reset_two_factor")
    page.click("button[name=index], input[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("Reset the two-factor login of member")
    expect(row.locator("img[alt=False]")).to_have_count(1)
    assert not TOTPDevice.objects.filter(user=member).exists()
