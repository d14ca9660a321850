"""Evaluation from the per-minute counters: each kind of rule, the window, the tenant,
hysteresis, and notices that retry without holding up an evaluation."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts.evaluation import alert_rules_evaluate
from alerts.models import Alert, AlertNotice, MinuteCount
from alerts.notices import alert_notice_send, alert_notices_sweep
from alerts.services import minute_counts_purge
from alerts.tasks import alert_rules_evaluate_task
from alerts.vocabulary import NoticeState, RuleKind
from logs.models import Event
from tests.alerts.helpers import record, rule
from tests.factories import EnvironmentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

BOUNCE = ("failed", "email", "bounce")
DELIVERED = ("delivered", "email", "")
SENT = ("sent", "email", "")


@pytest.fixture
def environment():
    return EnvironmentFactory()


@pytest.fixture
def frozen_clock():
    """The clock stopped in the middle of the current minute: a test that records events and
    then evaluates minutes after `now` sees them in the minute it expects, wherever the real
    minute boundary falls while it runs."""
    with time_machine.travel(timezone.now().replace(second=30, microsecond=0), tick=False):
        yield


def test_counters_match_the_log_per_kind(environment):
    for _ in range(20):  # more notifications than shards: some share a counter row
        record(environment, SENT, BOUNCE)
    record(environment, SENT, DELIVERED)
    counted = MinuteCount.objects.filter(environment=environment)
    for kind in ("sent", "failed", "delivered"):
        in_log = Event.objects.filter(environment=environment, kind=kind).count()
        assert counted.filter(kind=kind).aggregate(n=Sum("count"))["n"] == in_log


def test_a_pass_reads_the_counters_never_the_log(environment):
    rule(environment, min_notifications=1)
    rule(environment, name="Silence", kind=RuleKind.DELIVERY_SILENCE, min_notifications=1,
         threshold_percent=None)  # fmt: skip
    rule(environment, name="Count", kind=RuleKind.EVENT_COUNT, event="failed:bounce",
         max_events=0, threshold_percent=None)  # fmt: skip
    record(environment, SENT, BOUNCE)
    with CaptureQueriesContext(connection) as queries:
        assert alert_rules_evaluate()["fired"] == 3
    statements = [query["sql"] for query in queries.captured_queries]
    assert [sql for sql in statements if "logs_" in sql] == []
    assert [sql for sql in statements if "alerts_minutecount" in sql] != []


def test_beat_runs_the_evaluation_every_minute(environment, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["alerts-rules-evaluate"]
    assert (entry["task"], entry["schedule"]) == (alert_rules_evaluate_task.name, 60.0)
    rule(environment, min_notifications=1)
    record(environment, BOUNCE)
    outcomes = alert_rules_evaluate_task.apply().get()
    assert outcomes["fired"] == 1 and Alert.objects.count() == 1


def test_failure_rate_needs_its_minimum_of_outcomes(environment):
    rule(environment, min_notifications=3)
    record(environment, BOUNCE)
    record(environment, BOUNCE)
    assert alert_rules_evaluate()["ok"] == 1
    record(environment, BOUNCE)
    assert alert_rules_evaluate(now=timezone.now() + timedelta(minutes=1))["fired"] == 1


def test_delivery_delay_is_not_a_failure_and_other_channels_and_types_do_not_count(environment):
    rule(environment, notification_type="order_tracking", min_notifications=1)
    record(environment, ("failed", "email", "delivery_delay"), DELIVERED)
    record(environment, ("failed", "email", "delivery_delay"))  # still waiting
    record(environment, ("failed", "sms", "undelivered"))
    record(environment, BOUNCE, notification_type="password_reset")
    record(EnvironmentFactory(), BOUNCE)  # another tenant
    assert alert_rules_evaluate()["ok"] == 1


def test_event_count_fires_above_k_of_the_sub_kind(environment):
    rule(environment, kind=RuleKind.EVENT_COUNT, event="failed:bounce", max_events=2,
         threshold_percent=None)  # fmt: skip
    for _ in range(2):
        record(environment, BOUNCE, ("failed", "sms", "undelivered"))
    assert alert_rules_evaluate()["ok"] == 1
    record(environment, BOUNCE)
    assert alert_rules_evaluate(now=timezone.now() + timedelta(minutes=1))["fired"] == 1
    assert Alert.objects.get().fired_value == 3


@pytest.mark.usefixtures("frozen_clock")
def test_no_delivered_while_sends_continue(environment):
    rule(environment, kind=RuleKind.DELIVERY_SILENCE, min_notifications=2, threshold_percent=None)
    record(environment, SENT)
    record(environment, SENT)
    now = timezone.now()
    assert evaluate(now=now) == "fired"
    record(environment, DELIVERED)
    assert evaluate(now=now + timedelta(minutes=1)) == "clearing"


@pytest.mark.usefixtures("frozen_clock")
def test_the_window_forgets_older_minutes(environment):
    rule(environment, window_minutes=5, min_notifications=1)
    record(environment, BOUNCE)
    now = timezone.now()
    assert evaluate(now=now + timedelta(minutes=4)) == "fired"
    assert evaluate(now=now + timedelta(minutes=5)) == "clearing"


@pytest.mark.usefixtures("frozen_clock")
def test_fires_once_stays_firing_and_resolves_after_two_clear_minutes(environment):
    rule(environment, min_notifications=1, window_minutes=3)
    record(environment, BOUNCE)
    now = timezone.now()
    outcomes = [evaluate(now=now + timedelta(minutes=m)) for m in range(7)]
    # Minutes 0-2 see the bounce; 3 and 4 are clear (resolves at the second); then quiet.
    assert outcomes == ["fired", "firing", "firing", "clearing", "resolved", "ok", "ok"]
    assert Alert.objects.count() == 1
    assert AlertNotice.objects.filter(transition="fired").count() == 1
    assert AlertNotice.objects.filter(transition="resolved").count() == 1


@pytest.mark.usefixtures("frozen_clock")
def test_a_clear_minute_between_firing_ones_does_not_resolve(environment):
    rule(environment, min_notifications=1, window_minutes=1)
    now = timezone.now()
    record(environment, BOUNCE)
    assert evaluate(now=now) == "fired"
    assert evaluate(now=now + timedelta(minutes=1)) == "clearing"
    record(environment, BOUNCE)
    # The new bounce is counted in the real current minute: evaluate at it.
    later = timezone.now() + timedelta(minutes=2)
    MinuteCount.objects.update(minute=later.replace(second=0, microsecond=0))
    assert evaluate(now=later) == "firing"
    assert evaluate(now=later + timedelta(minutes=1)) == ("clearing")
    assert Alert.objects.get().resolved_at is None


def test_a_second_pass_in_the_same_minute_changes_nothing(environment):
    rule(environment, min_notifications=1)
    record(environment, BOUNCE)
    now = timezone.now()
    assert alert_rules_evaluate(now=now)["fired"] == 1
    assert alert_rules_evaluate(now=now)["skipped"] == 1
    assert AlertNotice.objects.count() == 1


def test_a_failing_webhook_is_retried_until_it_answers(
    environment, slack, settings, django_capture_on_commit_callbacks
):
    # In-process tasks cannot wait for a countdown: the sweeper after each pass retries.
    settings.ALERTS_NOTICE_RETRY_BACKOFF_SECONDS = 0
    rule(environment, min_notifications=1, email_recipients="", webhook_url=slack.url)
    slack.failures = [500, 503]
    record(environment, BOUNCE)
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_rules_evaluate()["fired"] == 1  # the failing notice does not fail it
    notice = AlertNotice.objects.get()
    assert (notice.state, notice.attempts, notice.last_error) == (
        NoticeState.PENDING,
        1,
        "webhook answered 500",
    )
    assert alert_notices_sweep() == 1  # attempt 2: 503
    assert alert_notices_sweep() == 1  # attempt 3: accepted
    assert alert_notices_sweep() == 0
    notice.refresh_from_db()
    assert (notice.state, notice.attempts, len(slack.posts)) == (NoticeState.SENT, 3, 1)


def test_a_notice_gives_up_after_its_attempts_and_says_why_without_the_url(
    environment, slack, settings, django_capture_on_commit_callbacks
):
    settings.ALERTS_NOTICE_RETRY_BACKOFF_SECONDS = 0
    settings.ALERTS_NOTICE_MAX_ATTEMPTS = 2
    rule(environment, min_notifications=1, email_recipients="", webhook_url=slack.url)
    slack.failures = [500, 500, 500]
    record(environment, BOUNCE)
    with django_capture_on_commit_callbacks(execute=True):
        alert_rules_evaluate()
    alert_notices_sweep()
    assert alert_notices_sweep() == 0
    notice = AlertNotice.objects.get()
    assert (notice.state, notice.attempts) == (NoticeState.FAILED, 2)
    assert notice.last_error == "webhook answered 500" and slack.url not in notice.last_error


def test_a_claimed_notice_is_not_sent_twice(environment, slack, django_capture_on_commit_callbacks):
    rule(environment, min_notifications=1, email_recipients="", webhook_url=slack.url)
    record(environment, BOUNCE)
    with django_capture_on_commit_callbacks(execute=False):
        alert_rules_evaluate()
    notice = AlertNotice.objects.get()
    AlertNotice.objects.filter(id=notice.id).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)  # another sender holds it
    )
    assert alert_notice_send(notice_id=notice.id) is True and slack.posts == []
    AlertNotice.objects.filter(id=notice.id).update(next_attempt_at=timezone.now())
    assert alert_notice_send(notice_id=notice.id) is True
    assert alert_notice_send(notice_id=notice.id) is True
    assert len(slack.posts) == 1


def test_disabled_rules_are_not_evaluated(environment):
    rule(environment, min_notifications=1, enabled=False)
    record(environment, BOUNCE)
    assert alert_rules_evaluate() == {}


def test_old_counter_rows_are_purged(environment):
    record(environment, BOUNCE)  # its Received and its Failed
    assert minute_counts_purge(now=timezone.now() + timedelta(hours=12)) == 0
    assert minute_counts_purge(now=timezone.now() + timedelta(days=2)) == 2
    assert not MinuteCount.objects.exists()


def evaluate(*, now) -> str:
    """The outcome of a pass for the only rule there is."""
    [(outcome, count)] = alert_rules_evaluate(now=now).items()
    assert count == 1
    return outcome
