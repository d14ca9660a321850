"""A gunicorn server on the run's database, for scenarios that measure over HTTP.

`start_gunicorn(run, ...)` binds 127.0.0.1 on a free port (the harness binds the socket and
hands it to gunicorn, so two runs never race for a port), serves config.wsgi with
bench.settings (the project's URLs plus bench.urls), waits until a worker answers from the
run's database, and registers the server's shutdown with `run.defer`, so the harness stops
it when the scenario ends, whatever happens. gunicorn runs in its own process group, and the
whole group (master and workers) is stopped.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from bench.harness import ROOT, BenchmarkError, Run

# Straight to 127.0.0.1, whatever http_proxy says.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_gunicorn(
    run: Run,
    *,
    workers: int = 2,
    threads: int = 4,
    worker_class: str = "gthread",
    ready_timeout: float = 60.0,
    until_exit: bool = False,
) -> str:
    """Start gunicorn for the current scenario (with `until_exit`, for the rest of the run)
    and return its base URL (http://127.0.0.1:PORT)."""
    process, base_url, log_path = _spawn_gunicorn(
        run, workers=workers, threads=threads, worker_class=worker_class, until_exit=until_exit
    )
    _wait_ready(process, base_url, run.database_name, ready_timeout, log_path)
    return base_url


def _spawn_gunicorn(
    run: Run, *, workers: int, threads: int, worker_class: str, until_exit: bool = False
):
    """Start gunicorn without waiting for it: (process, base URL, log path). It is stopped
    when the scenario ends, or with `until_exit` when the run does."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    log_path = run.tmpdir / f"gunicorn-{port}.log"
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--config", "python:bench.gunicorn_conf",
        "--bind", f"fd://{fd}",
        "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
        "--no-control-socket", "--timeout", "30", "--graceful-timeout", "5",
        "--keep-alive", "5", "--log-level", "warning", "--error-logfile", "-",
        "--chdir", str(ROOT),
    ]  # fmt: skip
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=run.subprocess_env(BENCH_PARENT_PID=str(os.getpid())),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(fd,),
                start_new_session=True,
            )
    finally:
        listener.close()
    (run.at_exit if until_exit else run.defer)(stop_process_group, process)
    return process, f"http://127.0.0.1:{port}", log_path


def start_gunicorns(
    run: Run,
    *,
    workers: int = 2,
    threads: int = 4,
    worker_class: str = "gthread",
    until_exit: bool = False,
) -> list[str]:
    """`workers` gunicorn servers of one worker each, on ports of their own: their base URLs.
    Loaded with run_load(urls), each gets the same share of the connections, as behind a load
    balancer (bench.loadgen: several workers behind one socket share connections by chance).
    They start side by side: each takes seconds to import the project."""
    started = [
        _spawn_gunicorn(
            run, workers=1, threads=threads, worker_class=worker_class, until_exit=until_exit
        )
        for _ in range(workers)
    ]
    for process, base_url, log_path in started:
        _wait_ready(process, base_url, run.database_name, 60.0, log_path)
    return [base_url for _, base_url, _ in started]


def stop_process_group(process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop a process started with start_new_session=True and everything in its group.

    Idempotent: safe to call again after an interruption.
    """
    # SIGTERM: gunicorn's graceful shutdown (master and workers). Then SIGKILL for whatever
    # of the group is left: a master stuck past the timeout, or workers it left behind.
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)


def _wait_ready(process, base_url, database_name, timeout, log_path) -> None:
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(
                f"gunicorn exited with {process.returncode} before serving:\n{_tail(log_path)}"
            )
        try:
            with _NO_PROXY.open(f"{base_url}/bench/ready", timeout=5) as response:
                database = json.loads(response.read())["database"]
        except (OSError, ValueError, KeyError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
            continue
        if database != database_name:
            raise BenchmarkError(
                f"the server is connected to database {database!r}, not the run's "
                f"{database_name!r}: refusing to load it"
            )
        return
    raise BenchmarkError(
        f"gunicorn did not answer within {timeout:.0f}s ({last_error}):\n{_tail(log_path)}"
    )


def _tail(path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
