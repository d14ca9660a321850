"""`make run` as a newcomer meets it: scripts/run.py with no REDIS_URL starts the embedded
Redis, web, both Celery workers and beat, fills the demo, delivers a scheduled send, fires an
alert rule once its condition holds, and Ctrl-C leaves no process behind. One real run (two to
three minutes on a busy 2-core machine); its own database on the tests' PostgreSQL server and
its own Redis directory."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
from django.conf import settings

from tests.notifications.fakes import free_port

ROOT = Path(__file__).resolve().parent.parent
MARKER = "NLC_RUN_TEST_MARKER"  # every process run.py starts inherits it: found in /proc


def _server_params(dbname: str) -> dict:
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": db.get("PORT") or 5432,
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or None,
        "dbname": dbname,
    }


def _database_url(name: str) -> str:
    params = _server_params(name)
    password = f":{quote(params['password'], safe='')}" if params["password"] else ""
    host = params["host"]
    if host.startswith("/"):  # the embedded server's socket directory
        return f"postgres://{params['user']}{password}@{quote(host, safe='')}/{name}"
    return f"postgres://{params['user']}{password}@{host}:{params['port']}/{name}"


@pytest.fixture
def run_database():
    name = f"nlc_run_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(**_server_params("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(**_server_params("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bounce_rule(database: str, client_id: str) -> int:
    """An enabled "more than 0 bounces in 10 minutes" rule on the demo environment."""
    with psycopg.connect(**_server_params(database)) as conn:
        return conn.execute(
            """
            INSERT INTO alerts_alertrule (environment_id, name, kind, notification_type,
                channel, event, window_minutes, threshold_percent, min_notifications,
                max_events, email_recipients, webhook_url, enabled, created_at, clear_streak)
            SELECT id, 'Any bounce', 'event_count', '', 'email', 'failed:bounce', 10, NULL, 1,
                0, 'oncall@example.com', '', true, now(), 0
            FROM accounts_environment WHERE client_id = %s
            RETURNING id
            """,
            [client_id],
        ).fetchone()[0]


def processes_marked(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment holds the marker."""
    found = []
    needle = f"{MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(entry.name), command.strip()))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


class Output:
    """run.py's output, read by a thread, waited on line by line."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process) -> None:
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.2)
        tail = "\n".join(self.lines[-60:])
        raise AssertionError(f"run.py never printed {pattern!r} in {timeout} s:\n{tail}")


def test_make_run_runs_the_whole_product_and_ctrl_c_stops_every_process(run_database, tmp_path):
    marker = uuid.uuid4().hex
    address = f"127.0.0.1:{free_port()}"
    env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
    env |= {
        "DATABASE_URL": _database_url(run_database),
        "EMBEDDED_REDIS_DIR": str(tmp_path / "redis"),
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "RUN_ADDRESS": address,
        "PYTHONUNBUFFERED": "1",
        MARKER: marker,
    }
    run = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    output = Output(run)
    valkey_pid = 0
    try:
        credentials = output.wait_for(r"client id (\w+), client secret (\S+)", timeout=240)
        client_id, secret = credentials[1], credentials[2]
        # The demo fills in the background; the console serves meanwhile.
        output.wait_for(r"demo: seeding the Demo account, [\d,]+ / 10,000", timeout=240)
        output.wait_for(r"demo: 10,000 notifications over 7 days .* Log in as support", 240)
        base = f"http://{address}"

        # A send scheduled 5 s ahead is Delivered, through the worker, beat's outbox sweep and
        # the sandbox's callback to the web. On a quiet machine that is within 15 s; the bound
        # here is generous, so a loaded machine does not fail it: the property is that the
        # whole product runs, not its speed.
        sent_at = time.monotonic()
        due = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
        body = {
            "notificationId": "password_reset",
            "user": {"id": "usr_run", "email": "run@example.com"},
            "mergeTags": {"firstName": "Ann", "resetToken": "abc"},
            "schedule": due,
        }
        answer = httpx.post(f"{base}/{client_id}/sender", json=body, auth=(client_id, secret))
        assert answer.status_code in (200, 202), answer.text
        tracking_id = answer.json()["trackingId"]

        # An alert rule ("any bounce in 10 minutes") and its condition: two sends to the
        # sandbox's address that always bounces. Beat evaluates the rules every minute.
        rule_id = _bounce_rule(run_database, client_id)
        bounce_started = time.monotonic()
        for _ in range(2):
            bounce = body | {"user": {"id": "usr_bounce", "email": "bounce@example.com"}}
            bounce.pop("schedule")
            answer = httpx.post(f"{base}/{client_id}/sender", json=bounce, auth=(client_id, secret))
            assert answer.status_code in (200, 202), answer.text
        labels = []
        while time.monotonic() - sent_at < 120:
            log = httpx.get(f"{base}/api/v1/logs/{tracking_id}", auth=(client_id, secret))
            labels = [line["label"] for line in log.json()["timeline"]]
            if "Delivered" in labels:
                break
            time.sleep(0.5)
        assert "Delivered" in labels, (labels, "\n".join(output.lines[-40:]))
        assert log.json()["status"] == "success"

        # Both workers and beat report: their heartbeats are in the embedded Redis.
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["status"] == "ready", ready
        redis_dir = tmp_path / "redis"
        import redis

        port, password = (redis_dir / "port").read_text(), (redis_dir / "password").read_text()
        embedded = redis.Redis(host="127.0.0.1", port=int(port), password=password)
        deadline = time.monotonic() + 60
        beats = [None]
        while time.monotonic() < deadline:
            beats = embedded.mget([f"nlc:heartbeat:{p}" for p in ("beat", "celery", "outbound")])
            if all(beats):
                break
            time.sleep(1)
        assert all(beats), beats
        assert all(time.time() - float(value) < 60 for value in beats)

        # The seeded week is in the insights rollups.
        with psycopg.connect(**_server_params(run_database)) as conn:
            days, received = conn.execute(
                "SELECT count(DISTINCT date_trunc('day', hour)), sum(received) "
                "FROM insights_hourlyrollup WHERE channel = ''"
            ).fetchone()
        assert days >= 7 and received >= 10_000

        # The rule fires within 2 minutes of its condition (beat's minute, the evaluation).
        fired_at = None
        while time.monotonic() - bounce_started < 150 and fired_at is None:
            with psycopg.connect(**_server_params(run_database)) as conn:
                row = conn.execute(
                    "SELECT min(fired_at) FROM alerts_alert WHERE rule_id = %s", [rule_id]
                ).fetchone()
            fired_at = row[0]
            time.sleep(2)
        assert fired_at is not None, "\n".join(output.lines[-40:])

        running = processes_marked(marker)
        commands = " | ".join(command for _, command in running)
        for part in ("runserver", "-Q celery", "-Q outbound", " beat"):
            assert part in commands, (part, commands)
        # Valkey rewrites its process title over its environment: found by its pid file.
        valkey_pid = int((redis_dir / "valkey.pid").read_text())
        assert alive(valkey_pid)
    finally:
        # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)
        try:
            code = run.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            code = None
        left = processes_marked(marker)
        for pid, _ in left:  # never leave them to the rest of the suite
            os.kill(pid, signal.SIGKILL)
    assert code == 0, "\n".join(output.lines[-40:])
    assert left == [], json.dumps(left)
    assert not alive(valkey_pid)
    assert output.lines[-1] == "embedded Redis stopped"
