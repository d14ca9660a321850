"""Sending: `/sender` over HTTP against the floor, and dispatch throughput through the sandbox.

send.sender: POST /{clientId}/sender (auth, validation, one statement writing the
notification, its Received event, its counters and the outbox row; the dispatch enqueued to
Redis by the process's batching thread) under the same gunicorn and load as the floor; no
worker runs, so only the request (and the enqueue, in the same processes) is measured. Every
request sends the same body. Goal: at least 0.5 of the floor's requests/s. The
send.sender.vs_floor row is that ratio measured in rounds alternating with the floor
(bench.floor.paired_with_floor), which a drifting machine moves far less.

send.dispatch: notifications fully Sent per second (two channels each: email and SMS through
the sandbox) by one Celery worker (prefork, 2 processes, as Procfile.dev), timed from the
enqueue of the first to the last outbox row gone.

Both need Redis: REDIS_URL, else redis://127.0.0.1:6379/0. The scenarios empty the Celery
queue they filled when they end.
"""

import base64
import json
import os
import subprocess
import sys
import time

import redis
from django.db import connection

from accounts.models import Account
from accounts.services import environment_create
from bench.floor import floor_start, paired_with_floor
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from bench.loadgen import run_load
from bench.server import ROOT, start_gunicorns, stop_process_group
from logs.models import Delivery
from logs.vocabulary import Channel
from notifications.models import ChannelTemplate, NotificationType, Outbox
from notifications.services.sends import dispatch_batcher, dispatch_enqueue, notification_send
from notifications.wire import send_request_parse

CELERY_QUEUE = "celery"  # Celery's default queue: a Redis list of that name


def _redis_url() -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise BenchmarkError(f"the send scenarios need Redis at {url}: {exc}") from None
    return url


def _queue_empty(url: str) -> None:
    redis.Redis.from_url(url).delete(CELERY_QUEUE)


def _celery_to(url: str) -> None:
    """This process enqueues to Redis too (never in-process, even without REDIS_URL)."""
    from config.celery import app

    app.conf.broker_url = url
    app.conf.task_always_eager = False


def _environment(name: str):
    account, _ = Account.objects.get_or_create(name=f"bench-{name}")
    created = environment_create(account=account, name=name)
    notification_type = NotificationType.objects.create(
        environment=created.obj, key="order_tracking", name="Order tracking"
    )
    ChannelTemplate.objects.create(
        notification_type=notification_type,
        channel=Channel.EMAIL,
        subject="Order {{ order_id }} shipped",
        html="<p>Hi {{ first_name }}</p>",
        text="Hi {{ first_name }}",
    )
    ChannelTemplate.objects.create(
        notification_type=notification_type, channel=Channel.SMS, text="Order {{ order_id }}"
    )
    return created.obj, created.secret


def _body(index: int) -> dict:
    return {
        "notificationId": "order_tracking",
        "user": {
            "id": f"usr_{index}",
            "email": f"u{index}@example.com",
            "number": f"+1415555{index % 10000:04d}",
        },
        "mergeTags": {"first_name": "Bench", "order_id": str(index)},
    }


def _rate_limit_unreachable(run: Run) -> None:
    """The limiter stays on (each send still counts itself in Redis, the round trip measured
    here), with a rate no run reaches: one credential sends far more than a tenant may."""
    previous = os.environ.get("SEND_API_THROTTLE_RATE")
    os.environ["SEND_API_THROTTLE_RATE"] = "1000000000/minute"  # gunicorn inherits it

    def restore() -> None:
        if previous is None:
            os.environ.pop("SEND_API_THROTTLE_RATE", None)
        else:
            os.environ["SEND_API_THROTTLE_RATE"] = previous

    run.defer(restore)


@register
class SenderThroughput(Scenario):
    name = "send.sender"
    baseline = "floor"
    description = "POST /{clientId}/sender under gunicorn (as the floor), no worker"
    smoke_size = {
        "duration": 2,
        "warmup": 0.5,
        "connections": 4,
        "workers": 2,
        "threads": 4,
        "max_requests": 20_000,
        "rounds": 1,
        "round_seconds": 1,
        "round_warmup": 0.2,
    }
    full_size = {
        "duration": 10,
        "warmup": 2,
        "connections": 16,
        "workers": 2,
        "threads": 4,
        "max_requests": 200_000,
        "rounds": 6,
        "round_seconds": 4,
        "round_warmup": 0.5,
    }

    def setup(self, run: Run) -> None:
        self.redis_url = _redis_url()
        os.environ["REDIS_URL"] = self.redis_url  # gunicorn inherits it: enqueue to Redis
        _rate_limit_unreachable(run)
        environment, secret = _environment("sender")
        token = base64.b64encode(f"{environment.client_id}:{secret}".encode()).decode()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Basic {token}"}
        self.url = [
            f"{base_url}/{environment.client_id}/sender"
            for base_url in start_gunicorns(
                run, workers=self.size["workers"], threads=self.size["threads"]
            )
        ]
        self.floor_url = floor_start(run, self.size)
        self.environment_id = environment.id
        run.defer(_queue_empty, self.redis_url)

    def measure(self, run: Run) -> dict[str, Measurement]:
        size = self.size
        result = run_load(
            self.url,
            connections=size["connections"],
            duration=size["duration"],
            warmup=size["warmup"],
            max_requests=size["max_requests"],
            method="POST",
            body=json.dumps(_body(1)),
            headers=self.headers,
            tool=run.loadgen,
        )
        if result["errors"]:
            raise BenchmarkError(
                f"{result['errors']} failed requests: {'; '.join(result['error_samples'])}"
            )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM notifications_outbox WHERE environment_id = %s",
                [self.environment_id],
            )
            (accepted,) = cursor.fetchone()
        if accepted < result["total_ok"]:
            raise BenchmarkError(f"{result['total_ok']} answers 200 but {accepted} outbox rows")
        latency = result["latency_ms"]
        throughput = result["throughput"]
        windows = throughput["windows"] or [throughput["overall"]]
        paired = paired_with_floor(
            run, row="send.sender.vs_floor", floor_url=self.floor_url, url=self.url,
            body=json.dumps(_body(1)), headers=self.headers, size=size,
        )  # fmt: skip
        return {
            "send.sender.vs_floor": paired,
            "send.sender": Measurement(
                median=latency["median"],
                p95=latency["p95"],
                unit="ms/request",
                n=latency["n"],
                baseline="floor",
                note=f"{throughput['overall']:.0f} req/s; goal: >= 0.5 of the floor's req/s",
            ),
            "send.sender.throughput": Measurement.from_samples(
                windows,
                "requests/s",
                higher_is_better=True,
                baseline="floor.throughput",
                note="per 1s window" if throughput["windows"] else "whole run (wrk)",
            ),
        }


@register
class DispatchThroughput(Scenario):
    name = "send.dispatch"
    baseline = None
    description = "notifications fully Sent per second (email + SMS, sandbox), one worker"
    smoke_size = {"notifications": 20, "timeout": 120}
    full_size = {"notifications": 500, "timeout": 600}

    def setup(self, run: Run) -> None:
        self.redis_url = _redis_url()
        _celery_to(self.redis_url)
        environment, _ = _environment("dispatch")
        self.ids = [
            notification_send(
                environment=environment, send_request=send_request_parse(body), raw_request=body
            ).notification_id
            for body in map(_body, range(self.size["notifications"]))
        ]
        # Sending them enqueued each once (if this process has a broker): start from empty,
        # once the batcher's thread has sent what it held.
        dispatch_batcher.flush()
        time.sleep(10 * dispatch_batcher.max_wait)
        _queue_empty(self.redis_url)
        run.defer(_queue_empty, self.redis_url)
        log = open(run.tmpdir / "dispatch-worker.log", "ab")  # noqa: SIM115
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=run.subprocess_env(REDIS_URL=self.redis_url),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        run.defer(stop_process_group, self.worker)
        self._worker_ready()

    def _worker_ready(self) -> None:
        from config.celery import app

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise BenchmarkError("the Celery worker exited at start (dispatch-worker.log)")
            if app.control.ping(timeout=1.0):
                return
        raise BenchmarkError("the Celery worker did not answer a ping within 120 s")

    def measure(self, run: Run) -> Measurement:
        started = time.monotonic()
        for notification_id in self.ids:
            dispatch_enqueue(notification_id)
        deadline = started + self.size["timeout"]
        while Outbox.objects.filter(notification_id__in=self.ids).exists():
            if time.monotonic() > deadline:
                raise BenchmarkError("dispatch did not finish in time")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        states = set(
            Delivery.objects.filter(notification_id__in=self.ids).values_list("state", flat=True)
        )
        if states != {"sent"}:
            raise BenchmarkError(f"deliveries ended {sorted(states)}, expected all sent")
        rate = len(self.ids) / elapsed
        return Measurement(
            median=rate,
            p95=rate,
            unit="notifications/s",
            n=1,
            higher_is_better=True,
            note=f"{len(self.ids)} notifications x 2 channels in {elapsed:.1f} s",
        )
