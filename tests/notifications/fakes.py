"""Stand-ins for what lies outside this machine, speaking the real protocols: a local HTTP
server answering Twilio's REST API (Messages.json, Calls.json) as Twilio does, and a real
SMTP server (aiosmtpd)."""

import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class TwilioStandIn:
    """Records every create request; `failures` is a queue of (status, code, message) to
    answer before succeeding (e.g. [(503, 20500, "Service Unavailable")])."""

    requests: list[dict] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)
    url: str = ""


def twilio_stand_in() -> tuple[TwilioStandIn, ThreadingHTTPServer]:
    state = TwilioStandIn()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = {
                k: v if len(v) > 1 else v[0]
                for k, v in parse_qs(self.rfile.read(length).decode()).items()
            }
            state.requests.append(
                {"path": self.path, "form": form, "auth": self.headers.get("Authorization")}
            )
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

        def _json(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    return state, server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
