"""A subscriber's endpoint for the tests: a real HTTP server on a free port, in a thread,
that verifies every request with standardwebhooks exactly as a subscriber would."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


class Receiver:
    """`up` False answers 503 (a subscriber having a bad day); `delay` seconds are slept
    before answering (a subscriber that times out). `received` holds every verified body in
    arrival order; `rejected` counts requests whose signature failed; `most_in_flight` is the
    most requests it was answering at once."""

    def __init__(self):
        self.secret: str | None = None
        self.up = True
        self.status = 503  # what it answers while down
        self.delay = 0.0
        self.received: list[dict] = []
        self.requests: list[dict] = []  # headers of every request, verified or not
        self.rejected = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                try:
                    self._answer()
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def _answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {key.lower(): value for key, value in self.headers.items()}
                with receiver.lock:
                    receiver.requests.append(headers)
                    delay = receiver.delay
                time.sleep(delay)  # outside the lock: the other handlers go on
                with receiver.lock:
                    if not receiver.up:
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
