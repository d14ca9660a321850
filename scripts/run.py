"""`make run`: the whole product on one machine, stopped together by Ctrl-C.

Starts what is not configured: the embedded PostgreSQL in .var/postgres/ when DATABASE_URL is
unset (config/embedded.py) and the embedded Redis in .var/redis/ when REDIS_URL is unset
(config/embedded_redis.py). Then migrates, sets up the demo account and runs the processes of
Procfile.dev with honcho: web (runserver on RUN_ADDRESS), a Celery worker per queue (celery,
outbound) and beat. Once the web answers, the demo is populated in the background, once:
a week of seeded notifications with their insights, then a few live sends through the sandbox
(manage.py demo_populate), with a progress line here. A DATABASE_URL with the citus
extension (a Citus coordinator) sets DATABASE_CITUS=true for every process.

Ctrl-C (or SIGTERM, or a closed terminal) stops everything: honcho stops its processes (each
in a process group of its own: SIGTERM, SIGKILL after 5 s), then the embedded servers stop.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADDRESS = os.environ.get("RUN_ADDRESS", "127.0.0.1:8000")
STOP_TIMEOUT_SECONDS = 20


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


_stopping = False


def _stop(signum, frame):
    # Once: a second Ctrl-C (or the SIGINT that reached honcho and this process together,
    # handled late) must not interrupt the shutdown in `finally`.
    global _stopping
    if not _stopping:
        _stopping = True
        raise KeyboardInterrupt


def _server_up(processes: subprocess.Popen, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and processes.poll() is None:
        try:
            with urllib.request.urlopen(f"http://{ADDRESS}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def _citus_coordinator(url: str) -> bool:
    """Whether DATABASE_URL is a Citus coordinator (its database has the citus extension)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone()
    except psycopg.Error:
        return False  # migrate, next, says what is wrong with the database
    return found is not None


def _stop_process(process: subprocess.Popen | None, name: str) -> None:
    """Ask a child to stop (it may already be stopping: Ctrl-C reached it too), wait, kill."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"{name} did not stop in {STOP_TIMEOUT_SECONDS} s: killed.")
        process.kill()
        process.wait()


def main() -> int:
    global _stopping
    # `kill` or a closed terminal must still stop everything cleanly, as Ctrl-C does.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The sandbox's callbacks and the providers' come back to this server.
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{ADDRESS}")
    os.environ["RUN_ADDRESS"] = ADDRESS  # Procfile.dev's web reads it
    embedded_database = not os.environ.get("DATABASE_URL")
    embedded_redis = not os.environ.get("REDIS_URL")
    processes = demo = None
    # `DATABASE_URL=$(scripts/citus-cluster start) make run`: every process below runs with
    # the cluster's settings (docs/operating.md, "Scaling out on Citus").
    citus_unset = not embedded_database and "DATABASE_CITUS" not in os.environ
    if citus_unset and _citus_coordinator(os.environ["DATABASE_URL"]):
        print("DATABASE_URL is a Citus coordinator: DATABASE_CITUS=true")
        os.environ["DATABASE_CITUS"] = "true"
    try:
        if embedded_database:
            print("DATABASE_URL unset: starting the embedded PostgreSQL in .var/postgres/")
        if embedded_redis:
            print("REDIS_URL unset: starting the embedded Redis (Valkey) in .var/redis/")
            # Every process below gets the same URL, so none has to look for the server.
            started = subprocess.run(
                [PYTHON, "-m", "config.embedded_redis", "start"],
                cwd=ROOT,
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
            os.environ["REDIS_URL"] = started.stdout.strip().splitlines()[-1]
        manage("migrate", "--noinput", "--verbosity", "0")
        manage("bootstrap_demo")
        print()
        print(f"  Console:  http://{ADDRESS}/admin/")
        print(f"  API:      http://{ADDRESS}/api/v1/   health: http://{ADDRESS}/readyz")
        print(f"  Send:     POST http://{ADDRESS}/<client id>/sender (sandbox providers)")
        print(f"  Mailbox:  http://{ADDRESS}/admin/mailbox/ (development email)")
        print("  Celery:   worker (queue celery), outbound (queue outbound) and beat")
        print()
        honcho = str(Path(PYTHON).parent / "honcho")
        processes = subprocess.Popen([honcho, "-f", "Procfile.dev", "start"])
        if _server_up(processes):
            # In the background: the console is usable while the demo fills.
            demo = subprocess.Popen([PYTHON, "manage.py", "demo_populate"], cwd=ROOT)
        elif processes.poll() is None:
            print("The server did not answer /healthz: no demo data (run manage.py demo_populate).")
        code = processes.wait()
        # Ctrl-C reaches honcho too, which may exit (130) before this process handles it.
        return 0 if code in (130, -signal.SIGINT) else code
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers behind.
        _stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_process(demo, "demo_populate")
        _stop_process(processes, "honcho")
        if embedded_redis:
            subprocess.call([PYTHON, "-m", "config.embedded_redis", "stop"])
        if embedded_database:
            subprocess.call([PYTHON, "-m", "config.embedded", "stop"])


if __name__ == "__main__":
    sys.exit(main())
