"""The production command (docs/operating.md: `gunicorn -c config/gunicorn.py config.wsgi`)
serves other requests while an export streams to a client that reads slowly; the old
one-sync-worker command answered nothing else until the export was read (or killed it at 30 s)."""

import importlib.util
import os
import time

import httpx
import pytest

from config.gunicorn import _cpus
from tests.webhooks import processes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ROWS = 30_000  # ~9 MB of NDJSON: far more than the sockets between the two can buffer


def _config(**env: str):
    spec = importlib.util.spec_from_file_location(
        "gunicorn_config", processes.ROOT / "config/gunicorn.py"
    )
    module = importlib.util.module_from_spec(spec)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return module


def test_the_config_sizes_workers_and_threads_from_the_cpus_and_reads_overrides():
    config = _config()
    assert config.worker_class == "gthread"
    assert config.workers == 2 * _cpus() + 1
    assert config.threads >= 2
    assert config.timeout >= 60 and config.graceful_timeout > 0
    assert config.max_requests > 0 and config.max_requests_jitter > 0
    overridden = _config(GUNICORN_WORKERS="3", GUNICORN_THREADS="8", GUNICORN_BIND="127.0.0.1:9")
    assert (overridden.workers, overridden.threads, overridden.bind) == (3, 8, "127.0.0.1:9")


def test_an_export_read_slowly_does_not_block_other_requests(tmp_path, redis_url):
    from accounts.models import Environment
    from demo.loader import seed_logs
    from tests.factories import ApiKeyFactory

    summary = seed_logs(notifications=ROWS, days=1, environments=1, analyze=False)
    environment = Environment.objects.get(pk=summary.environment_ids[0])
    key = ApiKeyFactory(environment=environment, scopes=["read"])
    port = processes.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = processes.project_env(redis_url=redis_url, public_base_url=base_url)
    # One worker: the other request must be answered by another thread of the very process
    # that is streaming the export.
    server = processes.gunicorn_production_start(port, env, tmp_path, GUNICORN_WORKERS="1")
    try:
        auth = {"Authorization": f"Bearer {key.plain}"}
        with httpx.stream(
            "GET", f"{base_url}/api/v1/logs/export?format=ndjson", headers=auth, timeout=60
        ) as export:
            assert export.status_code == 200
            chunks = export.iter_bytes()
            first = next(chunks)  # the export has started; read no further
            assert first.startswith(b'{"trackingId"')
            time.sleep(2)  # the server writes until the sockets are full, then waits
            started = time.monotonic()
            other = httpx.get(f"{base_url}/api/v1/logs?limit=1", headers=auth, timeout=10)
            assert other.status_code == 200, other.text
            assert time.monotonic() - started < 10
            # The slow reader still gets every row.
            lines = (first + b"".join(chunks)).count(b"\n")
        assert lines == ROWS
    finally:
        processes.stop(server)
