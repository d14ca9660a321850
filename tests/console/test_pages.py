"""The console's pages through Django's test client: what support sees, what they do not,
and what a wrong input answers."""

import csv
import io
import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Membership
from console.models import ConsoleSettings, RevealRecord
from logs.search_filters import Cursor
from logs.services import event_record, notification_create
from tests.console.conftest import bounced_email, console_user
from tests.helpers import deliveries_recorded
from tests.notifications.factories import NotificationTypeFactory, UserPreferenceFactory

LIST = "/admin/logs/notification/"
USER = "/admin/logs/notification/user/"
EXPORT = "/admin/logs/notification/export.csv"


def page_of(notification) -> str:
    return f"/admin/logs/notification/{notification.id}/change/"


def sms(
    environment,
    *,
    user_id="usr_bob",
    number="+14155550199",
    minutes_ago=1,
    notification_type="order_shipped",
):
    created_at = timezone.now() - timedelta(minutes=minutes_ago)
    notification = notification_create(
        environment_id=environment.id,
        notification_type=notification_type,
        user_id=user_id,
        number=number,
        created_at=created_at,
    )
    event_record(
        notification_id=notification.id,
        notification_created_at=created_at,
        channel="sms",
        kind="sent",
        source="pipeline",
        delivery_fields={
            "provider": "twilio",
            "provider_message_id": f"SM{uuid.uuid4().hex}",
            "destination": "",  # as dispatch stores it: the notification's number
            "text": "Your order shipped",
        },
    )
    notification.refresh_from_db()
    return notification


@pytest.mark.django_db
def test_support_finds_a_bounced_email_by_address_and_reads_it(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine))
    listing = client.get(LIST, {"q": "ALICE@example.com"})
    body = listing.content.decode()
    assert listing.status_code == 200
    assert page_of(notification) in body
    assert "as <strong>email</strong>" in body
    assert "Email · Failed - Bounce" in body  # the channel's badge
    page = client.get(page_of(notification)).content.decode()
    assert "Failed - Bounce" in page
    assert "Reset your password" in page
    assert "550 5.1.1 mailbox unavailable" in page
    assert 'sandbox=""' in page and "default-src &#x27;none&#x27;" in page


@pytest.mark.django_db
def test_the_page_says_where_each_delivery_went_stored_or_not(client, tenants):
    """A delivery sent to the notification's own address does not store it again: the page
    reads it from the notification; one sent elsewhere shows its own; one never sent, none."""
    mine, _ = tenants
    notification = bounced_email(mine, email="alice@example.com")
    stored = deliveries_recorded(
        notification,
        {
            "sms": {"provider": "twilio", "destination": "+14155550199", "text": "Hi"},
            "in_app": {"provider": "in_app", "destination": "", "text": "Hi"},
            "call": {},
        },
    )
    assert stored == {"email": "", "sms": "+14155550199", "in_app": "", "call": ""}
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    assert "<dt>To</dt><dd>alice@example.com</dd>" in page
    assert "<dt>To</dt><dd>+14155550199</dd>" in page
    assert "<dt>To</dt><dd>—</dd>" in page  # the call, never sent


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("pasted", "searched_as"),
    [
        ("ali", "email prefix"),
        ("(415) 555-0100", "phone number"),
        ("usr_alice", "user id"),
        ("TRACKING", "tracking id"),
        ("PROVIDER", "provider message id"),
    ],
)
def test_the_box_understands_what_is_pasted(client, tenants, pasted, searched_as):
    mine, _ = tenants
    notification = bounced_email(mine)
    pasted = {"TRACKING": str(notification.id), "PROVIDER": f"sbx-{notification.id.hex[:12]}"}.get(
        pasted, pasted
    )
    client.force_login(console_user(mine))
    body = client.get(LIST, {"q": pasted}).content.decode()
    assert page_of(notification) in body
    assert f"as <strong>{searched_as}</strong>" in body


@pytest.mark.django_db
def test_a_miss_says_so_and_suggests_the_other_keys(client, tenants):
    mine, _ = tenants
    bounced_email(mine)
    client.force_login(console_user(mine))
    body = client.get(LIST, {"q": "nobody-at-all"}).content.decode()
    assert "No notification matches “nobody-at-all” as user id or provider message id" in body
    assert "a tracking id (a UUID)" in body and "phone number in any spelling" in body


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "2026-13-45"},
        {"date_from": "2026-11-20", "date_to": "2026-11-01"},
        {"status": "lost"},
        {"channel": "pigeon"},
        {"event": "failed:busy"},
        {"type": "not_in_catalogue"},
        {"environment": "abc"},
        {"q": "x", "search_as": "tracking_id"},
        {"q": "12", "search_as": "number"},
        {"q": "ab", "search_as": "email_prefix"},
        {"search_as": "password"},
    ],
)
def test_bad_input_shows_a_message_never_a_500(client, tenants, params):
    mine, _ = tenants
    bounced_email(mine)
    client.force_login(console_user(mine))
    response = client.get(LIST, params)
    assert response.status_code == 200
    assert 'class="problems"' in response.content.decode()


@pytest.mark.django_db
def test_a_sub_kind_of_another_kind_matches_nothing_quietly(client, tenants):
    mine, _ = tenants
    bounced_email(mine)
    client.force_login(console_user(mine))
    body = client.get(LIST, {"event": "failed:bounce"}).content.decode()
    assert "/change/" in body
    assert "/change/" not in client.get(LIST, {"event": "delivered:busy"}).content.decode()


@pytest.mark.django_db
def test_filters_narrow_by_status_channel_event_type_and_day(client, tenants):
    mine, _ = tenants
    NotificationTypeFactory(environment=mine, key="password_reset")
    NotificationTypeFactory(environment=mine, key="order_shipped")
    email, text = bounced_email(mine), sms(mine)
    client.force_login(console_user(mine))
    today = timezone.now().date().isoformat()

    def shown(**params):
        body = client.get(LIST, params).content.decode()
        return {n for n in (email, text) if page_of(n) in body}

    assert shown(status="failure") == {email}
    assert shown(channel="sms") == {text}
    assert shown(event="failed:bounce") == {email}
    assert shown(event="sent") == {email, text}
    assert shown(type="order_shipped") == {text}
    assert shown(date_from=today, date_to=today) == {email, text}
    assert shown(date_to="2020-01-01") == set()


@pytest.mark.django_db
def test_pages_go_older_and_newer_by_cursor_and_a_tampered_cursor_starts_over(
    client, tenants, monkeypatch
):
    from console.views import search

    monkeypatch.setattr(search, "PAGE_SIZE", 2)
    mine, _ = tenants
    made = [sms(mine, user_id=f"usr_{i}", minutes_ago=10 - i) for i in range(5)]
    newest_first = made[::-1]
    client.force_login(console_user(mine))
    first = client.get(LIST)
    assert [page_of(n) in first.content.decode() for n in newest_first] == [1, 1, 0, 0, 0]
    second = client.get(LIST + first.context["older_url"])
    assert [page_of(n) in second.content.decode() for n in newest_first] == [0, 0, 1, 1, 0]
    back = client.get(LIST + second.context["newer_url"])
    assert [page_of(n) in back.content.decode() for n in newest_first] == [1, 1, 0, 0, 0]
    tampered = client.get(LIST, {"after": "bm90LWEtY3Vyc29y"})
    body = tampered.content.decode()
    assert tampered.status_code == 200
    assert "That page link was not valid: showing the first page." in body
    assert [page_of(n) in body for n in newest_first] == [1, 1, 0, 0, 0]


@pytest.mark.django_db
def test_another_accounts_user_sees_nothing_of_mine(client, tenants):
    mine, theirs = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(theirs))
    body = client.get(LIST, {"q": "alice@example.com"}).content.decode()
    assert page_of(notification) not in body and "No notification matches" in body
    assert client.get(page_of(notification)).status_code == 404
    assert client.get(page_of(notification).replace("change/", "events.json")).status_code == 404
    # My environment named in the URL: refused, and the list shows theirs only.
    response = client.get(LIST, {"environment": mine.id, "q": "alice@example.com"})
    assert page_of(notification) not in response.content.decode()
    user_page = client.get(USER, {"environment": mine.id, "user": "usr_alice"}).content.decode()
    assert "alice@example.com" not in user_page
    export = client.get(EXPORT, {"environment": mine.id})
    assert str(notification.id) not in b"".join(getattr(export, "streaming_content", [])).decode()


@pytest.mark.django_db
def test_filter_choices_are_the_viewers_own(client, tenants):
    mine, theirs = tenants
    NotificationTypeFactory(environment=mine, key="mine_only")
    NotificationTypeFactory(environment=theirs, key="theirs_only")
    client.force_login(console_user(mine))
    body = client.get(LIST).content.decode()
    assert "mine_only" in body and "theirs_only" not in body
    assert f'value="{mine.id}"' in body and f'value="{theirs.id}"' not in body


@pytest.mark.django_db
def test_a_user_without_log_permission_is_refused(client, tenants):
    from tests.factories import MembershipFactory, UserFactory

    mine, _ = tenants
    user = UserFactory(username="no-perms")
    MembershipFactory(user=user, account=mine.account)
    client.force_login(user)
    assert client.get(LIST).status_code == 403


@pytest.mark.django_db
def test_secrets_are_masked_in_tags_request_content_and_payloads(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    assert "tok_5ecr3t_abcdef" not in page
    assert "https://app.example.com/reset?token=••••••" in page  # host and path stay
    assert "Reveal" not in page  # support cannot reveal
    events = client.get(page_of(notification).replace("change/", "events.json")).json()
    assert "tok_5ecr3t_abcdef" not in str(events)


@pytest.mark.django_db
def test_masked_words_are_configurable_per_environment(client, tenants):
    mine, _ = tenants
    ConsoleSettings.objects.create(environment=mine, sensitive_words=["first_name"])
    notification = bounced_email(
        mine, merge_tags={"first_name": "Alicia", "reset_token": "tok_x1y2z3"}
    )
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    assert "Alicia" not in page
    assert "tok_x1y2z3" in page  # no longer on this environment's list


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_owners_and_admins_reveal_and_each_reveal_is_recorded(client, tenants, role):
    mine, _ = tenants
    notification = bounced_email(mine)
    user = console_user(mine, role=role)
    client.force_login(user)
    page = client.get(page_of(notification)).content.decode()
    assert "Reveal (recorded)" in page and "tok_5ecr3t_abcdef" not in page
    revealed = client.post(page_of(notification).replace("change/", "reveal/"))
    assert revealed.status_code == 200
    assert "tok_5ecr3t_abcdef" in revealed.content.decode()
    assert "no-store" in revealed["Cache-Control"]
    [record] = RevealRecord.objects.all()
    assert (record.user, record.notification_id, record.environment) == (
        user,
        notification.id,
        mine,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.SUPPORT, Membership.Role.VIEWER])
def test_support_and_viewers_cannot_reveal(client, tenants, role):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine, role=role))
    response = client.post(page_of(notification).replace("change/", "reveal/"))
    assert response.status_code == 403
    assert not RevealRecord.objects.exists()


@pytest.mark.django_db
def test_user_timeline_lists_every_notification_with_preferences_and_contact(client, tenants):
    mine, theirs = tenants
    email = bounced_email(mine, user_id="usr_carol", email="carol@example.com")
    text = sms(mine, user_id="usr_carol", number="+14155550123")
    other = sms(mine, user_id="usr_dave")
    UserPreferenceFactory(environment=mine, user_id="usr_carol", notification_type="marketing")
    UserPreferenceFactory(environment=theirs, user_id="usr_carol", notification_type="their_pref")
    client.force_login(console_user(mine))
    body = client.get(USER, {"environment": mine.id, "user": "usr_carol"}).content.decode()
    assert page_of(email) in body and page_of(text) in body and page_of(other) not in body
    assert body.index(page_of(text)) < body.index(page_of(email))  # newest first
    assert "marketing" in body and "their_pref" not in body
    assert "+14155550123" in body  # the newest contact details
    filtered = client.get(USER, {"environment": mine.id, "user": "usr_carol", "channel": "sms"})
    assert page_of(email) not in filtered.content.decode()


@pytest.mark.django_db
def test_export_streams_the_filtered_list_as_csv(client, tenants):
    mine, _ = tenants
    email, text = bounced_email(mine), sms(mine)
    client.force_login(console_user(mine))
    response = client.get(EXPORT, {"environment": mine.id, "status": "failure"})
    assert response.status_code == 200 and response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["tracking_id"] for row in rows] == [str(email.id)]
    assert rows[0]["channels"] == "email:failed"
    by_key = client.get(EXPORT, {"environment": mine.id, "q": "+1 415 555 0199"})
    rows = list(csv.DictReader(io.StringIO(b"".join(by_key.streaming_content).decode())))
    assert [row["tracking_id"] for row in rows] == [str(text.id)]


@pytest.mark.django_db
def test_viewers_do_not_export(client, tenants):
    mine, _ = tenants
    bounced_email(mine)
    client.force_login(console_user(mine, role=Membership.Role.VIEWER))
    assert "Export CSV" not in client.get(LIST).content.decode()
    assert client.get(EXPORT, {"environment": mine.id}).status_code == 403


@pytest.mark.django_db
def test_export_quotes_cells_a_spreadsheet_would_run(client, tenants):
    mine, _ = tenants
    sms(mine, user_id='=HYPERLINK("http://evil")')
    client.force_login(console_user(mine))
    response = client.get(EXPORT, {"environment": mine.id})
    assert "'=HYPERLINK" in b"".join(response.streaming_content).decode()


@pytest.mark.django_db
def _line_key(line: str) -> str:
    return re.search(r'data-event-id="([^"]+)"', line)[1]


def test_the_live_feed_returns_events_after_the_last_one_seen(client, tenants):
    mine, _ = tenants
    created_at = timezone.now()
    notification = notification_create(
        environment_id=mine.id, notification_type="t", user_id="u", created_at=created_at
    )
    client.force_login(console_user(mine))
    feed_url = page_of(notification).replace("change/", "events.json")
    first = client.get(feed_url).json()
    assert first["final"] is False and len(first["lines"]) == 1
    event_record(
        notification_id=notification.id,
        channel="sms",
        kind="sent",
        source="pipeline",
        delivery_fields={"reports_delivery": False},
    )
    second = client.get(feed_url, {"after": first["last_event_id"]}).json()
    # The Received is folded into the notification (no id): it comes back each time, with
    # the key the page already has, and the page skips it.
    shown = {_line_key(line) for line in first["lines"]}
    new = [line for line in second["lines"] if _line_key(line) not in shown]
    assert len(new) == 1 and "Sent" in new[0]
    assert second["final"] is True and second["status"] == "success"
    assert client.get(feed_url, {"after": "x"}).status_code == 400


@pytest.mark.django_db
def test_times_show_seconds_the_viewers_zone_and_utc_on_hover(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    client.force_login(console_user(mine))
    client.cookies["console_tz"] = "Asia%2FTokyo"  # as the browser stores it
    body = client.get(LIST).content.decode()
    local = notification.created_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert f"{local:%Y-%m-%d %H:%M:%S} JST" in body
    assert f"{notification.created_at:%Y-%m-%d %H:%M:%S} UTC" in body
    client.cookies["console_tz"] = "Not/AZone"
    assert "Times in UTC" in client.get(LIST).content.decode()


@pytest.mark.django_db
def test_a_malformed_tracking_id_in_the_url_is_a_404(client, tenants):
    mine, _ = tenants
    client.force_login(console_user(mine))
    assert client.get("/admin/logs/notification/not-a-uuid/change/").status_code == 404
    assert client.get(f"/admin/logs/notification/{uuid.uuid4()}/change/").status_code == 404


def test_cursor_round_trip_is_what_pages_use():
    cursor = Cursor(timezone.now(), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.django_db
def test_a_user_id_search_links_to_the_users_timeline(client, tenants):
    mine, _ = tenants
    bounced_email(mine, user_id="usr/with space")
    client.force_login(console_user(mine))
    body = client.get(LIST, {"q": "usr/with space"}).content.decode()
    assert f"{USER}?environment={mine.id}&amp;user=usr%2Fwith+space" in body
    assert "Open this user&#x27;s timeline" in body or "Open this user's timeline" in body


@pytest.mark.django_db
def test_reveal_records_and_console_settings_are_per_tenant(client, tenants):
    mine, theirs = tenants
    for environment in (mine, theirs):
        ConsoleSettings.objects.create(environment=environment, sensitive_words=["pin"])
        RevealRecord.objects.create(
            environment=environment,
            username=f"owner-of-{environment.id}",
            notification_id=uuid.uuid4(),
        )
    client.force_login(console_user(mine, role=Membership.Role.OWNER))
    reveals = client.get("/admin/console/revealrecord/").content.decode()
    assert f"owner-of-{mine.id}" in reveals and f"owner-of-{theirs.id}" not in reveals
    settings_list = client.get("/admin/console/consolesettings/").content.decode()
    assert f"/admin/console/consolesettings/{mine.console_settings.id}/" in settings_list
    assert f"/admin/console/consolesettings/{theirs.console_settings.id}/" not in settings_list


@pytest.mark.django_db
def test_the_console_settings_and_reveals_old_addresses_lead_to_their_pages(client, tenants):
    # They were under /admin/logs/ until the console became an app of its own (console 0001).
    mine, _ = tenants
    settings_id = ConsoleSettings.objects.create(environment=mine).id
    client.force_login(console_user(mine, role=Membership.Role.OWNER))
    for old, new in [
        ("/admin/logs/consolesettings/", "/admin/console/consolesettings/"),
        (f"/admin/logs/consolesettings/{settings_id}/change/",
         f"/admin/console/consolesettings/{settings_id}/change/"),
        ("/admin/logs/revealrecord/?q=owner", "/admin/console/revealrecord/?q=owner"),
    ]:  # fmt: skip
        response = client.get(old)
        assert response.status_code == 302 and response["Location"] == new
        assert client.get(new).status_code == 200


@pytest.mark.django_db
def test_a_search_that_stops_early_says_how_far_back_it_looked(client, tenants, monkeypatch):
    from console.views import search
    from logs import selectors

    monkeypatch.setattr(selectors, "SEARCH_BUDGET_ROUNDS", 1)
    monkeypatch.setattr(search, "PAGE_SIZE", 1)
    mine, _ = tenants
    # A channel's deliveries with the event, filtered by a notification column: read in
    # rounds of candidates (the newer SMS are of another type).
    NotificationTypeFactory(environment=mine, key="password_reset")
    wanted = sms(mine, user_id="usr_wanted", minutes_ago=120, notification_type="password_reset")
    for i in range(8):
        sms(mine, user_id=f"usr_ok_{i}", minutes_ago=10 + i)  # newer, of another type
    client.force_login(console_user(mine))
    response = client.get(LIST, {"channel": "sms", "event": "sent", "type": "password_reset"})
    body = response.content.decode()
    assert "Searched back to" in body and "“Older” keeps looking" in body
    assert page_of(wanted) not in body
    for _ in range(10):  # each page looks further back; the match is found in a few
        if page_of(wanted) in body or not response.context["older_url"]:
            break
        response = client.get(LIST + response.context["older_url"])
        body = response.content.decode()
    assert page_of(wanted) in body


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.SUPPORT, Membership.Role.ADMIN])
def test_support_and_above_resend_and_the_two_timelines_link(client, tenants, role):
    from console.models import ResendLink
    from logs.models import Notification

    mine, _ = tenants
    NotificationTypeFactory(environment=mine, key="password_reset")
    original = bounced_email(mine)
    user = console_user(mine, role=role)
    client.force_login(user)
    assert "↻ Resend" in client.get(page_of(original)).content.decode()
    response = client.post(page_of(original).replace("change/", "resend/"), follow=True)
    [link] = ResendLink.objects.all()
    resent = Notification.objects.get(id=link.resend_id)
    assert (resent.user_id, resent.email, resent.merge_tags) == (
        original.user_id,
        original.email,
        original.merge_tags,
    )
    assert resent.request == original.request
    assert link.user == user and link.original_id == original.id
    new_page = response.content.decode()
    # The links name the environment: the page reads it from there alone.
    in_mine = f"?environment={mine.id}"
    assert f'Resend of <a href="{page_of(original)}{in_mine}">' in new_page
    assert "tok_5ecr3t_abcdef" not in new_page  # the new one is masked too
    old_page = client.get(page_of(original)).content.decode()
    assert f'Resent as <a href="{page_of(resent)}{in_mine}">' in old_page


@pytest.mark.django_db
def test_viewers_cannot_resend_and_other_tenants_get_404(client, tenants):
    from console.models import ResendLink

    mine, theirs = tenants
    NotificationTypeFactory(environment=mine, key="password_reset")
    original = bounced_email(mine)
    client.force_login(console_user(mine, role=Membership.Role.VIEWER))
    assert "↻ Resend" not in client.get(page_of(original)).content.decode()
    assert client.post(page_of(original).replace("change/", "resend/")).status_code == 403
    client.force_login(console_user(theirs, role=Membership.Role.OWNER))
    assert client.post(page_of(original).replace("change/", "resend/")).status_code == 404
    assert not ResendLink.objects.exists()


@pytest.mark.django_db
def test_a_notification_that_cannot_be_resent_says_why(client, tenants):
    mine, _ = tenants
    original = bounced_email(mine)  # its type is not in the catalogue
    client.force_login(console_user(mine))
    response = client.post(page_of(original).replace("change/", "resend/"), follow=True)
    assert response.status_code == 200
    assert "This notification cannot be resent" in response.content.decode()


@pytest.mark.django_db
def test_the_user_timeline_pages_and_exports_stay_on_the_user(client, tenants, monkeypatch):
    from console.views import search

    monkeypatch.setattr(search, "PAGE_SIZE", 1)
    mine, _ = tenants
    older = sms(mine, user_id="usr_frank", minutes_ago=5)
    sms(mine, user_id="usr_frank", minutes_ago=3)
    sms(mine, user_id="usr_grace", minutes_ago=4)
    client.force_login(console_user(mine))
    first = client.get(USER, {"environment": mine.id, "user": "usr_frank"})
    second = client.get(USER + first.context["older_url"])
    assert second.status_code == 200 and page_of(older) in second.content.decode()
    export = client.get(first.context["export_url"])
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {row["user_id"] for row in rows} == {"usr_frank"} and len(rows) == 2


@pytest.fixture
def pipeline(settings):
    """Sends run their dispatch in-process through the sandbox, whose callbacks go nowhere."""
    from config.celery import app as celery_app

    settings.SEND_PROVIDERS = {"email": "sandbox", "sms": "sandbox", "call": "sandbox"}
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # a closed port
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _sent_through_the_pipeline(environment, django_capture_on_commit_callbacks, **extra):
    from notifications.services.sends import notification_send
    from notifications.wire import send_request_parse
    from tests.notifications.factories import ChannelTemplateFactory

    order = NotificationTypeFactory(environment=environment, key="order_tracking")
    templates = {
        "email": ("Order {{ order_id }} shipped", "<p>Hi {{ first_name }}, it is on its way.</p>",
                  "Hi {{ first_name }}, it is on its way."),
        "sms": ("", "", "SMS: order {{ order_id }} shipped."),
        "call": ("", "", "Hello {{ first_name }}, this call is about order {{ order_id }}."),
        "in_app": ("In-app: order {{ order_id }}", "", ""),
    }  # fmt: skip
    for channel, (subject, html, text) in templates.items():
        ChannelTemplateFactory(
            notification_type=order, channel=channel, subject=subject, html=html, text=text
        )
    raw = {
        "type": "order_tracking",
        "to": {"id": "usr_zoe", "email": "zoe@example.com", "number": "+14155550177"},
        "parameters": {"first_name": "Zoe", "order_id": "A-7"},
        **extra,
    }
    with django_capture_on_commit_callbacks(execute=True):
        accepted = notification_send(
            environment=environment, send_request=send_request_parse(raw), raw_request=raw
        )
    from logs.models import Notification

    return Notification.objects.get(id=accepted.notification_id)


@pytest.mark.django_db
def test_each_channel_card_shows_what_the_pipeline_sent(
    client, tenants, pipeline, settings, django_capture_on_commit_callbacks
):
    mine, _ = tenants
    in_app = {"url": "https://shop.example/orders/A-7", "image": "https://shop.example/a7.png"}
    notification = _sent_through_the_pipeline(
        mine, django_capture_on_commit_callbacks, inapp=in_app
    )
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    email = page[page.index('data-channel="email"') :]
    assert '<dd class="subject">Order A-7 shipped</dd>' in email
    # No sender in the request: the install's DEFAULT_FROM_EMAIL, as handed to the provider.
    assert f"<dt>From</dt><dd>{settings.DEFAULT_FROM_EMAIL}</dd>" in email
    assert "<dt>To</dt><dd>zoe@example.com</dd>" in email
    assert "&lt;p&gt;Hi Zoe, it is on its way.&lt;/p&gt;" in email  # the iframe's srcdoc
    sms_card = page[page.index('data-channel="sms"') :]
    assert '<pre class="content sms">SMS: order A-7 shipped.</pre>' in sms_card
    call_card = page[page.index('data-channel="call"') :]
    assert "<h3>Call script</h3>" in call_card
    assert "Hello Zoe, this call is about order A-7." in call_card
    # The in-app item is a title (the template's subject), a link and an image.
    in_app_card = page[page.index('data-channel="in_app"') :]
    assert '<dt>Title</dt><dd class="subject">In-app: order A-7</dd>' in in_app_card
    assert "<dt>Link</dt><dd><code>https://shop.example/orders/A-7</code></dd>" in in_app_card
    assert "<dt>Image</dt><dd><code>https://shop.example/a7.png</code></dd>" in in_app_card


@pytest.mark.django_db
def test_the_email_card_names_the_sender_the_request_chose(
    client, tenants, pipeline, django_capture_on_commit_callbacks
):
    mine, _ = tenants
    options = {"email": {"fromName": "Shop", "fromAddress": "shop@example.com"}}
    notification = _sent_through_the_pipeline(
        mine, django_capture_on_commit_callbacks, options=options
    )
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    assert "<dt>From</dt><dd>Shop &lt;shop@example.com&gt;</dd>" in page


@pytest.mark.django_db
def test_the_timeline_reads_in_the_order_things_happened_with_every_detail(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    # A late callback: recorded after the bounce, it happened before it.
    event_record(
        notification_id=notification.id,
        notification_created_at=notification.created_at,
        channel="email",
        kind="engagement",
        sub_kind="opened",
        source="sandbox",
        occurred_at=notification.created_at + timedelta(seconds=5),
    )
    client.force_login(console_user(mine))
    page = client.get(page_of(notification)).content.decode()
    timeline = page[page.index('id="timeline"') : page.index("Original request")]
    labels = ["Received", "Sending", "Sent", "Engagement - Opened", "Failed - Bounce"]
    positions = [timeline.index(f">{label}</span>") for label in labels]
    assert positions == sorted(positions)
    bounce = timeline[timeline.index(">Failed - Bounce</span>") :]
    assert "source <strong>sandbox</strong> · provider <strong>sandbox</strong>" in bounce
    assert "error code <code>550</code>" in bounce
    assert "550 5.1.1 mailbox unavailable" in bounce
    # The raw payload folded, as indented JSON; the original request likewise.
    folded = "<details><summary>Raw payload</summary><pre>{\n"
    assert folded + "  &quot;event&quot;: &quot;bounced&quot;," in bounce
    assert '<pre class="json">{\n  &quot;parameters&quot;: {\n    &quot;first_name&quot;' in page


@pytest.mark.django_db
def test_export_reads_keyset_chunks_without_a_cursor_and_stops_at_the_cap(
    client, tenants, monkeypatch
):
    """Rows are read a chunk at a time, each chunk its own query after the last row of the
    one before: no server-side cursor stays open while the browser downloads (a pooler in
    transaction mode cannot keep one)."""
    from django.db import connection

    from console.views import export

    monkeypatch.setattr(export, "EXPORT_MAX", 3)
    monkeypatch.setattr(export, "EXPORT_CHUNK", 2)
    mine, _ = tenants
    made = [sms(mine, user_id=f"usr_{i}", minutes_ago=i + 1) for i in range(5)]  # newest first
    client.force_login(console_user(mine))
    stream = iter(client.get(EXPORT, {"environment": mine.id}).streaming_content)
    lines = [next(stream), next(stream)]  # the header and the first row
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors")
        assert cursor.fetchone()[0] == 0
    lines += list(stream)
    rows = list(csv.DictReader(io.StringIO(b"".join(lines).decode())))
    assert [row["tracking_id"] for row in rows] == [str(n.id) for n in made[:3]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "permission"),
    [
        ({"app_label": "logs", "model_name": "notification", "field_name": "environment"},
         "view_environment"),
        ({"app_label": "accounts", "model_name": "membership", "field_name": "user"},
         "view_user"),
    ],
)  # fmt: skip
def test_autocomplete_offers_only_the_viewers_accounts(client, tenants, source, permission):
    from django.contrib.auth.models import Permission

    mine, theirs = tenants  # both environments are called "production"
    me, stranger = console_user(mine), console_user(theirs, username="support-elsewhere")
    me.user_permissions.add(Permission.objects.get(codename=permission))
    client.force_login(me)
    term = "production" if permission == "view_environment" else "support"
    response = client.get("/admin/autocomplete/", {**source, "term": term})
    assert response.status_code == 200
    offered = {result["id"] for result in response.json()["results"]}
    if permission == "view_environment":
        assert str(mine.id) in offered and str(theirs.id) not in offered
    else:
        assert str(me.id) in offered and str(stranger.id) not in offered


@pytest.mark.django_db
def test_the_reveal_audit_shows_times_in_the_viewers_zone_with_seconds(client, tenants):
    from zoneinfo import ZoneInfo

    mine, _ = tenants
    record = RevealRecord.objects.create(
        environment=mine, username="owner-1", notification_id=uuid.uuid4()
    )
    client.force_login(console_user(mine, role=Membership.Role.OWNER))
    client.cookies["console_tz"] = "Asia%2FTokyo"
    body = client.get("/admin/console/revealrecord/").content.decode()
    local = record.revealed_at.astimezone(ZoneInfo("Asia/Tokyo"))
    utc = f"{record.revealed_at:%Y-%m-%d %H:%M:%S} UTC"
    assert f'title="{utc}">{local:%Y-%m-%d %H:%M:%S} JST<' in body


@pytest.mark.django_db
def test_the_demo_support_user_sees_make_runs_demo_sends_at_once(
    client, pipeline, django_capture_on_commit_callbacks
):
    """`make run` runs bootstrap_demo, then demo_send once the server is up; the support
    user it creates opens the console on those notifications."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("bootstrap_demo", stdout=io.StringIO())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_send", stdout=io.StringIO())
    client.force_login(get_user_model().objects.get(username="support"))
    listing = client.get(LIST)
    assert listing.status_code == 200
    assert "Demo / production" in listing.content.decode()
    assert len(listing.context["rows"]) > 10
    opened = client.get(listing.context["rows"][0].url)
    assert opened.status_code == 200 and "Timeline" in opened.content.decode()
