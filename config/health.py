"""Health endpoints for load balancers and operators.

/healthz answers when the process runs (liveness). /readyz answers 200 only when PostgreSQL
is reachable, every migration is applied and (when configured) Redis answers; otherwise 503
with the failing check named. It also says whether background work is happening (the Celery
workers' and beat's heartbeats, the queues' backlog: config/heartbeat.py): when it is not,
the status is "degraded", still 200 with the reason under checks.background. This process can
still take sends and callbacks (they wait in PostgreSQL), so a load balancer should keep it;
a monitor should alert on "degraded".

The migrations check reads the migration files and django_migrations (a MigrationExecutor:
tens of milliseconds of file loading and graph building). A load balancer probes every few
seconds, so the answer is kept per process once it is "all applied": migrations are applied
before a release's processes start and never unapplied under them. Until then (and for
another database) every probe checks again, so a process started before `migrate` turns
ready as soon as it has run.
"""

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> tuple[bool, str]:
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return False, f"PostgreSQL unreachable: {exc.__class__.__name__}"
    return True, "ok"


# The databases (by connection settings) whose migrations this process found all applied.
_migrated: set[tuple] = set()


def _database_key(connection) -> tuple:
    settings_dict = connection.settings_dict
    return tuple(settings_dict.get(name) for name in ("HOST", "PORT", "NAME"))


def _check_migrations() -> tuple[bool, str]:
    connection = connections[DEFAULT_DB_ALIAS]
    key = _database_key(connection)
    if key in _migrated:
        return True, "ok"
    ok, detail = _migrations_applied(connection)
    if ok:
        _migrated.add(key)
    return ok, detail


def _migrations_applied(connection) -> tuple[bool, str]:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return False, f"cannot read migrations: {exc.__class__.__name__}"
    if plan:
        return False, f"{len(plan)} migration(s) not applied: run manage.py migrate"
    return True, "ok"


def _check_redis() -> tuple[bool, str]:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
    except Exception as exc:
        return False, f"Redis unreachable: {exc.__class__.__name__}"
    return True, "ok"


@require_GET
def readyz(request):
    checks = {"database": _check_database()}
    if checks["database"][0]:
        checks["migrations"] = _check_migrations()
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    ready = all(ok for ok, _ in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: detail for name, (_, detail) in checks.items()},
    }
    if ready and settings.REDIS_URL:
        background = _check_background()
        body["checks"]["background"] = background
        if background != "ok":
            body["status"] = "degraded"
    return JsonResponse(body, status=200 if ready else 503)


def _check_background() -> str:
    from config.heartbeat import background_status

    status = background_status(fresh=True)
    if status.ok:
        return "ok"
    return "; ".join(
        f"{pause.paused}"
        + (f" since {pause.since:%Y-%m-%d %H:%M:%S} UTC" if pause.since else "")
        + f": {pause.reason}"
        for pause in status.pauses
    )
