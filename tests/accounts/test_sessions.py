"""Console sessions (issue 20, item 5): a session ends after CONSOLE_SESSION_IDLE_MINUTES
without the person's activity (a page's background refresh does not count) and when the
password changes; the Sessions page lists the person's own sessions and ends them. Each
browser is its own test client, signed in through the login form."""

import html
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ConsoleSession
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a different horse, battery stapled"


def browser(user, *, agent: str = "Firefox on a laptop", address: str = "203.0.113.5") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    signed = client.post(
        reverse("admin:login"), {"username": user.username, "password": PASSWORD, "next": "/admin/"}
    )
    assert signed.status_code == 302, "the login form refused the test user"
    return client


def signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def later(minutes: float):
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=False)


def test_the_page_lists_my_sessions_and_no_one_elses(settings):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    laptop = browser(alice)
    browser(alice, agent="Chrome on a phone", address="198.51.100.9")
    browser(bob, agent="Bob's own browser")

    page = html.unescape(laptop.get(reverse("sessions")).content.decode())

    assert page.count('<tr data-session="') == 2
    assert "Firefox on a laptop" in page and "Chrome on a phone" in page
    assert "198.51.100.9" in page
    assert "Bob's own browser" not in page
    assert "This session" in page
    # Sessions are named by their row's id, never by the key that would let someone in.
    for key in Session.objects.values_list("session_key", flat=True):
        assert key not in page


def test_ending_a_session_signs_that_browser_out():
    alice = UserFactory(username="alice")
    laptop = browser(alice)
    phone = browser(alice, agent="Chrome on a phone")
    phones = ConsoleSession.objects.get(user_agent="Chrome on a phone")

    ended = laptop.post(reverse("sessions"), {"session": phones.pk}, follow=True)

    assert "Ended 1 session(s)." in ended.content.decode()
    assert not signed_in(phone)
    assert signed_in(laptop)


def test_a_session_of_someone_else_cannot_be_ended_by_its_id():
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    laptop = browser(alice)
    bobs_browser = browser(bob)
    bobs = ConsoleSession.objects.get(user=bob)

    laptop.post(reverse("sessions"), {"session": bobs.pk})

    assert signed_in(bobs_browser)


def test_end_all_others_keeps_only_this_one():
    alice = UserFactory(username="alice")
    laptop = browser(alice)
    others = [browser(alice, agent=f"browser {n}") for n in range(2)]

    laptop.post(reverse("sessions"), {"action": "end_others"})

    assert signed_in(laptop)
    assert not any(signed_in(other) for other in others)
    assert ConsoleSession.objects.filter(user=alice).count() == 1


def test_a_session_ends_after_the_idle_limit(settings):
    assert settings.CONSOLE_SESSION_IDLE_MINUTES == 30  # the documented default
    alice = UserFactory(username="alice")
    laptop = browser(alice)

    with later(29):
        still = signed_in(laptop)
    with later(29 + 31):
        gone = laptop.get("/admin/", follow=True)

    assert still
    assert "You were signed out after 30 minutes without activity" in gone.content.decode()
    assert not signed_in(laptop)
    assert not ConsoleSession.objects.filter(user=alice).exists()


def test_the_idle_limit_is_a_setting(settings):
    settings.CONSOLE_SESSION_IDLE_MINUTES = 5
    laptop = browser(UserFactory(username="alice"))

    with later(6):
        assert not signed_in(laptop)


def test_a_pages_background_refresh_does_not_keep_the_session_alive():
    laptop = browser(UserFactory(username="alice"))

    for minutes in (10, 20, 29):
        with later(minutes):
            laptop.get("/admin/", headers={"accept": "application/json"})
    with later(31):
        assert not signed_in(laptop)


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one():
    alice = UserFactory(username="alice")
    laptop = browser(alice)
    phone = browser(alice, agent="Chrome on a phone")

    changed = laptop.post(
        reverse("admin:password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    page = laptop.get(reverse("sessions")).content.decode()

    assert changed.status_code == 302
    assert signed_in(laptop)
    assert not signed_in(phone)
    assert page.count('<tr data-session="') == 1
    assert "Chrome on a phone" not in page


def test_a_password_set_by_someone_else_ends_every_session():
    alice = UserFactory(username="alice")
    laptop = browser(alice)

    alice.set_password(NEW_PASSWORD)
    alice.save()

    assert not signed_in(laptop)
    assert not ConsoleSession.objects.filter(user=alice).exists()


def test_the_nightly_purge_removes_expired_sessions_and_their_rows():
    from accounts.sessions import console_sessions_purge

    alice = UserFactory(username="alice")
    browser(alice)
    browser(alice)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    assert console_sessions_purge() == 2
    assert not Session.objects.exists()
