import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from config.celery import app as celery_app
from tests.helpers import smtp_server


@pytest.fixture
def eager_celery():
    """Tasks run in-process, as `make run` does without REDIS_URL: the pipeline's dispatch,
    the sandbox's callbacks and the alert notices go through the same calls a worker makes."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def smtp(settings):
    """A real SMTP server (aiosmtpd) that Django's email API sends alert emails to."""
    with smtp_server(settings) as inbox:
        yield inbox


@dataclass
class SlackStandIn:
    """An incoming-webhook receiver: records each POSTed JSON body; `failures` is a queue of
    statuses answered before succeeding. Answers "ok" as Slack does."""

    posts: list[dict] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def slack():
    state = SlackStandIn()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = state.failures.pop(0) if state.failures else 200
            if status == 200:
                assert self.headers.get("Content-Type") == "application/json"
                state.posts.append(json.loads(body))
            answer = b"ok" if status == 200 else b"server_error"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    yield state
    server.shutdown()
    server.server_close()
