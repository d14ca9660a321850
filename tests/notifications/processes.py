"""Real processes for the end-to-end tests: Celery workers, gunicorn and a private Redis,
each started in its own session and stopped by its pid (never by name)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.db import connection

from tests.notifications.fakes import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def child_database_url() -> str:
    """The URL of the test database pytest-django created (what child processes must use)."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{db['NAME']}"
    )


class Processes:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}-{len(self.started)}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.started.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        if process.poll() is None:
            os.killpg(process.pid, sig)  # its own session: the process and its children
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.started:
            self.kill(process, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.log_dir.glob("*.log"))

    def worker(self, env: dict[str, str], *, beat: bool = True) -> subprocess.Popen:
        command = [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            command += ["-B"]
        return self.start("worker", command, env)

    def redis(self, port: int) -> subprocess.Popen:
        process = self.start(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            {},
        )
        wait_for(lambda: _redis_up(port), timeout=20, what=f"redis-server on port {port}")
        return process

    def gunicorn(self, env: dict[str, str]) -> str:
        port = free_port()
        self.start(
            "gunicorn",
            [
                str(BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--timeout",
                "60",
                "--log-level",
                "warning",
            ],
            env,
        )
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _http_up(f"{url}/healthz"), timeout=60, what="gunicorn")
        return url


def _redis_up(port: int) -> bool:
    import redis

    try:
        return redis.Redis(port=port, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def _http_up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.25, details=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    extra = f"\n{details()}" if details else ""
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}.{extra}")
