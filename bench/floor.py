"""The floor: the cheapest useful request this project can serve, over real HTTP.

One POST inserting one row (bench.floor_app.insert_row, through the project's whole
middleware stack), served by gunicorn (2 gthread workers, each a server on a port of its own
with half the connections: bench.server.start_gunicorns) and loaded from
another process by wrk or the Python load generator. Two rows: per-request latency (ms) and
throughput (requests/s). Every other HTTP scenario is slower than this on the same machine,
so it is the reference against which their figures make sense; its baseline is itself.
"""

import json

from django.db import connection

from bench.floor_app import CREATE_TABLE
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from bench.loadgen import run_load
from bench.server import start_gunicorns
from bench.stats import percentile

# What every floor request posts.
FLOOR_BODY = json.dumps({"source": "bench", "kind": "floor"})
FLOOR_HEADERS = {"Content-Type": "application/json"}


@register
class Floor(Scenario):
    name = "floor"
    description = "POST inserting one row, gunicorn gthread, loaded over 127.0.0.1"
    smoke_size = {
        "duration": 2,
        "warmup": 0.5,
        "connections": 4,
        "workers": 2,
        "threads": 4,
        "worker_class": "gthread",
        "max_requests": 20_000,
    }
    full_size = {
        "duration": 10,
        "warmup": 2,
        "connections": 16,
        "workers": 2,
        "threads": 4,
        "worker_class": "gthread",
        "max_requests": 200_000,
    }

    def setup(self, run: Run) -> None:
        self.url = floor_start(run, self.size)
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE bench_floor")

    def measure(self, run: Run) -> dict[str, Measurement]:
        size = self.size
        result = run_load(
            self.url,
            connections=size["connections"],
            duration=size["duration"],
            warmup=size["warmup"],
            max_requests=size["max_requests"],
            method="POST",
            body=FLOOR_BODY,
            headers=FLOOR_HEADERS,
            tool=run.loadgen,
        )
        if result["errors"]:
            raise BenchmarkError(
                f"{result['errors']} failed requests: {'; '.join(result['error_samples'])}"
            )
        latency = result["latency_ms"]
        if not latency["n"]:
            raise BenchmarkError("no request completed in the measured window")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM bench_floor")
            (inserted,) = cursor.fetchone()
        # Every successful response must be a row (wrk may also have requests in flight at
        # its deadline that the server completed, hence at least).
        if inserted < result["total_ok"]:
            raise BenchmarkError(
                f"{result['total_ok']} successful responses but {inserted} rows in bench_floor"
            )
        setup = (
            f"{size['connections']} conns, gunicorn {size['workers']}x{size['threads']} "
            f"{size['worker_class']}, {result['tool']} loadgen"
        )
        throughput = result["throughput"]
        windows = throughput["windows"] or [throughput["overall"]]
        common = {"load": result, "rows_inserted": inserted}
        return {
            "floor": Measurement(
                median=latency["median"],
                p95=latency["p95"],
                unit="ms/request",
                n=latency["n"],
                note=f"{throughput['overall']:.0f} req/s; {setup}",
                extra=common,
            ),
            "floor.throughput": Measurement.from_samples(
                windows,
                "requests/s",
                higher_is_better=True,
                note="per 1s window" if throughput["windows"] else "whole run (wrk)",
            ),
        }


def floor_start(run: Run, size: dict) -> list[str]:
    """Floor servers of a scenario's `workers`, `threads` and `worker_class` (gthread unless
    it says), as start_gunicorns: their URLs. Started once per run for each shape and shared
    by the floor row and every scenario paired with it (paired_with_floor): a start costs
    seconds of importing the project."""
    worker_class = size.get("worker_class", "gthread")

    def start() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(CREATE_TABLE)
        servers = start_gunicorns(
            run,
            workers=size["workers"],
            threads=size["threads"],
            worker_class=worker_class,
            until_exit=True,
        )
        return [f"{base_url}/bench/floor" for base_url in servers]

    return run.once(("floor servers", size["workers"], size["threads"], worker_class), start)


def paired_with_floor(
    run: Run,
    *,
    row: str,
    floor_url: list[str],
    url: list[str],
    body: str,
    headers: dict[str, str],
    size: dict,
) -> Measurement:
    """A server's requests/s as a multiple of the floor's, measured in alternating rounds.

    On a small shared machine the floor's own rate drifts by a third over minutes (1,079 to
    1,515 requests/s within one session here): a ratio of two figures taken a minute apart
    says more about the drift than about the code. Here each round loads the floor and the
    server for `round_seconds` each, back to back (in ABBA order, so a steady drift cancels
    out), and gives one ratio; the row (named `row`) is the median of `rounds` ratios (p95:
    the 5th percentile)."""
    ratios, rates = [], {"floor": [], "target": []}
    for index in range(size["rounds"]):
        order = ("floor", "target") if index % 2 == 0 else ("target", "floor")
        rate = {}
        for which in order:
            target = which == "target"
            result = run_load(
                url if target else floor_url,
                connections=size["connections"],
                duration=size["round_seconds"],
                warmup=size["round_warmup"],
                max_requests=size["max_requests"],
                method="POST",
                body=body if target else FLOOR_BODY,
                headers=headers if target else FLOOR_HEADERS,
                tool=run.loadgen,
            )
            if result["errors"]:
                raise BenchmarkError(
                    f"{result['errors']} failed requests to {which}: "
                    + "; ".join(result["error_samples"])
                )
            rate[which] = result["throughput"]["overall"]
            rates[which].append(rate[which])
        ratios.append(rate["target"] / rate["floor"])
    return Measurement.from_samples(
        ratios,
        "x floor",
        higher_is_better=True,
        baseline=row,  # the ratio is the figure itself
        note=f"{len(ratios)} rounds of {size['round_seconds']}s each, alternating with the "
        f"floor; median {percentile(rates['target'], 50):.0f} vs "
        f"{percentile(rates['floor'], 50):.0f} req/s",
        rates=rates,
    )
