"""Real processes for the end-to-end tests: a private redis-server, gunicorn serving the
project and a Celery worker (with beat), all on the test database. Each is started on a free
port of its own and stopped by its own pid (its process group), never by name."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    params = connection.settings_dict
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    if params["HOST"].startswith("/"):  # the embedded PostgreSQL's Unix socket directory
        return f"postgres://{auth}@/{params['NAME']}?host={params['HOST']}"
    return f"postgres://{auth}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


def stop(process: subprocess.Popen, timeout: float = 15) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return


def _start(command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def redis_start(port: int, tmp: Path) -> subprocess.Popen:
    process = _start(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp)],
        tmp / f"redis-{port}.log",
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return process
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"redis-server did not start on port {port}; see {tmp}")


def project_env(*, redis_url: str, public_base_url: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    return (
        env
        | {
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            "PUBLIC_BASE_URL": public_base_url,
            "DEBUG": "false",
            "DATABASE_CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        | extra
    )


def gunicorn_start(port: int, env: dict, tmp: Path, *, workers=2, threads=4) -> subprocess.Popen:
    process = _start(
        [str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--worker-class", "gthread", "--threads", str(threads),
         "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"],
        tmp / "gunicorn.log",
        env,
    )  # fmt: skip
    return _healthy(process, port, tmp)


def gunicorn_production_start(port: int, env: dict, tmp: Path, **config: str) -> subprocess.Popen:
    """gunicorn as docs/operating.md's production command runs it (config/gunicorn.py), on `port`;
    `config` sets its GUNICORN_* variables (GUNICORN_WORKERS="1", ...)."""
    process = _start(
        [str(BIN / "gunicorn"), "-c", "config/gunicorn.py", "config.wsgi"],
        tmp / "gunicorn.log",
        env | {"GUNICORN_BIND": f"127.0.0.1:{port}"} | config,
    )
    return _healthy(process, port, tmp)


def _healthy(process: subprocess.Popen, port: int, tmp: Path) -> subprocess.Popen:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {(tmp / 'gunicorn.log').read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn did not answer: {(tmp / 'gunicorn.log').read_text()[-3000:]}")


def worker_start(
    env: dict,
    tmp: Path,
    *,
    concurrency: int = 2,
    queues: str | None = None,
    name: str = "worker",
    beat: bool = True,
) -> subprocess.Popen:
    """A prefork worker; `queues` as `-Q` takes them (Procfile.dev runs one worker per queue),
    None every queue. With `beat`, beat runs inside it, so the sweepers run as in production."""
    command = [str(BIN / "celery"), "-A", "config", "worker", "--concurrency", str(concurrency),
               "--loglevel", "WARNING", "--hostname", f"{name}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    if queues:
        command += ["-Q", queues]
    if beat:
        command += ["-B"]
    return _start(command, tmp / f"{name}.log", env)


def wait_for(predicate, *, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
