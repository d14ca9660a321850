"""The demo data generator (demo/): counts, consistency with the status rules, realism.

One small seed per class, made once inside a transaction that is rolled back at the end; each
test then runs in a savepoint of it.
"""

import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import phonenumbers
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Count, Exists, F, OuterRef, TextField, Value
from django.db.models.functions import Concat
from django.utils.html import strip_tags

from accounts.models import Account, Environment
from accounts.selectors import environment_list_for_user
from demo.catalogue import TYPES
from demo.generator import Plan, Result, generate
from demo.loader import ForkedChunks, seed_logs
from logs.content import deliveries_content
from logs.models import Delivery, Event, Notification
from logs.partitions import PARTITIONED_TABLES, partition_list
from logs.payloads import event_payload
from logs.selectors import notification_timeline
from logs.services import event_record
from logs.timeline import delivery_events

END = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
DAYS = 3
NOTIFICATIONS = 2_000
CHANNELS_BY_TYPE = {kind.key: set(kind.channels) for kind in TYPES}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
PROVIDER_MESSAGE_ID = {
    "amazon_ses": re.compile(
        r"^0100[0-9a-f]{12}-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}-000000$"
    ),
    "sendgrid": re.compile(r"^[A-Za-z0-9_-]{22}\.recvd-"),
    "smtp": re.compile(r"^<[0-9a-f]{20}@"),
    ("twilio", "sms"): re.compile(r"^SM[0-9a-f]{32}$"),
    ("twilio", "call"): re.compile(r"^CA[0-9a-f]{32}$"),
    ("sandbox", "email"): re.compile(r"^sbx_em_[0-9a-f]{32}$"),
    ("sandbox", "sms"): re.compile(r"^SMsbx[0-9a-f]{32}$"),
    ("sandbox", "call"): re.compile(r"^CAsbx[0-9a-f]{32}$"),
}


@pytest.fixture(scope="class")
def seeded(django_db_setup, django_db_blocker):
    """2,000 notifications over 3 days in 2 environments, through the forked generator in
    chunks of 500 (so several COPY rounds), rolled back after the class."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield seed_logs(
                notifications=NOTIFICATIONS,
                days=DAYS,
                environments=2,
                seed=7,
                end=END,
                chunk_size=500,
                parallel=True,
            )
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.mark.django_db
@pytest.mark.usefixtures("seeded")
class TestSmallSeed:
    def test_counts_match_the_summary(self, seeded):
        assert seeded.notifications == NOTIFICATIONS == Notification.objects.count()
        assert seeded.deliveries == Delivery.objects.count()
        assert seeded.events == Event.objects.count()
        # ~1.3 channels per notification, ~5 events per notification, of which ~1.2 are
        # rows (the pipeline's own are folded into the notification and deliveries).
        assert 1.2 * NOTIFICATIONS < seeded.deliveries < 1.45 * NOTIFICATIONS
        assert 0.9 * NOTIFICATIONS < seeded.events < 1.6 * NOTIFICATIONS
        assert sum(seeded.statuses.values()) == NOTIFICATIONS
        assert sum(seeded.outcomes.values()) == seeded.deliveries
        assert seeded.rows == seeded.notifications + seeded.deliveries + seeded.events

    def test_environments_are_the_seed_accounts(self, seeded):
        names = ["Seed account 1 / production", "Seed account 2 / production"]
        assert seeded.environment_names == names
        assert (
            sorted(str(env) for env in Environment.objects.filter(pk__in=seeded.environment_ids))
            == names
        )
        per_env = dict(Notification.objects.values_list("environment_id").annotate(n=Count("id")))
        assert set(per_env) == set(seeded.environment_ids)
        # The first environment is the bigger tenant (weights 2:1).
        first, second = seeded.environment_ids
        assert per_env[first] > per_env[second] > NOTIFICATIONS // 5
        # Deliveries and events carry their notification's environment and day.
        for model in (Delivery, Event):
            mismatched = model.objects.exclude(
                Exists(
                    Notification.objects.filter(
                        id=OuterRef("notification_id"),
                        environment_id=OuterRef("environment_id"),
                        created_at=OuterRef("notification_created_at"),
                    )
                )
            )
            assert not mismatched.exists(), model

    def test_reusing_the_environments_by_name(self, seeded):
        summary = seed_logs(notifications=10, days=1, environments=2, seed=99, end=END)
        assert summary.environment_ids == seeded.environment_ids

    def test_every_notification_has_a_delivery_per_channel_and_one_received_event(self):
        assert not Notification.objects.exclude(
            Exists(Delivery.objects.filter(notification_id=OuterRef("id")))
        ).exists()
        # Folded into the notification, as notification_create folds an API send's.
        assert not Event.objects.filter(kind="received").exists()
        for notification in Notification.objects.all()[:50]:
            received = [
                event
                for event in notification_timeline(notification=notification)
                if event.kind == "received"
            ]
            assert [(e.channel, e.source, e.occurred_at) for e in received] == [
                ("", "api", notification.created_at)
            ]
        channels = defaultdict(set)
        for notification_id, channel in Delivery.objects.values_list("notification_id", "channel"):
            channels[notification_id].add(channel)
        for notification_id, kind in Notification.objects.values_list("id", "notification_type"):
            assert channels[notification_id] == CHANNELS_BY_TYPE[kind], kind

    def test_states_and_statuses_follow_the_status_rules(self):
        assert_consistent_with_status_rules()

    def test_status_examples(self):
        bounced = Notification.objects.filter(
            Exists(
                Delivery.objects.filter(
                    notification_id=OuterRef("id"), channel="email", state_detail="bounce"
                )
            )
        )
        assert bounced.exists()
        assert set(bounced.values_list("status", flat=True)) == {"failure"}
        not_all_delivered = Delivery.objects.filter(notification_id=OuterRef("id")).exclude(
            state="delivered"
        )
        all_delivered = Notification.objects.exclude(Exists(not_all_delivered))
        assert all_delivered.count() > NOTIFICATIONS * 0.8
        assert set(all_delivered.values_list("status", flat=True)) == {"success"}

    def test_outcome_mix(self, seeded):
        emails = Delivery.objects.filter(channel="email")
        total = emails.count()
        bounces = emails.filter(state="failed", state_detail="bounce").count()
        assert 0.01 * total < bounces < 0.06 * total
        assert emails.filter(state="delivered").count() > 0.85 * total
        sms = Delivery.objects.filter(channel="sms")
        assert sms.filter(state="delivered").count() > 0.9 * sms.count()
        assert sms.filter(state="failed", state_detail="undelivered").exists()
        assert set(sms.filter(state_detail="undelivered").values_list("error_code", flat=True)) <= {
            "30003",
            "30005",
            "30006",
        }
        calls = set(Delivery.objects.filter(channel="call").values_list("state_detail", flat=True))
        assert {"completed", "no_answer"} <= calls
        opened = Event.objects.filter(kind="engagement", sub_kind__in=["opened", "clicked"])
        assert 0.01 * total < opened.values("delivery_id").distinct().count() < 0.12 * total
        assert Event.objects.filter(kind="ignored").exists()
        assert 0.01 < seeded.statuses["failure"] / NOTIFICATIONS < 0.09

    def test_event_shapes(self, seeded):
        end = seeded.end
        assert not Event.objects.filter(occurred_at__gt=end).exists()
        assert not Event.objects.filter(recorded_at__lt=F("occurred_at")).exists()
        # Provider events name the provider, carry its event id (in the dedupe key, once: the
        # provider_event_id column is left empty) and payload.
        provider_events = Event.objects.exclude(source__in=["api", "pipeline"])
        assert provider_events.exists()
        assert set(provider_events.values_list("source", flat=True)) <= {
            "amazon_ses",
            "sandbox",
            "twilio",
        }
        # Stored as event_record stores them: compressed with their provider's dictionary
        # (logs.payloads), the jsonb column left empty.
        assert not provider_events.filter(payload_packed__isnull=True).exists()
        assert not provider_events.filter(payload__isnull=False).exists()
        # Dedupe keys are event_record's: "<source>:<provider event id>" for a provider's,
        # "received" for the request, the payload hash for the pipeline's own.
        assert not provider_events.exclude(
            dedupe_key__startswith=Concat(F("source"), Value(":"), output_field=TextField())
        ).exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM logs_event WHERE provider_event_id <> ''")
            assert cursor.fetchone() == (0,)
        # The pipeline's own rows (Ignored, Failed: the others are folded into the delivery),
        # as notifications.sending keys them (not a payload hash: a key
        # of 71 characters instead of about 12, in the row and in event_unique_dedupe).
        pipeline_keys = {
            (kind, channel, key)
            for kind, channel, key in Event.objects.filter(source="pipeline").values_list(
                "kind", "channel", "dedupe_key"
            )
        }
        assert pipeline_keys
        for kind, channel, key in pipeline_keys:
            expected = {
                "sending": f"sending:{channel}:1",
                "delivered": "in_app:delivered",
            }.get(kind, f"{kind}:{channel}")
            assert key == expected, (kind, channel, key)
        assert not Event.objects.filter(kind__in=["received", "sending", "sent"]).exists()
        assert not Event.objects.filter(kind="delivered", channel="in_app").exists()
        # Pipeline and API rows have no payload: an email's Sending envelope (the sender; the
        # recipient is the delivery's) is folded into the delivery's `sender`; every line
        # has a detail.
        assert not Event.objects.filter(
            source__in=["api", "pipeline"], payload__isnull=False
        ).exists()
        sent = Delivery.objects.exclude(sending_at=None)
        senders = set(sent.values_list("channel", "sender").distinct())
        assert ("email", settings.DEFAULT_FROM_EMAIL) in senders
        assert all((sender is None) == (channel != "email") for channel, sender in senders)
        assert set(sent.values_list("send_max_attempts", flat=True)) == {settings.SEND_MAX_ATTEMPTS}
        assert not Delivery.objects.filter(state="ignored").exclude(sending_at=None).exists()
        assert not Event.objects.filter(detail="").exists()
        # A delivery's events move forward in time in the order they were written.
        last = {}
        for delivery_id, occurred_at in (
            Event.objects.exclude(delivery_id=None)
            .order_by("id")
            .values_list("delivery_id", "occurred_at")
        ):
            assert occurred_at >= last.get(delivery_id, occurred_at)
            last[delivery_id] = occurred_at
        twilio = provider_events.filter(source="twilio", channel="sms").first()
        assert (
            event_payload(twilio)["MessageSid"]
            == Delivery.objects.get(pk=twilio.delivery_id).provider_message_id
        )

    def test_replayed_events_are_recognised_as_duplicates(self):
        """A provider's callback or a pipeline step recorded again through event_record
        finds the seeded event and changes nothing."""
        provider_event = Event.objects.exclude(source__in=["api", "pipeline"]).first()
        # A Sending folded into its delivery, as the timeline derives it (no id).
        delivery = Delivery.objects.exclude(sending_at=None).first()
        notification = Notification.objects.get(id=delivery.notification_id)
        [pipeline_event] = [
            event
            for event in notification_timeline(notification=notification)
            if event.kind == "sending" and event.channel == delivery.channel
        ]
        for row in (provider_event, pipeline_event):
            before = Event.objects.filter(notification_id=row.notification_id).count()
            recorded = event_record(
                notification_id=row.notification_id,
                notification_created_at=row.notification_created_at,
                kind=row.kind,
                sub_kind=row.sub_kind,
                channel=row.channel,
                source=row.source,
                occurred_at=row.occurred_at,
                # The pipeline names its step's key; a provider its event id.
                dedupe_key=row.dedupe_key if row.source == "pipeline" else "",
                provider_event_id=(
                    ""
                    if row.source == "pipeline"
                    else row.dedupe_key.removeprefix(f"{row.source}:")
                ),
                payload=event_payload(row),
            )
            assert not recorded.created, row.source
            assert recorded.event.id == row.id
            assert Event.objects.filter(notification_id=row.notification_id).count() == before

    def test_rows_spread_over_the_days_in_day_partitions(self, seeded):
        assert seeded.start == END - timedelta(days=DAYS) and seeded.end == END
        created = Notification.objects.values_list("created_at", flat=True)
        assert min(created) >= seeded.start and max(created) < seeded.end
        per_day = defaultdict(int)
        for moment in created:
            per_day[(moment - seeded.start) // timedelta(days=1)] += 1
        assert sorted(per_day) == list(range(DAYS))
        assert min(per_day.values()) > NOTIFICATIONS / DAYS * 0.7
        # The log's tables (the webhook inbox is partitioned by the day callbacks arrive).
        for table in [t for t in PARTITIONED_TABLES if t.startswith("logs_")]:
            partitions = partition_list(table)
            default = next(p for p in partitions if p.is_default)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
                counts = dict(cursor.fetchall())
            assert default.name not in counts, f"{table}: rows in DEFAULT"
            days = {p.name: p for p in partitions if not p.is_default}
            assert set(counts) <= set(days)
            # The window [END - 3 days, END) touches 4 calendar days.
            assert len(counts) == DAYS + 1, table

    def test_recipients_look_real(self):
        rows = list(Notification.objects.values_list("user_id", "email", "number", "timezone"))
        users = {user_id for user_id, *_ in rows}
        # A pool of about notifications / 20 users: most users get several notifications.
        assert NOTIFICATIONS / 40 < len(users) <= NOTIFICATIONS / 20 + 2
        assert all(re.fullmatch(r"usr_[0-9a-f]{16}", user_id) for user_id in users)
        for _, email, number, zone in rows:
            assert EMAIL.match(email), email
            assert E164.match(number), number
            assert phonenumbers.is_valid_number(phonenumbers.parse(number)), number
            assert zone
        emails = {email for _, email, *_ in rows}
        lower = sum(email == email.lower() for email in emails)
        assert 0.7 * len(emails) < lower < len(emails)  # mostly lower case, some capitals
        countries = {number[:3] for *_, number, _ in rows}
        assert {"+44", "+49"} <= countries and any(c.startswith("+1") for c in countries)

    def test_request_is_a_send_body(self):
        for notification in Notification.objects.all()[:300]:
            request = notification.request
            assert request["notificationId"] == notification.notification_type
            assert request["user"] == {
                "id": notification.user_id,
                "email": notification.email,
                "number": notification.number,
            }
            assert request["mergeTags"] == notification.merge_tags
            assert notification.merge_tags["firstName"]

    def test_deliveries_carry_content_and_unique_provider_ids(self):
        ids = list(
            Delivery.objects.exclude(provider_message_id="").values_list(
                "provider", "channel", "provider_message_id"
            )
        )
        assert len({pmid for *_, pmid in ids}) == len(ids)
        for provider, channel, pmid in ids:
            pattern = PROVIDER_MESSAGE_ID.get(provider) or PROVIDER_MESSAGE_ID[(provider, channel)]
            assert pattern.match(pmid), (provider, channel, pmid)
        # Only deliveries the provider never accepted (ignored, refused) lack an id.
        assert (
            not Delivery.objects.filter(provider_message_id="", state="delivered")
            .exclude(channel="in_app")
            .exists()
        )
        emails = list(Delivery.objects.filter(channel="email")[:200])
        for delivery, content in zip(emails, deliveries_content(emails), strict=True):
            assert content.subject and content.text
            assert content.html.startswith("<!DOCTYPE html>") and 300 < len(content.html) < 1500
            # The templates are HTML only: the text part is derived as dispatch derives it.
            assert content.text == strip_tags(content.html).strip()
            # Stored as dispatch stores it: compressed with the template as dictionary.
            assert delivery.content_packed and delivery.content_dictionary_id
            # The notification's own address: not stored twice (as dispatch stores it).
            notification = Notification.objects.get(pk=delivery.notification_id)
            assert delivery.destination == ""
            assert delivery.destination_of(notification) == notification.email
        sms = list(Delivery.objects.filter(channel="sms")[:200])
        for delivery, content in zip(sms, deliveries_content(sms), strict=True):
            assert content.text and not content.html
            notification = Notification.objects.get(pk=delivery.notification_id)
            assert E164.match(delivery.destination_of(notification))
        assert not Delivery.objects.filter(state="failed", error_message="").exists()

    def test_samples_are_real_values_of_their_environment(self, seeded):
        for env_id, sample in seeded.samples.items():
            assert sample.environment_id == env_id
            assert sample.tracking_ids and sample.user_ids and sample.provider_message_ids
            in_env = Notification.objects.filter(environment_id=env_id)
            assert in_env.filter(id__in=sample.tracking_ids).count() == len(sample.tracking_ids)
            assert set(sample.user_ids) <= set(in_env.values_list("user_id", flat=True))
            assert set(sample.emails) <= set(in_env.values_list("email", flat=True))
            assert set(sample.numbers) <= set(in_env.values_list("number", flat=True))
            assert Delivery.objects.filter(
                environment_id=env_id, provider_message_id__in=sample.provider_message_ids
            ).count() == len(sample.provider_message_ids)

    def test_sequences_continue_after_the_seeded_ids(self):
        # Past every seeded id (no collision with ordinary inserts), and the unused part of
        # the reservation (8+ ids per notification) handed back. Other tests of the class
        # may have drawn a few ids: sequences are not rolled back.
        with connection.cursor() as cursor:
            for table in ("logs_delivery", "logs_event"):
                cursor.execute(f"SELECT max(id) FROM {table}")
                highest = cursor.fetchone()[0]
                cursor.execute(f"SELECT nextval('{table}_id_seq')")
                assert highest < cursor.fetchone()[0] < highest + 200, table


def assert_consistent_with_status_rules() -> None:
    """Every delivery's state and times, and every notification's status, are what
    logs.status derives from the events written."""
    status = pytest.importorskip("logs.status")
    facts = defaultdict(list)
    for delivery_id, kind, sub_kind, occurred_at, key in Event.objects.exclude(
        delivery_id=None
    ).values_list("delivery_id", "kind", "sub_kind", "occurred_at", "dedupe_key"):
        facts[delivery_id].append(
            status.EventFact(kind=kind, sub_kind=sub_kind, occurred_at=occurred_at, key=key)
        )
    channels = defaultdict(list)
    for delivery in Delivery.objects.all():
        # And the events folded into it (logs.timeline).
        delivered_rows = any(fact.kind == "delivered" for fact in facts[delivery.id])
        for event in delivery_events(
            None, delivery, delivered_rows=delivered_rows, make=SimpleNamespace
        ):
            facts[delivery.id].append(
                status.EventFact(
                    kind=event.kind, occurred_at=event.occurred_at, key=event.dedupe_key
                )
            )
        outcome = status.delivery_outcome(
            facts[delivery.id], reports_delivery=delivery.reports_delivery
        )
        seen = (
            delivery.state,
            delivery.state_detail,
            delivery.sent_at,
            delivery.delivered_at,
            delivery.failed_at,
        )
        expected = (
            outcome.state,
            outcome.sub_kind,
            outcome.sent_at,
            outcome.delivered_at,
            outcome.failed_at,
        )
        assert seen == expected, delivery.id
        channels[delivery.notification_id].append((delivery.state, delivery.reports_delivery))
    for notification in Notification.objects.all():
        expected_status = status.notification_status(channels[notification.id])
        assert notification.status == expected_status, notification.id


def _plan(**overrides) -> Plan:
    start = int(END.timestamp() * 1000)
    values = {
        "notifications": 1_500,
        "seed": 3,
        "start_ms": start - 2 * 86_400_000,
        "end_ms": start,
        "environment_ids": [11, 12, 13],
        "delivery_base": 1,
        "event_base": 1,
        "chunk_size": 400,
    }
    return Plan(**{**values, **overrides})


def _rows(chunks) -> tuple[list, Result]:
    rows = []
    result = None
    for item in chunks:
        if isinstance(item, Result):
            result = item
        else:
            rows.append(item)
    return rows, result


def test_generation_is_deterministic_inline_or_forked():
    inline, inline_result = _rows(generate(_plan()))
    forked, forked_result = _rows(ForkedChunks(_plan()))
    assert inline == forked
    assert inline_result.statuses == forked_result.statuses
    assert inline_result.samples == forked_result.samples
    other, _ = _rows(generate(_plan(seed=4)))
    assert other != inline
    assert [n for n, *_ in inline] == [400, 400, 400, 300]


def test_generated_text_is_valid_copy_input():
    rows, _ = _rows(generate(_plan(notifications=300, chunk_size=300)))
    (_, deliveries, events, notification_text, delivery_text, event_text) = rows[0]
    for text, columns, count in (
        (notification_text, 14, 300),
        (delivery_text, 26, deliveries),  # and the 4 columns the pipeline events fold into
        (event_text, 16, events),
    ):
        lines = text.decode().split("\n")
        assert lines.pop() == ""
        assert len(lines) == count
        assert {line.count("\t") for line in lines} == {columns - 1}
    for line in notification_text.decode().splitlines():
        fields = line.split("\t")
        # merge_tags NULL (COPY's \N): they are the request's, not stored twice.
        assert fields[7] == "\\N"
        json.loads(fields[8])


@pytest.mark.django_db(transaction=True)
def test_parallel_writers_outside_a_transaction():
    """The command's path: chunks committed by two connections of their own. Four
    environments, so the fourth (plain SMTP, which never reports delivery) is in too."""
    summary = seed_logs(
        notifications=3_000, days=2, environments=4, seed=11, chunk_size=500, writers=2
    )
    assert Notification.objects.count() == summary.notifications == 3_000
    assert Delivery.objects.count() == summary.deliveries
    assert Event.objects.count() == summary.events
    assert len(summary.environment_ids) == 4
    smtp = Delivery.objects.filter(provider="smtp")
    assert smtp.exists() and not smtp.filter(reports_delivery=True).exists()
    assert smtp.filter(state="sent").count() > 0.9 * smtp.count()
    assert_consistent_with_status_rules()
    with connection.cursor() as cursor:
        # The sequences were handed back right past the seeded ids.
        for table in ("logs_delivery", "logs_event"):
            cursor.execute(f"SELECT max(id) FROM {table}")
            highest = cursor.fetchone()[0]
            cursor.execute(f"SELECT nextval('{table}_id_seq')")
            assert cursor.fetchone()[0] == highest + 1
        # The tables were analysed.
        cursor.execute(
            "SELECT count(*) FROM pg_stats WHERE tablename IN "
            "('logs_notification', 'logs_delivery', 'logs_event')"
        )
        assert cursor.fetchone()[0] > 0
        # Django's own connection is left as it was.
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"


@pytest.mark.django_db
def test_seed_logs_command_reports_what_it_made():
    out = io.StringIO()
    call_command("seed_logs", notifications=300, days=1, environments=1, seed=5, stdout=out)
    text = out.getvalue()
    assert "Seeded 300 notifications" in text and "rows/s" in text
    assert "Environment" in text and "Seed account 1 / production" in text
    assert "e.g. tracking id: " in text
    assert "email delivered" in text
    assert Notification.objects.count() == 300


@pytest.mark.django_db
def test_seed_logs_account_fills_what_the_demo_support_user_sees():
    """The support user of the Demo account finds the notifications seed_logs --account Demo
    writes (as make run's demo_populate does) in the environments the console shows them."""
    bootstrap = io.StringIO()
    call_command("bootstrap_demo", stdout=bootstrap)
    assert "demo_populate" in bootstrap.getvalue()
    out = io.StringIO()
    call_command("seed_logs", notifications=200, days=1, account="Demo", seed=5, stdout=out)
    assert "Environment" in out.getvalue() and "Demo / production" in out.getvalue()
    support = get_user_model().objects.get(username="support")
    visible = environment_list_for_user(user=support)
    assert Notification.objects.filter(environment__in=visible).count() == 200
    assert not Notification.objects.exclude(environment__in=visible).exists()
    assert not Environment.objects.filter(account__name__startswith="Seed account").exists()


@pytest.mark.django_db
def test_seed_logs_account_without_environment_gets_production():
    account = Account.objects.create(name="Acme")
    call_command("seed_logs", notifications=50, days=1, account="Acme", stdout=io.StringIO())
    environment = Environment.objects.get(account=account)
    assert environment.name == "production"
    assert Notification.objects.filter(environment=environment).count() == 50


@pytest.mark.django_db
def test_seed_logs_unknown_account_says_what_to_do():
    with pytest.raises(CommandError, match=r"No account is called 'Nope'.*bootstrap_demo"):
        call_command("seed_logs", notifications=10, days=1, account="Nope", stdout=io.StringIO())
    assert not Notification.objects.exists()
    assert not Account.objects.filter(name="Nope").exists()


@pytest.mark.django_db
def test_a_seed_leaves_the_statement_limit_of_its_connection_as_it_was(settings):
    # The seed lifts DATABASE_STATEMENT_TIMEOUT for its own statements, then restores it.
    seed_logs(notifications=50, days=1, environments=1, seed=3, parallel=False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        assert int(cursor.fetchone()[0]) == settings.DATABASE_STATEMENT_TIMEOUT > 0
