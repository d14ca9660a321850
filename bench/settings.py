"""Settings for every benchmark process: the project's own settings, set up for measuring.

Used by the harness (`python -m bench`) and by the servers it starts. Differences from
config.settings:

- DEBUG is off: with DEBUG on, Django records every query it runs, which slows queries down
  and would be measured too.
- ROOT_URLCONF is bench.urls: the project's URLs plus the benchmark-only views.
- BENCH_DATABASE_NAME (set by the harness for the processes it starts) replaces the
  database name, so servers use the run's throwaway database and never the user's. It must
  start with "bench_".
"""

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings import *  # noqa: F403
from config.settings import DATABASES

DEBUG = False
ROOT_URLCONF = "bench.urls"

_bench_database = os.environ.get("BENCH_DATABASE_NAME", "")
if _bench_database:
    if not _bench_database.startswith("bench_"):
        raise ImproperlyConfigured(
            f"BENCH_DATABASE_NAME={_bench_database!r}: benchmark databases start with 'bench_'."
        )
    DATABASES["default"]["NAME"] = _bench_database
