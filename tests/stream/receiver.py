"""A subscriber's endpoint for the tests: a real HTTP server on a free port, in a thread,
that verifies every request with standardwebhooks exactly as a subscriber would."""

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """`up` False answers 503 (a subscriber having a bad day); `delay` seconds are slept
    before answering (a subscriber that times out), plus up to `jitter` seconds at random
    (answers that come back out of the order they were sent in); `failing` holds the
    tracking ids of notifications whose events it answers 503. `received` holds every
    verified body in arrival order; `rejected` counts requests whose signature failed;
    `most_in_flight` is the most requests it was answering at once, and
    `most_in_flight_of_a_notification` the most of one notification's events."""

    def __init__(self):
        self.secret: str | None = None
        self.up = True
        self.status = 503  # what it answers while down
        self.delay = 0.0
        self.jitter = 0.0
        self.failing: set[str] = set()
        self.received: list[dict] = []
        self.requests: list[dict] = []  # headers of every request, verified or not
        self.rejected = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.in_flight_by_notification: dict[str | None, int] = {}
        self.most_in_flight_of_a_notification = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tracking_id = _tracking_id(self.body)
                by_notification = receiver.in_flight_by_notification
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    by_notification[tracking_id] = by_notification.get(tracking_id, 0) + 1
                    receiver.most_in_flight_of_a_notification = max(
                        receiver.most_in_flight_of_a_notification, by_notification[tracking_id]
                    )
                try:
                    self._answer(tracking_id)
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1
                        by_notification[tracking_id] -= 1

            def _answer(self, tracking_id):
                body = self.body
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append(headers)
                    delay = receiver.delay + random.uniform(0, receiver.jitter)
                time.sleep(delay)  # outside the lock: the other handlers go on
                with receiver.lock:
                    if not receiver.up or tracking_id in receiver.failing:
                        self.send_response(receiver.status)
                        self.end_headers()
                        return
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                    except Exception:
                        receiver.rejected += 1
                        self.send_response(401)
                        self.end_headers()
                        return
                    receiver.received.append(
                        {"id": headers["webhook-id"], "body": payload, "raw": json.loads(body)}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def bodies(self) -> list[dict]:
        with self.lock:
            return [item["body"] for item in self.received]


def _tracking_id(body: bytes) -> str | None:
    try:
        return json.loads(body)["data"]["trackingId"]
    except (ValueError, KeyError, TypeError):
        return None
