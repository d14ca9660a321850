"""Saying when background work is not happening: the heartbeats the workers and beat write,
the rule that reads them (config/heartbeat.py), the banner every console page shows staff,
and /readyz. A real browser test at the end: the banner as support staff see it."""

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from config import heartbeat
from config.heartbeat import BEAT, QUEUES, heartbeat_key, heartbeat_write, pauses_find

NOW = 1_800_000_000.0


def find(**heartbeats):
    """pauses_find with every part fresh unless given, nothing queued, watched for an hour."""
    values = dict.fromkeys((BEAT, *QUEUES), NOW - 5) | heartbeats
    return pauses_find(
        heartbeats=values,
        queue_lengths={"celery": 0, "outbound": 0},
        watched_since=NOW - 3600,
        now=NOW,
        silent_after=60,
        backlog_limit=1000,
    )


def test_fresh_heartbeats_mean_nothing_is_paused():
    assert find() == ()


def test_a_worker_silent_for_over_a_minute_pauses_callbacks_since_its_last_heartbeat():
    (pause,) = find(celery=NOW - 61)

    assert pause.part == "celery"
    assert pause.paused == "Sends, callbacks, alerts and insights are paused"
    assert pause.reason == "no worker"
    assert pause.since == datetime.fromtimestamp(NOW - 61, UTC)


def test_a_worker_silent_for_59_seconds_is_not_yet_reported():
    assert find(celery=NOW - 59) == ()


def test_beat_and_the_outbound_worker_are_named_when_silent():
    pauses = {pause.part: pause.reason for pause in find(beat=NOW - 90, outbound=NOW - 120)}

    assert pauses == {"beat": "no beat", "outbound": "no outbound worker"}


def test_a_part_that_never_reported_counts_from_when_the_console_started_watching():
    never = pauses_find(
        heartbeats=dict.fromkeys((BEAT, *QUEUES)),
        queue_lengths={},
        watched_since=NOW - 30,
        now=NOW,
        silent_after=60,
        backlog_limit=1000,
    )
    assert never == ()  # a fresh install's first minute: no false alarm

    later = pauses_find(
        heartbeats=dict.fromkeys((BEAT, *QUEUES)),
        queue_lengths={},
        watched_since=NOW - 300,
        now=NOW,
        silent_after=60,
        backlog_limit=1000,
    )
    assert {pause.part for pause in later} == {"beat", "celery", "outbound"}
    assert {pause.since for pause in later} == {datetime.fromtimestamp(NOW - 300, UTC)}


def test_a_long_queue_is_behind_even_while_its_heartbeat_is_fresh():
    (pause,) = pauses_find(
        heartbeats=dict.fromkeys((BEAT, *QUEUES), NOW - 5),
        queue_lengths={"celery": 1204, "outbound": 3},
        watched_since=NOW - 3600,
        now=NOW,
        silent_after=60,
        backlog_limit=1000,
    )
    assert pause.part == "celery"
    assert pause.reason == "the queue is behind (1,204 tasks waiting)"
    assert pause.paused == "Sends, callbacks, alerts and insights are delayed"
    assert pause.since is None


# Against Redis: the heartbeats as written by the worker's task and beat's scheduler.


@pytest.fixture
def background(redis_url):
    """REDIS_URL set for this test, the heartbeat keys and the status cache cleared."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [heartbeat_key(part) for part in (BEAT, *QUEUES)] + [heartbeat.WATCHED_SINCE]
    client.delete(*keys, *QUEUES)
    heartbeat._cache.clear()
    with override_settings(REDIS_URL=redis_url):
        yield client
    client.delete(*keys)
    heartbeat._cache.clear()


def all_fresh():
    for part in (BEAT, *QUEUES):
        heartbeat_write(part)


def silent(*parts, seconds=125):
    for part in parts:
        heartbeat_write(part, at=time.time() - seconds)


def test_the_worker_task_and_beats_tick_write_their_heartbeats(background):
    from celery import Celery

    from config.tasks import worker_heartbeat_task

    worker_heartbeat_task("outbound")
    scheduler = heartbeat.Scheduler(app=Celery(set_as_current=False), lazy=True)
    scheduler.tick()

    assert background.get(heartbeat_key("celery")) is None  # only the queue it was sent to
    assert abs(float(background.get(heartbeat_key("outbound"))) - time.time()) < 5
    assert abs(float(background.get(heartbeat_key("beat"))) - time.time()) < 5


def test_the_status_is_read_once_and_cached_for_a_few_seconds(background):
    all_fresh()
    assert heartbeat.background_status(fresh=True).ok
    silent("celery")

    assert heartbeat.background_status().ok  # the cached answer, no Redis round trip
    assert not heartbeat.background_status(fresh=True).ok


@pytest.mark.django_db
def test_readyz_is_degraded_naming_the_silent_worker_while_still_answering_200(client, background):
    all_fresh()
    silent("celery")

    response = client.get("/readyz")

    assert response.status_code == 200  # the web still takes sends: keep it in rotation
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["background"].startswith(
        "Sends, callbacks, alerts and insights are paused since "
    )
    assert body["checks"]["background"].endswith(" UTC: no worker")


@pytest.mark.django_db
def test_readyz_is_ready_again_once_the_worker_reports(client, background):
    silent("celery")
    all_fresh()

    body = client.get("/readyz").json()

    assert body["status"] == "ready" and body["checks"]["background"] == "ok"


@pytest.mark.django_db
def test_every_console_page_shows_staff_the_banner_in_their_zone(client, admin_user, background):
    all_fresh()
    last = time.time() - 125
    heartbeat_write("beat", at=last)
    client.force_login(admin_user)
    client.cookies["console_tz"] = "Europe%2FParis"

    for url in ("/admin/", "/admin/logs/notification/", "/admin/auth/user/"):
        body = client.get(url).content.decode()
        local = datetime.fromtimestamp(last, ZoneInfo("Europe/Paris"))
        assert "Background work is not happening." in body, url
        assert (
            "Scheduled sends, sweeps, alert checks and insights are paused since "
            f'<time datetime="{datetime.fromtimestamp(last, UTC).isoformat()}'
        ) in body, url
        assert f"{local:%Y-%m-%d %H:%M:%S} CET</time>: no beat." in body, url


@pytest.mark.django_db
def test_no_banner_when_everything_runs_nor_for_someone_not_logged_in(
    client, admin_user, background
):
    all_fresh()
    client.force_login(admin_user)
    assert "Background work is not happening" not in client.get("/admin/").content.decode()

    silent("celery")
    heartbeat._cache.clear()
    client.logout()
    login = client.get("/admin/login/").content.decode()
    assert "Background work is not happening" not in login


@pytest.mark.django_db
def test_the_banners_check_is_one_round_trip_per_few_seconds(client, admin_user, background):
    all_fresh()
    client.force_login(admin_user)
    calls = []
    original = heartbeat._read

    def counted():
        calls.append(1)
        return original()

    heartbeat._read = counted
    try:
        for _ in range(5):
            client.get("/admin/")
    finally:
        heartbeat._read = original
    assert len(calls) <= 1


# In a real browser


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_support_staff_see_the_banner_when_the_worker_is_silent(live_server, background):
    from playwright.sync_api import expect, sync_playwright

    from accounts.models import Membership
    from tests.console.conftest import PASSWORD, console_user
    from tests.factories import EnvironmentFactory

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: install it (apt-get install chromium).")
    all_fresh()
    last = time.time() - 125
    heartbeat_write("celery", at=last)
    support = console_user(EnvironmentFactory(), role=Membership.Role.SUPPORT)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # see tests/console/test_browser.py
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(timezone_id="Europe/Paris")
            context.set_default_timeout(30_000)
            page = context.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/logs/notification/")
            page.fill("#id_username", support.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator(".zone-note")).to_have_text("Times in Europe/Paris")
            banner = page.locator(".background-banner")
            local = datetime.fromtimestamp(last, ZoneInfo("Europe/Paris"))
            expect(banner).to_contain_text(
                "Sends, callbacks, alerts and insights are paused since "
                f"{local:%Y-%m-%d %H:%M:%S} CET: no worker."
            )
            # The worker is back: within the cache's few seconds the banner is gone.
            heartbeat_write("celery")
            heartbeat._cache.clear()
            page.reload()
            expect(page.locator(".background-banner")).to_have_count(0)
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
