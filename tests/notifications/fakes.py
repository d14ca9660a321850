"""Stand-ins for what lies outside this machine, speaking the real protocols: a local HTTP
server answering Twilio's REST API (Messages.json, Calls.json) as Twilio does, and a real
SMTP server (aiosmtpd)."""

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class TwilioStandIn:
    """Records every create request; `failures` is a queue of (status, code, message) to
    answer before succeeding (e.g. [(503, 20500, "Service Unavailable")]); a request to a
    number in `garbled` is answered at once with a 201 whose body is not Twilio's JSON (a
    proxy's page), which the Twilio client cannot read; so are the next `garble_next`
    requests, whatever their number (which is then added to `garbled`). A garbled answer waits
    (up to 5 s) until `garble_when_requests` requests have arrived, when that is set."""

    requests: list[dict] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    garbled: set[str] = field(default_factory=set)
    garble_next: int = 0
    garble_when_requests: int = 0
    url: str = ""
    # Seconds each request takes to answer, and the most requests it has had at once.
    delay: float = 0.0
    most_at_once: int = 0
    _at_once: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)


class _JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


def _serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def twilio_stand_in() -> tuple[TwilioStandIn, ThreadingHTTPServer]:
    state = TwilioStandIn()

    class Handler(_JsonHandler):
        def do_POST(self):
            form = {
                k: v if len(v) > 1 else v[0] for k, v in parse_qs(self._body().decode()).items()
            }
            state.requests.append(
                {"path": self.path, "form": form, "auth": self.headers.get("Authorization")}
            )
            with state._lock:
                if state.garble_next > 0:
                    state.garble_next -= 1
                    state.garbled.add(form.get("To"))
            if form.get("To") in state.garbled:
                deadline = time.monotonic() + 5
                while (
                    len(state.requests) < state.garble_when_requests and time.monotonic() < deadline
                ):
                    time.sleep(0.01)
                page = b"<html><body>Gateway says hello</body></html>"
                self.send_response(201)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            if state.delay:
                with state._lock:
                    state._at_once += 1
                    state.most_at_once = max(state.most_at_once, state._at_once)
                time.sleep(state.delay)
                with state._lock:
                    state._at_once -= 1
            if state.failures:
                status, code, message = state.failures.pop(0)
                self._json(
                    status,
                    {
                        "code": code,
                        "message": message,
                        "status": status,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    },
                )
                return
            prefix = "CA" if self.path.endswith("/Calls.json") else "SM"
            sid = prefix + uuid.uuid4().hex
            self._json(
                201,
                {
                    "sid": sid,
                    "status": "queued",
                    "to": form.get("To"),
                    "from": form.get("From"),
                    "account_sid": "AC" + "0" * 32,
                },
            )

    server, state.url = _serve(Handler)
    return state, server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostmarkStandIn:
    """Postmark's send API (POST /email, X-Postmark-Server-Token), as django-anymail calls it.
    `failures`: (status, Postmark ErrorCode, message) answered before succeeding."""

    requests: list[dict] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    url: str = ""
    message_ids: list[str] = field(default_factory=list)


def postmark_stand_in() -> tuple[PostmarkStandIn, ThreadingHTTPServer]:
    state = PostmarkStandIn()

    class Handler(_JsonHandler):
        def do_POST(self):
            payload = json.loads(self._body())
            state.requests.append(
                {
                    "path": self.path,
                    "json": payload,
                    "token": self.headers.get("X-Postmark-Server-Token"),
                }
            )
            if state.failures:
                status, code, message = state.failures.pop(0)
                self._json(status, {"ErrorCode": code, "Message": message})
                return
            state.message_ids.append(str(uuid.uuid4()))
            self._json(
                200,
                {
                    "To": payload.get("To"),
                    "SubmittedAt": "2026-11-27T10:00:00Z",
                    "MessageID": state.message_ids[-1],
                    "ErrorCode": 0,
                    "Message": "OK",
                },
            )

    server, url = _serve(Handler)
    state.url = f"{url}/"
    return state, server
