"""gunicorn's settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

Threaded workers (gthread): a request waiting on its client (an export streamed to a slow
reader, a large callback body trickling in) holds one thread, not a whole process, so the
API, the console and callback intake keep answering beside it. One sync worker, as before,
served one request at a time: a single export stopped everything else, and its 30 s timeout
killed any export that took longer.

`timeout` is the worker's heartbeat, not a request limit: a gthread worker's main loop keeps
reporting while its threads stream, so a long export is never killed for its length; a
worker whose main loop stalls that long (a hang) is replaced. Requests are bounded where
they do work: PostgreSQL's DATABASE_STATEMENT_TIMEOUT per statement, and exports read in
short keyset chunks.

Every thread keeps its own database connection (DATABASE_CONN_MAX_AGE): size PostgreSQL's
max_connections, or the pooler in front of it, for workers * threads per machine.

Each setting can be overridden from the environment:
- GUNICORN_BIND (default 0.0.0.0:8000)
- GUNICORN_WORKERS (default 2 * CPUs + 1)
- GUNICORN_THREADS (default 4)
- GUNICORN_TIMEOUT (default 60 seconds), GUNICORN_GRACEFUL_TIMEOUT (default 30 seconds)
- GUNICORN_MAX_REQUESTS (default 5000; 0: never recycle a worker)
"""

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r}: a whole number, please.") from None


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may use (containers)
    except AttributeError:
        return os.cpu_count() or 1


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", 2 * _cpus() + 1)
threads = _int("GUNICORN_THREADS", 4)
timeout = _int("GUNICORN_TIMEOUT", 60)
# On SIGTERM (a deploy), requests in flight get this long to finish, exports included.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Workers are replaced after about this many requests (jittered, so they do not all restart
# together): memory a long-lived process accumulates is given back.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max_requests // 10
errorlog = "-"
