"""The benchmark harness: runs scenarios on a throwaway database and reports them.

How to write a scenario is in bench/__init__.py. This module holds the API (Scenario,
register, Measurement, Run, time_calls, BenchmarkError) and `main`, which `python -m bench`
runs:

1. imports every module of bench/ (so a scenario is found by being defined in one),
2. creates a fresh database, "bench_" + the configured database's name, with Django's
   test-database machinery (which runs every migration); an existing one of that name, left
   by a killed run, is dropped first,
3. runs each selected scenario (setup, measure, teardown, then its deferred cleanups),
4. drops the database and stops everything the scenarios started: also on errors, Ctrl-C
   and SIGTERM,
5. prints the table (with each row's ratio to its baseline row of the same run) and writes
   it all to bench/results.json (bench/results-smoke.json for --smoke).

Exit status: 0 when every scenario passed, 1 when one failed, 2 for a usage error, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fnmatch
import importlib
import json
import os
import pkgutil
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
DATABASE_PREFIX = "bench_"
# `--smoke` runs in `make test`: every scenario together must stay well under this.
SMOKE_BUDGET_SECONDS = 120
# Opt-in sizes past the full run (`--scale NAME`, `make bench-10m`): the scenarios that show
# how the log holds up as it grows, and the size parameters they run at. The same rows of a
# full run (1,000,000 notifications) are the figures to set them beside.
SCALES: dict[str, dict[str, list[str]]] = {
    "10m": {
        "only": ["storage.*", "search.*", "api.list", "retention.drop_day"],
        "set": [
            "notifications=10000000",
            # The admin's searches scan the tenant's rows: one call each is minutes enough.
            "naive_repeat=1",
            # One day of seven at this size, as DAY_FULL is one day of the full run's seven.
            "retention.drop_day.notifications=1430000",
            "retention.delete_day.notifications=1430000",
        ],
    },
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


class BenchmarkError(Exception):
    """Raised by a scenario whose own check failed (HTTP errors, rows missing, no samples).

    Any exception fails the scenario; this one says the failure is a finding, not a bug.
    """


@dataclass(frozen=True)
class Measurement:
    """One row of the report: a figure's median and p95 in a unit.

    p95 is the tail on the bad side: the 95th percentile of the samples when lower is better
    (ms per call), the 5th when higher is better (requests/s); either way 95% of the samples
    are at least as good. Build one with `from_samples`, or directly when a tool reports
    percentiles itself. `baseline` overrides the scenario's baseline for this row; `note` is
    shown in the table; `extra` only goes to results.json.
    """

    median: float
    p95: float
    unit: str
    n: int
    higher_is_better: bool = False
    baseline: str | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_samples(
        cls,
        samples: Iterable[float],
        unit: str,
        *,
        higher_is_better: bool = False,
        baseline: str | None = None,
        note: str = "",
        **extra: Any,
    ) -> Measurement:
        values = [float(value) for value in samples]
        if not values:
            raise BenchmarkError(f"no samples measured ({unit})")
        return cls(
            median=percentile(values, 50),
            p95=percentile(values, 5 if higher_is_better else 95),
            unit=unit,
            n=len(values),
            higher_is_better=higher_is_better,
            baseline=baseline,
            note=note,
            extra=extra,
        )


class Scenario:
    """A benchmark. Subclass it, set the class attributes, decorate the class with @register.

    name: the scenario's name (lowercase, digits, "_" and "."); its main row has this name.
    baseline: the row this scenario's rows are compared with ("vs baseline" = this row's
        median / the baseline's median, both measured in the same run). None: the row itself
        (1.00x), for scenarios that are their own reference, like "floor".
    description: one line for `python -m bench --list`.
    smoke_size / full_size: the parameters of a --smoke run (seconds, tiny data) and of a
        full run; the instance sees the chosen one as self.size. Keys can be overridden from
        the command line: --set KEY=VALUE or --set SCENARIO.KEY=VALUE.

    setup(run): prepare, untimed (seed data, start servers). Register cleanups with
        run.defer(fn, ...); the database is dropped at the end of the run anyway.
    measure(run): return a Measurement (one row named `name`) or a dict of row name to
        Measurement, each name `name` or starting with `name + "."`.
    teardown(run): optional; always called after measure, also when setup failed halfway.
    """

    name: str = ""
    baseline: str | None = None
    description: str = ""
    smoke_size: dict[str, Any] = {}
    full_size: dict[str, Any] = {}

    def __init__(self, size: dict[str, Any]) -> None:
        self.size = size

    def setup(self, run: Run) -> None:
        """Prepare the measurement (not timed)."""

    def measure(self, run: Run) -> Measurement | dict[str, Measurement]:
        raise NotImplementedError(f"{type(self).__name__} has no measure()")

    def teardown(self, run: Run) -> None:
        """Undo what setup did that run.defer does not (rarely needed)."""


SCENARIOS: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    """Class decorator adding a scenario to the run. Scenarios run in registration order."""
    if not (isinstance(cls, type) and issubclass(cls, Scenario)):
        raise TypeError(f"@register takes a Scenario subclass, not {cls!r}")
    if not _NAME.match(cls.name or ""):
        raise ValueError(f"{cls.__name__}.name={cls.name!r}: use lowercase, digits, _ and .")
    if cls.name in SCENARIOS and SCENARIOS[cls.name] is not cls:
        raise ValueError(f"two scenarios are named {cls.name!r}")
    if set(cls.smoke_size) != set(cls.full_size):
        raise ValueError(f"{cls.name}: smoke_size and full_size must have the same keys")
    SCENARIOS[cls.name] = cls
    return cls


class Run:
    """What a scenario gets from the harness, passed to setup, measure and teardown.

    smoke: True for --smoke. database_name: the run's database (the ORM already uses it).
    loadgen: "wrk" or "python", the HTTP load generator of this run (bench.loadgen).
    tmpdir: a directory deleted at the end of the run (logs, scripts).
    """

    def __init__(self, *, smoke: bool, database_name: str, loadgen: str, tmpdir: Path) -> None:
        self.smoke = smoke
        self.database_name = database_name
        self.loadgen = loadgen
        self.tmpdir = tmpdir
        self._scenario_cleanups: list[Callable[[], Any]] = []
        self._run_cleanups: list[Callable[[], Any]] = []
        self._once: dict[Any, Any] = {}

    def defer(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Call fn(*args, **kwargs) when the current scenario ends, whatever happens.

        Cleanups run last-registered first. Make them idempotent: one interrupted by
        Ctrl-C is called again by the final clean-up.
        """
        self._scenario_cleanups.append(lambda: fn(*args, **kwargs))

    def at_exit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Like defer, but at the end of the whole run (for resources shared via `once`)."""
        self._run_cleanups.append(lambda: fn(*args, **kwargs))

    def once(self, key: Any, fn: Callable[[], Any]) -> Any:
        """fn() the first time key is asked for in this run, its cached result afterwards.

        For data several scenarios share: `run.once(("logs", rows), lambda: seed(rows))`
        seeds once however many scenarios (or their baselines) need it.
        """
        if key not in self._once:
            self._once[key] = fn()
        return self._once[key]

    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """The environment for a process that must use the run's database (e.g. a server).

        The same connection settings as this process (DATABASE_URL or EMBEDDED_PGDATA pass
        through), the bench settings module, and BENCH_DATABASE_NAME so the child opens the
        run's database, never the configured one.
        """
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        env["BENCH_DATABASE_NAME"] = self.database_name
        env.update(extra)
        return env

    def _cleanup(self, cleanups: list[Callable[[], Any]]) -> list[str]:
        errors = []
        while cleanups:
            fn = cleanups[-1]
            try:
                fn()
            except KeyboardInterrupt:
                raise  # stays on the list: the final clean-up calls it again
            except Exception as exc:
                errors.append(f"clean-up failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            cleanups.pop()
        return errors


def time_calls(
    fn: Callable[[], Any],
    *,
    repeat: int,
    warmup: int = 1,
    max_seconds: float = 60.0,
    unit: str = "ms/call",
    **kwargs: Any,
) -> Measurement:
    """Call fn `warmup` times untimed, then up to `repeat` times timed (stopping early after
    max_seconds), and return the milliseconds per call. kwargs go to Measurement.from_samples
    (baseline=, note=, extra fields)."""
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        fn()
    samples = []
    deadline = time.monotonic() + max_seconds
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
        if time.monotonic() > deadline:
            break
    return Measurement.from_samples(samples, unit, **kwargs)


# --- selecting scenarios --------------------------------------------------------------------


def discover() -> None:
    """Import every module of bench/ whose name does not start with "_", registering the
    scenarios they define."""
    for module in pkgutil.iter_modules([str(BENCH_DIR)]):
        if not module.name.startswith("_"):
            importlib.import_module(f"bench.{module.name}")


def scenario_of_row(row: str) -> str | None:
    """The registered scenario a row name belongs to ("floor.throughput" -> "floor")."""
    parts = row.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in SCENARIOS:
            return candidate
    return None


def select(only: list[str], baselines: bool = True) -> list[tuple[type[Scenario], str]]:
    """The scenarios to run, in registration order, each with why it runs ("" or
    "baseline of X"): the ones asked for (a name, or a pattern with * such as "search.*")
    plus, transitively, the scenarios of their baselines, so every ratio has its baseline
    measured in the same run (not with `baselines=False`: --without-baselines)."""
    for cls in SCENARIOS.values():
        if cls.baseline and not scenario_of_row(cls.baseline):
            raise ValueError(f"scenario {cls.name}: baseline {cls.baseline!r} is not a scenario")
    wanted: list[str] = []
    for pattern in only or list(SCENARIOS):
        matches = fnmatch.filter(SCENARIOS, pattern) if "*" in pattern else [pattern]
        wanted.extend(name for name in matches or [pattern] if name not in wanted)
    unknown = [name for name in wanted if name not in SCENARIOS]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS) or 'none'}"
        )
    reasons = {name: "" for name in wanted}
    pending = list(wanted) if baselines else []
    while pending:
        cls = SCENARIOS[pending.pop()]
        base = scenario_of_row(cls.baseline) if cls.baseline else None
        if base and base not in reasons:
            reasons[base] = f"baseline of {cls.name}"
            pending.append(base)
    return [(cls, reasons[name]) for name, cls in SCENARIOS.items() if name in reasons]


def sizes_for(
    selected: list[tuple[type[Scenario], str]],
    smoke: bool,
    overrides: list[str],
    lenient: bool = False,
) -> dict[str, dict[str, Any]]:
    """Each selected scenario's size, with --set [SCENARIO.]KEY=VALUE applied. `lenient`
    (a --scale's own settings) skips a setting no selected scenario has, as when --only
    narrows the scale's scenarios."""
    sizes = {cls.name: dict(cls.smoke_size if smoke else cls.full_size) for cls, _ in selected}
    for item in overrides:
        target, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: use KEY=VALUE or SCENARIO.KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        scope, _, key = target.rpartition(".")
        names = [scope] if scope else [name for name in sizes if key in sizes[name]]
        if not names or any(name not in sizes or key not in sizes[name] for name in names):
            if lenient:
                continue
            raise ValueError(f"--set {item!r}: no selected scenario has a size key {key!r}")
        for name in names:
            sizes[name][key] = value
    return sizes


# --- running --------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rows_of(cls: type[Scenario], result: Any) -> dict[str, Measurement]:
    rows = {cls.name: result} if isinstance(result, Measurement) else result
    if not isinstance(rows, dict) or not rows:
        raise TypeError(f"{cls.name}.measure() must return a Measurement or a dict of them")
    for name, measurement in rows.items():
        if name != cls.name and not name.startswith(cls.name + "."):
            raise ValueError(f"{cls.name}: row {name!r} must be named {cls.name}[.SUFFIX]")
        if not isinstance(measurement, Measurement):
            raise TypeError(f"{cls.name}: row {name!r} is not a Measurement")
    return rows


def run_scenario(
    cls: type[Scenario], size: dict[str, Any], run: Run, label: str
) -> list[dict[str, Any]]:
    started = time.monotonic()
    scenario = cls(size)
    error: str | None = None
    rows: dict[str, Measurement] = {}
    try:
        _progress(f"{label}: setup {json.dumps(size)}")
        scenario.setup(run)
        _progress(f"{label}: measure")
        rows = _rows_of(cls, scenario.measure(run))
    except Exception as exc:
        traceback.print_exc()
        error = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            scenario.teardown(run)
        except Exception as exc:
            traceback.print_exc()
            error = error or f"teardown: {type(exc).__name__}: {exc}"
        cleanup_errors = run._cleanup(run._scenario_cleanups)
        error = error or (cleanup_errors[0] if cleanup_errors else None)
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
    elapsed = time.monotonic() - started
    _progress(f"{label}: {'FAILED' if error else 'ok'} in {elapsed:.1f}s")
    common = {"scenario": cls.name, "size": size, "elapsed_s": round(elapsed, 3)}
    if error:
        return [
            {
                "name": cls.name,
                "status": "failed",
                "error": error,
                "unit": None,
                "median": None,
                "p95": None,
                "n": 0,
                "higher_is_better": None,
                "baseline": cls.baseline or cls.name,
                "ratio": None,
                "note": "",
                "extra": {},
                **common,
            }
        ]
    return [
        {
            "name": name,
            "status": "ok",
            "error": None,
            "unit": m.unit,
            "median": m.median,
            "p95": m.p95,
            "n": m.n,
            "higher_is_better": m.higher_is_better,
            "baseline": m.baseline or cls.baseline or name,
            "ratio": None,
            "note": m.note,
            "extra": m.extra,
            **common,
        }
        for name, m in rows.items()
    ]


def compare_to_baselines(rows: list[dict[str, Any]]) -> None:
    """Fill each row's ratio: its median / its baseline row's median (same run, same unit)."""
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        if row["status"] != "ok":
            continue
        base = by_name.get(row["baseline"])
        if base is None or base["status"] != "ok":
            row["note"] = (row["note"] + "; " if row["note"] else "") + "no baseline figure"
        elif base["unit"] != row["unit"]:
            row["status"] = "failed"
            row["error"] = f"unit {row['unit']!r} differs from baseline's {base['unit']!r}"
        elif base["median"]:
            row["ratio"] = row["median"] / base["median"]


# --- the database ---------------------------------------------------------------------------


def bench_database_name(configured: str) -> str:
    return (DATABASE_PREFIX + configured)[:63]  # PostgreSQL truncates names to 63 bytes


def citus_cluster(*args: str) -> str:
    """Run scripts/citus-cluster (the loopback cluster of CITUS_PORT) and return its stdout."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "citus-cluster"), *args], capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"scripts/citus-cluster {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def _citus_create_database(name: str) -> None:
    """On a Citus coordinator (DATABASE_CITUS): the database goes on every node of
    scripts/citus-cluster's cluster with the extension and the workers registered, then
    `migrate` distributes the log in it (logs/citus.py), as scripts/with-citus.sh does."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    coordinator = int(os.environ.get("CITUS_PORT") or 9700)  # as scripts/citus_cluster.py
    port = int(connection.settings_dict.get("PORT") or 5432)
    if port != coordinator:
        raise RuntimeError(
            f"DATABASE_CITUS is set and the database is on port {port}: the benchmarks create "
            f"their database on every node of scripts/citus-cluster's cluster, whose "
            f"coordinator is on port {coordinator} (CITUS_PORT); run python -m bench --citus"
        )
    citus_cluster("createdb", name)
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name
    call_command("migrate", verbosity=0, interactive=False)


def create_database(name: str) -> None:
    """Create the run's database and migrate it (Django's test-database machinery; on a Citus
    coordinator, on every node of the cluster)."""
    from django.conf import settings
    from django.db import connection

    if getattr(settings, "DATABASE_CITUS", False):
        _citus_create_database(name)
        return
    connection.settings_dict.setdefault("TEST", {})["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    if connection.settings_dict["NAME"] != name:
        raise RuntimeError(f"the ORM is not on the bench database {name!r}")


def drop_database(name: str, configured: str) -> None:
    """Drop the run's database (never the configured one) and point the ORM back."""
    from django.conf import settings
    from django.db import connection, connections

    if not name.startswith(DATABASE_PREFIX) or name == configured:
        raise RuntimeError(f"refusing to drop {name!r}: not a bench database")
    connections.close_all()
    settings.DATABASES["default"]["NAME"] = configured
    connection.settings_dict["NAME"] = configured
    if getattr(settings, "DATABASE_CITUS", False):
        citus_cluster("dropdb", name)
        return
    # Django's own _nodb_cursor: a connection to the "postgres" maintenance database.
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")


# --- the report -----------------------------------------------------------------------------


def machine_info(loadgen_tool: str) -> dict[str, Any]:
    import django
    import gunicorn
    from django.conf import settings
    from django.db import connection

    from bench.loadgen import tool_version

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (pg_version,) = cursor.fetchone()
    db = connection.settings_dict
    host = db.get("HOST") or "localhost"
    if getattr(settings, "EMBEDDED_DATABASE", False):
        where = f"embedded, socket {host}"
    elif host.startswith("/"):
        where = f"socket {host}"
    else:
        where = f"{host}:{db.get('PORT') or 5432}"
    cpu_model, memory_gb = "", None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        memory_gb = round(int(meminfo[0].split()[1]) / 1024 / 1024, 1)
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "postgresql": pg_version,
        "database": f"{db['NAME']} ({where})",
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "load_generator": tool_version(loadgen_tool),
        "git_commit": commit,
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ["scenario", "median", "p95", "unit", "vs baseline", "speed-up", "baseline", "n",
              "note"]  # fmt: skip
    right = {1, 2, 4, 5, 7}
    lines = []
    for row in rows:
        if row["status"] != "ok":
            error = (row["error"] or "").strip().splitlines() or [""]
            first = error[0] if len(error[0]) <= 100 else error[0][:97] + "..."
            lines.append([row["name"], "FAILED", "", "", "", "", row["baseline"], "", first])
            continue
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3g}x"
        baseline = "(itself)" if row["baseline"] == row["name"] else row["baseline"]
        speedup = ""
        if row["ratio"] and baseline != "(itself)":
            # How many times better than the baseline, whichever direction is better.
            factor = row["ratio"] if row.get("higher_is_better") else 1 / row["ratio"]
            speedup = f"{factor:,.1f}x" if factor < 100 else f"{factor:,.0f}x"
        lines.append(
            [
                row["name"],
                _number(row["median"]),
                _number(row["p95"]),
                row["unit"],
                ratio,
                speedup,
                baseline,
                str(row["n"]),
                row["note"],
            ]
        )
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        parts = [
            str(cell).rjust(widths[i]) if i in right else str(cell).ljust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([render(header), render(["-" * w for w in widths]), *map(render, lines)])


def format_machine(machine: dict[str, Any]) -> str:
    memory = f", {machine['memory_gb']} GB RAM" if machine.get("memory_gb") else ""
    cpu = f" ({machine['cpu_model']})" if machine.get("cpu_model") else ""
    return "\n".join(
        [
            f"machine:    nproc {machine['nproc']}{cpu}{memory}, {machine['platform']}",
            f"postgresql: {machine['postgresql']}, database {machine['database']}",
            f"software:   Python {machine['python']}, Django {machine['django']}, "
            f"gunicorn {machine['gunicorn']}, commit {machine['git_commit'] or '?'}",
            f"load:       {machine['load_generator']}",
        ]
    )


LEGEND = """\
p95: the bad-side tail (95th percentile; 5th for higher-is-better units such as requests/s).
vs baseline: median / the baseline row's median, same run (times: < 1.00x is faster);
speed-up: how many times better than the baseline."""


# --- main -----------------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the benchmarks on a throwaway database and print a table "
        "(how to add a scenario: bench/__init__.py).",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"every scenario at a tiny size (part of make test; budget "
        f"{SMOKE_BUDGET_SECONDS}s); writes bench/results-smoke.json",
    )
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        help="an opt-in size past the full run: its scenarios at its data size (10m: "
        "10,000,000 notifications; hours, and 10M x storage.bytes of disk); "
        "writes bench/results-NAME.json",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run this scenario (and its baseline's); repeat or comma-separate for several",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[SCENARIO.]KEY=VALUE",
        help="override a size parameter, e.g. --set floor.duration=30",
    )
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="HTTP load generator (auto: wrk when installed, else the Python one)",
    )
    parser.add_argument(
        "--citus",
        action="store_true",
        help="the searches, send.sender and callbacks.freshness on a single node and on a "
        "three-node Citus cluster (scripts/citus-cluster) in the same run, each Citus row "
        "with its ratio to the single node's (bench/citus.py; default 100,000 "
        "notifications); writes bench/results-citus.json",
    )
    parser.add_argument(
        "--without-baselines",
        action="store_true",
        help="run only the scenarios asked for, not their baselines (each row is its own)",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the run's database (its name is printed) to look into afterwards, "
        "e.g. the plans at --scale 10m; drop it yourself when done",
    )
    parser.add_argument("--output", type=Path, help="where to write the JSON results")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.output is not None:
        args.output = args.output.resolve()  # relative to where the command was run
    args.only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    if args.scale:
        if args.smoke:
            parser.error("--scale and --smoke are different sizes: choose one")
        scale = SCALES[args.scale]
        args.only = args.only or list(scale["only"])
        args.set = [*scale["set"], *args.set]  # what the command line sets wins
    if args.citus and args.scale:
        parser.error("--citus runs at its own size (--set changes it): no --scale")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    # bench.settings: the project's settings with DEBUG off (DEBUG records every query).
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    discover()
    if args.citus and not args.list:
        from bench.citus import main as citus_main

        return citus_main(args)

    if args.list:
        for cls in SCENARIOS.values():
            base = f" (baseline {cls.baseline})" if cls.baseline else ""
            print(f"{cls.name}{base}: {cls.description}")
            print(f"    smoke {json.dumps(cls.smoke_size)}\n    full  {json.dumps(cls.full_size)}")
        return 0
    try:
        selected = select(args.only, baselines=not args.without_baselines)
        sizes = sizes_for(selected, args.smoke, args.set, lenient=bool(args.scale))
        from bench.loadgen import available_tool

        loadgen = available_tool(args.loadgen)
    except (ValueError, RuntimeError) as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    if not selected:
        print("python -m bench: no scenario registered", file=sys.stderr)
        return 2

    from django.db import connection

    mode = "smoke" if args.smoke else args.scale or "full"
    output = args.output or BENCH_DIR / (
        "results.json" if mode == "full" else f"results-{mode}.json"
    )
    configured = connection.settings_dict["NAME"]
    database = bench_database_name(configured)
    tmpdir = Path(tempfile.mkdtemp(prefix="bench-"))
    run = Run(smoke=args.smoke, database_name=database, loadgen=loadgen, tmpdir=tmpdir)
    started_at = dt.datetime.now(dt.UTC)
    started = time.monotonic()
    handlers = {
        sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    rows: list[dict[str, Any]] = []
    machine: dict[str, Any] = {}
    status = 0
    created = False
    try:
        _progress(f"bench ({mode}): creating database {database}")
        created = True
        create_database(database)
        machine = machine_info(loadgen)
        for position, (cls, reason) in enumerate(selected, 1):
            label = f"[{position}/{len(selected)}] {cls.name}" + (f" ({reason})" if reason else "")
            rows.extend(run_scenario(cls, sizes[cls.name], run, label))
    except KeyboardInterrupt:
        _progress("bench: interrupted, cleaning up")
        status = 130
    except Exception:
        traceback.print_exc()
        status = 1
    finally:
        # Nothing may stop the clean-up halfway: a second Ctrl-C waits until it is done.
        ignored = {
            sig: signal.signal(sig, signal.SIG_IGN)
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            errors = run._cleanup(run._scenario_cleanups) + run._cleanup(run._run_cleanups)
            if created and args.keep_database:
                _progress(f"bench: the database {database} is kept (--keep-database)")
            elif created:
                try:
                    drop_database(database, configured)
                except Exception as exc:
                    traceback.print_exc()
                    errors.append(f"could not drop database {database}: {exc}")
            shutil.rmtree(tmpdir, ignore_errors=True)
            for error in errors:
                _progress(f"bench: {error}")
            if errors and status == 0:
                status = 1
        finally:
            for sig, handler in {**ignored, **handlers}.items():
                signal.signal(sig, handler)

    elapsed = time.monotonic() - started
    if not rows:
        return status or 1
    if args.without_baselines:  # compared with nothing else measured: each is its own
        for row in rows:
            row["baseline"] = row["name"]
    compare_to_baselines(rows)
    print()
    print(f"Benchmarks ({mode}), {started_at:%Y-%m-%d %H:%M} UTC, {elapsed:.1f}s")
    if machine:
        print(format_machine(machine))
    print()
    print(format_table(rows))
    print()
    print(LEGEND)
    failed = [row["name"] for row in rows if row["status"] != "ok"]
    if status == 130:
        print("interrupted: results not written")
        return status
    output.write_text(
        json.dumps(
            {
                "mode": mode,
                "ok": not failed and status == 0,
                "started_at": started_at.isoformat(timespec="seconds"),
                "elapsed_s": round(elapsed, 3),
                "machine": machine,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    if args.smoke and elapsed > SMOKE_BUDGET_SECONDS:
        print(
            f"warning: the smoke run took {elapsed:.0f}s, over its {SMOKE_BUDGET_SECONDS}s "
            "budget: shrink the smoke sizes"
        )
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return status
