"""The outbound event stream: signed events delivered per second by Celery workers to a
local receiver (a threaded HTTP server in this process that verifies every signature with
standardwebhooks), as a ratio to the floor's requests per second.

Setup records the events (their outbox rows are written with them) while no worker runs;
the measure enqueues them all and times until none is pending."""

import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from django.core.cache import cache
from standardwebhooks import Webhook

from accounts.models import Account
from accounts.services import environment_create
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from bench.send import _celery_to, _queue_empty, _redis_url
from bench.server import ROOT, stop_process_group
from logs.services import event_record, notification_create
from stream.models import MessageState, StreamMessage
from stream.services.outbox import drain_flag, drains_enqueue
from stream.services.subscriptions import subscription_create

KINDS = ("sending", "sent", "delivered")
OUTBOUND_QUEUE = "outbound"  # where stream drains go (CELERY_TASK_ROUTES)


class _Receiver:
    def __init__(self):
        self.secret = ""
        self.verified = 0
        self.rejected = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    Webhook(receiver.secret).verify(body, headers)
                    ok = True
                except Exception:
                    ok = False
                with receiver.lock:
                    receiver.verified += ok
                    receiver.rejected += not ok
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # A subscriber's backlog of connections: at 5 (socketserver's default), the
            # drains' 2 x STREAM_DRAIN_CONCURRENCY connections opened at once could be
            # refused, and a failed POST waits for the sweeper (not run here) for its retry.
            request_queue_size = 128
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@register
class StreamThroughput(Scenario):
    name = "stream.delivery"
    baseline = "floor.throughput"
    description = (
        "signed stream events delivered per second to one local subscriber, one outbound "
        "worker, in order per notification"
    )
    smoke_size = {"notifications": 20, "concurrency": 2, "timeout": 120}
    full_size = {"notifications": 1000, "concurrency": 2, "timeout": 900}

    def setup(self, run: Run) -> None:
        self.redis_url = _redis_url()
        _celery_to(self.redis_url)
        self.receiver = _Receiver()
        run.defer(self.receiver.stop)
        account, _ = Account.objects.get_or_create(name="bench-stream")
        environment = environment_create(account=account, name="stream").obj
        subscription, self.receiver.secret = subscription_create(
            environment=environment, url=self.receiver.url, kinds=list(KINDS)
        )
        for index in range(self.size["notifications"]):
            notification = notification_create(
                environment_id=environment.id, notification_type="bench", user_id=f"u{index}"
            )
            for kind in KINDS:
                event_record(
                    notification_id=notification.id, kind=kind, channel="email", source="bench"
                )
        self.subscription_id = subscription.pk
        self.ids = list(
            StreamMessage.objects.filter(subscription=subscription).values_list("id", flat=True)
        )
        # Recording queued the subscription's drain (on the outbound queue, with its flag in
        # the cache): start from empty, or the worker starts delivering before the clock does.
        _queue_empty(self.redis_url)
        run.defer(_queue_empty, self.redis_url)
        redis.Redis.from_url(self.redis_url).delete(OUTBOUND_QUEUE)
        run.defer(redis.Redis.from_url(self.redis_url).delete, OUTBOUND_QUEUE)
        cache.delete(drain_flag(subscription.pk))
        self.worker = self._worker_start(run)

    def _worker_start(self, run: Run) -> subprocess.Popen:
        log = open(run.tmpdir / "stream-worker.log", "ab")  # noqa: SIM115 (closed by defer)
        run.defer(log.close)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency",
             str(self.size["concurrency"]), "--loglevel", "WARNING", "--without-gossip",
             "--without-mingle"],
            cwd=ROOT, env=run.subprocess_env(REDIS_URL=self.redis_url), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        run.defer(stop_process_group, worker)
        from config.celery import app

        deadline = time.monotonic() + 120
        while not app.control.ping(timeout=1.0):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise BenchmarkError("the stream worker did not start (stream-worker.log)")
        return worker

    def measure(self, run: Run) -> Measurement:
        started = time.monotonic()
        drains_enqueue([self.subscription_id])
        pending = StreamMessage.objects.filter(pk__in=self.ids, state=MessageState.PENDING)
        deadline = started + self.size["timeout"]
        while pending.exists():
            if time.monotonic() > deadline:
                raise BenchmarkError(f"{pending.count()} stream messages still pending")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        if self.receiver.rejected or self.receiver.verified != len(self.ids):
            raise BenchmarkError(
                f"receiver verified {self.receiver.verified} of {len(self.ids)} events, "
                f"rejected {self.receiver.rejected}"
            )
        rate = len(self.ids) / elapsed
        return Measurement(
            median=rate,
            p95=rate,
            unit="requests/s",  # one signed POST per event: comparable with the floor
            n=1,
            higher_is_better=True,
            note=f"{len(self.ids)} events, in order per notification, in {elapsed:.1f} s",
        )
