"""The floor: the cheapest useful request this project can serve, over real HTTP.

One POST inserting one row (bench.floor_app.insert_row, through the project's whole
middleware stack), served by gunicorn (2 gthread workers, its own processes) and loaded from
another process by wrk or the Python load generator. Two rows: per-request latency (ms) and
throughput (requests/s). Every other HTTP scenario is slower than this on the same machine,
so it is the reference against which their figures make sense; its baseline is itself.
"""

import json

from django.db import connection

from bench.floor_app import CREATE_TABLE
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register
from bench.loadgen import run_load
from bench.server import start_gunicorn


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
        with connection.cursor() as cursor:
            cursor.execute(CREATE_TABLE)
            cursor.execute("TRUNCATE bench_floor")
        base_url = start_gunicorn(
            run,
            workers=self.size["workers"],
            threads=self.size["threads"],
            worker_class=self.size["worker_class"],
        )
        self.url = f"{base_url}/bench/floor"

    def measure(self, run: Run) -> dict[str, Measurement]:
        size = self.size
        result = run_load(
            self.url,
            connections=size["connections"],
            duration=size["duration"],
            warmup=size["warmup"],
            max_requests=size["max_requests"],
            method="POST",
            body=json.dumps({"source": "bench", "kind": "floor"}),
            headers={"Content-Type": "application/json"},
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
