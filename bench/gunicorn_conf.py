"""gunicorn hooks for servers the benchmark harness starts (`-c python:bench.gunicorn_conf`).

The harness stops its servers itself, even on errors and Ctrl-C. This is the backstop for
when the harness is killed outright (SIGKILL, OOM): the master watches the harness's pid
(BENCH_PARENT_PID) and shuts the server down once it is gone, so no server is left behind.
"""

import os
import signal
import threading
import time


def when_ready(server) -> None:
    parent = int(os.environ.get("BENCH_PARENT_PID") or 0)
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()
