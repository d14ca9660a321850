"""`make run`: migrate, set up the demo, and serve the console, API and webhooks.

With DATABASE_URL unset the embedded PostgreSQL in .var/postgres/ is started (and stopped
when this exits). With REDIS_URL set, a Celery worker and beat run beside the web process
(honcho, Procfile.dev); without it, Celery tasks run in-process.
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


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, check=True)


def _stop(signum, frame):
    raise KeyboardInterrupt


def _server_up(timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{ADDRESS}/healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


def _demo_send() -> None:
    """A catalogue and a few dozen sends through the sandbox, once, so the console opens on
    real timelines. After the server is up: the sandbox posts its provider callbacks to it."""
    if _server_up():
        manage("demo_send")
    else:
        print("The server did not answer /healthz: no demo sends (run manage.py demo_send).")


def main() -> int:
    # `kill` or a closed terminal must still stop the servers cleanly, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    os.chdir(ROOT)
    server = None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # The sandbox's callbacks and the providers' come back to this server.
    os.environ.setdefault("PUBLIC_BASE_URL", f"http://{ADDRESS}")
    embedded = not os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL", "")
    try:
        if embedded:
            print("DATABASE_URL unset: starting the embedded PostgreSQL in .var/postgres/")
        manage("migrate", "--noinput", "--verbosity", "0")
        manage("bootstrap_demo")
        print()
        print(f"  Console:  http://{ADDRESS}/admin/")
        print(f"  API:      http://{ADDRESS}/api/v1/   health: http://{ADDRESS}/readyz")
        print(f"  Send:     POST http://{ADDRESS}/<client id>/sender (sandbox providers)")
        if redis_url:
            print("  Celery:   worker and beat running against REDIS_URL")
        else:
            print("  Celery:   REDIS_URL unset, so tasks run in-process (no worker, no beat)")
        print()
        if redis_url:
            command = [str(Path(PYTHON).parent / "honcho"), "-f", "Procfile.dev", "start"]
            os.environ["RUN_ADDRESS"] = ADDRESS
        else:
            command = [PYTHON, "manage.py", "runserver", ADDRESS]
        server = subprocess.Popen(command)
        _demo_send()
        return server.wait()
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        return exc.returncode
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        if embedded:
            subprocess.call([PYTHON, "-m", "config.embedded", "stop"])


if __name__ == "__main__":
    sys.exit(main())
