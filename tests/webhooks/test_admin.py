"""The inbox in the console: scoped to the user's environments, filterable, the raw request
visible, orphaned callbacks replayable, and no page that grows its queries with its rows."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import EnvironmentFactory, MembershipFactory, UserFactory
from tests.webhooks.providers import TwilioSms, sent_delivery
from webhooks.models import InboxEntry, InboxState

pytestmark = pytest.mark.django_db


def _callback(environment=None, state=InboxState.PROCESSED, provider="twilio_sms", body=b"a=1"):
    return InboxEntry.objects.create(
        provider=provider, path="/webhooks/twilio/sms/", body=body, state=state,
        environment=environment, headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip


def _staff(client, environment, *codenames):
    user = UserFactory(username="helpdesk")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="webhooks",
                                                        codename__in=codenames))  # fmt: skip
    MembershipFactory(user=user, account=environment.account)
    client.force_login(user)
    return client


def test_staff_see_only_their_environments_callbacks(client):
    mine, theirs = EnvironmentFactory(), EnvironmentFactory()
    own, other, unmatched = _callback(mine), _callback(theirs), _callback(None)

    page = _staff(client, mine, "view_inboxentry").get("/admin/webhooks/inboxentry/")

    assert page.status_code == 200
    listed = page.context["cl"].result_list
    assert [entry.id for entry in listed] == [own.id]
    assert other.id not in {e.id for e in listed} and unmatched.id not in {e.id for e in listed}
    detail = client.get(f"/admin/webhooks/inboxentry/{other.id}/change/")
    assert detail.status_code == 404


def test_filters_by_provider_state_and_day(admin_client):
    today = timezone.now().date().isoformat()
    wanted = _callback(state=InboxState.ORPHANED, provider="postmark")
    _callback(state=InboxState.PROCESSED, provider="postmark")
    _callback(state=InboxState.ORPHANED, provider="twilio_voice")

    page = admin_client.get(
        f"/admin/webhooks/inboxentry/?provider=postmark&state=orphaned&day={today}"
    )

    assert [e.id for e in page.context["cl"].result_list] == [wanted.id]
    assert (
        admin_client.get("/admin/webhooks/inboxentry/?day=2000-01-01")
        .context["cl"]
        .result_list.count()
        == 0
    )


def test_the_raw_request_is_shown_without_credentials(admin_client):
    entry = _callback(body=b"MessageSid=SM1&MessageStatus=<sent>")

    page = admin_client.get(f"/admin/webhooks/inboxentry/{entry.id}/change/")

    body = page.content.decode()
    assert "MessageSid=SM1&amp;MessageStatus=&lt;sent&gt;" in body  # escaped, verbatim
    assert "application/x-www-form-urlencoded" in body
    assert 'value="Save"' not in body


def test_list_queries_do_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    for _ in range(30):
        _callback(EnvironmentFactory())
    with django_assert_max_num_queries(10):
        assert admin_client.get("/admin/webhooks/inboxentry/").status_code == 200


@pytest.mark.usefixtures("webhook_settings", "celery_eager")
def test_replaying_an_orphan_processes_it_once_its_message_exists(
    admin_client, client, django_capture_on_commit_callbacks
):
    provider = TwilioSms()
    message_id = provider.new_message_id()
    with django_capture_on_commit_callbacks(execute=True):
        provider.post(client, message_id, "delivered")
    entry = InboxEntry.objects.get()
    InboxEntry.objects.filter(id=entry.id).update(state=InboxState.ORPHANED)
    # A Sent recorded without telling the inbox (no inbox_adopt call).
    sent_delivery(environment=EnvironmentFactory(), channel="sms", message_id=message_id)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/webhooks/inboxentry/",
            {"action": "replay", "_selected_action": [entry.id]},
            follow=True,
        )

    assert "Replaying 1 callback(s)." in response.content.decode()
    entry.refresh_from_db()
    assert (entry.state, entry.events_recorded) == (InboxState.PROCESSED, 1)


def test_replay_needs_the_change_permission(client):
    environment = EnvironmentFactory()
    entry = _callback(environment, state=InboxState.ORPHANED)
    staff = _staff(client, environment, "view_inboxentry")

    response = staff.post("/admin/webhooks/inboxentry/",
                          {"action": "replay", "_selected_action": [entry.id]})  # fmt: skip

    assert response.status_code == 200  # the changelist again: no such action for them
    entry.refresh_from_db()
    assert entry.state == InboxState.ORPHANED
