"""`python -m bench --citus` (`make bench-citus`): the same rows on one PostgreSQL and on a
three-node Citus cluster, in the same run, each Citus row with its ratio to the single node's.

The rows: every support search (`search.*`, logs/selectors.py through bench/selectors.py),
the same searches as a support user and an integrator meet them, whole requests (the console's
list and notification page through Django's test client, `console.*` in bench/console.py;
GET /api/v1/logs over HTTP per filter, `api.list.*` in bench/logs_api.py), `send.sender`
(bench/send.py) and `callbacks.freshness` (bench/callbacks.py), without their baselines (the
single node is the baseline here). `--only` narrows them, `--set` changes a
size as in any run, `--smoke` runs them tiny.

How: the harness runs twice, one process after the other, with the same selection and sizes
(so the same seed): first on the configured database (DATABASE_URL, as `make bench`), then
with DATABASE_URL at the coordinator of scripts/citus-cluster's cluster and
DATABASE_CITUS=true, where it creates its database on every node with the extension and
migrates it (the log distributed by environment, logs/citus.py) and drops it at the end. A
running cluster (CITUS_PORT, CITUS_DATA_DIR) is used as it is; else one is started, and
stopped when the run ends. Each child's progress goes to stderr; the table printed here puts
each row of the single node above its `citus.` row, whose "vs baseline" is Citus's median /
the single node's (times: 1.60x is 60% slower) and whose note gives the same ratio of the
p95s. Written to bench/results-citus.json (results-citus-smoke.json for --smoke).

On one machine the cluster cannot be faster: its three servers share the cores the single
node had to itself, and each statement makes one more hop (coordinator to worker). The goal
is that router queries (every search names its environment: one shard) stay within 2x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import (
    BENCH_DIR,
    LEGEND,
    ROOT,
    citus_cluster,
    compare_to_baselines,
    format_machine,
    format_table,
    select,
    sizes_for,
)

# What --citus runs when --only does not say, and its sizes past the scenarios' full ones.
# 100,000 notifications over 7 days in 3 environments: the seed of the full run at a tenth,
# made twice (once per database). The callbacks at half the full run's rate for half as
# long: the cluster's worker shares the two cores with three servers.
ROWS = ["search.*", "console.*", "api.list", "send.sender", "callbacks.freshness"]
SIZES = [
    "notifications=100000",
    "days=7",
    "environments=3",
    "callbacks.freshness.rate=100",
    "callbacks.freshness.duration=10",
]
# The goal for router queries: at most this many times the single node's median.
GOAL = 2.0
# The rows the goal is read on: the searches, and the requests that run them.
SEARCHES = ("search.", "console.", "api.list")


def _sets(selected, smoke: bool, overrides: list[str]) -> list[str]:
    """The --set items for the children: ROWS' sizes that apply to the selected scenarios
    (none for --smoke), then the command line's (which must apply, as in any run)."""
    own = [] if smoke else [item for item in SIZES if _applies(selected, item)]
    sizes_for(selected, smoke, overrides)  # a --set that fits nothing is an error here
    return [*own, *overrides]


def _applies(selected, item: str) -> bool:
    try:
        sizes_for(selected, False, [item])
    except ValueError:
        return False
    return True


def _cluster() -> tuple[str, bool]:
    """The coordinator's DATABASE_URL, and whether this run started the cluster."""
    try:
        return citus_cluster("status"), False
    except RuntimeError:
        pass
    citus_cluster("available")  # raises with the script's "how to get Citus"
    print("bench --citus: starting the Citus cluster (scripts/citus-cluster)", file=sys.stderr)
    return citus_cluster("start").splitlines()[-1], True


def _child(args: argparse.Namespace, sets: list[str], output: Path, env: dict) -> int:
    command = [sys.executable, "-m", "bench", "--without-baselines", "--output", str(output),
               "--loadgen", args.loadgen]  # fmt: skip
    command += ["--smoke"] if args.smoke else []
    for name in args.only:
        command += ["--only", name]
    for item in sets:
        command += ["--set", item]
    # Its table is printed here, with the other's: its stdout goes to a file, shown on failure.
    with open(output.with_suffix(".out"), "w") as stdout:
        status = subprocess.run(command, cwd=ROOT, env=env, stdout=stdout).returncode
    if status and not output.exists():
        sys.stderr.write(output.with_suffix(".out").read_text())
    return status


def combine(single: list[dict[str, Any]], citus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each single-node row (its own baseline) followed by its `citus.` row (baselined on it,
    the note giving the p95s' ratio too)."""
    rows: list[dict[str, Any]] = []
    on_citus = {row["name"]: row for row in citus}
    for row in single:
        rows.append({**row, "baseline": row["name"], "ratio": None})
        other = on_citus.pop(row["name"], None)
        if other is not None:
            rows.append({**other, "name": "citus." + row["name"], "baseline": row["name"],
                         "ratio": None})  # fmt: skip
    for name, other in on_citus.items():  # failed on the single node: no ratio
        rows.append({**other, "name": "citus." + name, "baseline": name, "ratio": None})
    compare_to_baselines(rows)
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        base = by_name.get(row["baseline"])
        if row["name"] == row["baseline"] or row["status"] != "ok" or not base:
            continue
        notes = []
        if base["status"] == "ok" and base["p95"]:
            row["p95_ratio"] = row["p95"] / base["p95"]
            notes.append(f"p95 {row['p95_ratio']:.2f}x single")
        if row["baseline"].startswith(SEARCHES) and row["ratio"] is not None:
            within = row["ratio"] <= GOAL
            notes.append(f"{'within' if within else 'OVER'} the {GOAL:g}x goal")
        row["note"] = "; ".join([*notes, row["note"]] if row["note"] else notes)
    return rows


def main(args: argparse.Namespace) -> int:
    mode = "citus-smoke" if args.smoke else "citus"
    args.only = args.only or list(ROWS)
    try:
        selected = select(args.only, baselines=False)
        sets = _sets(selected, args.smoke, args.set)
        url, started = _cluster()
    except (ValueError, RuntimeError) as exc:
        print(f"python -m bench --citus: {exc}", file=sys.stderr)
        return 2
    output = args.output or BENCH_DIR / f"results-{mode}.json"
    started_at = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    results: dict[str, dict] = {}
    statuses: list[int] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-citus-") as tmp:
            for where, env in (
                ("single", {**os.environ, "DATABASE_CITUS": "false"}),
                ("citus", {**os.environ, "DATABASE_URL": url, "DATABASE_CITUS": "true"}),
            ):
                print(f"bench --citus: the rows on the {where} node(s)", file=sys.stderr)
                path = Path(tmp) / f"{where}.json"
                statuses.append(_child(args, sets, path, env))
                if statuses[-1] == 130:
                    return 130
                if path.exists():
                    results[where] = json.loads(path.read_text())
    except KeyboardInterrupt:
        return 130
    finally:
        if started:
            print("bench --citus: stopping the cluster it started", file=sys.stderr)
            subprocess.run([str(ROOT / "scripts" / "citus-cluster"), "stop"], check=False)
    if set(results) != {"single", "citus"}:
        missing = sorted({"single", "citus"} - set(results))
        print(f"python -m bench --citus: no results from {', '.join(missing)}", file=sys.stderr)
        return 1
    rows = combine(results["single"]["rows"], results["citus"]["rows"])
    elapsed = time.monotonic() - clock
    machine = results["single"]["machine"]
    citus_machine = results["citus"]["machine"]
    print()
    print(f"Benchmarks ({mode}), {started_at:%Y-%m-%d %H:%M} UTC, {elapsed:.1f}s")
    if machine:
        print(format_machine(machine))
    if citus_machine:
        print(
            f"citus:      a coordinator and 2 workers (scripts/citus-cluster), "
            f"{citus_machine['database']}, PostgreSQL {citus_machine['postgresql']}"
        )
    print()
    print(format_table(rows))
    print()
    print(LEGEND)
    print(
        "citus.X: row X on the Citus cluster; vs baseline: its median / the single node's in "
        f"this run. Goal: the searches (router queries) within {GOAL:g}x; the console.* and "
        "api.list* rows are the same searches as whole requests."
    )
    failed = [row["name"] for row in rows if row["status"] != "ok"]
    ok = not failed and not any(statuses)
    output.write_text(
        json.dumps(
            {
                "mode": mode,
                "ok": ok,
                "started_at": started_at.isoformat(timespec="seconds"),
                "elapsed_s": round(elapsed, 3),
                "machine": machine,
                "citus_machine": citus_machine,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 0 if ok else 1
