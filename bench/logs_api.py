"""The logs API end to end: HTTP requests to gunicorn, as an integrator's script makes them.

Rows (on the shared seed of bench/selectors.py: 1,000,000 notifications, 3 environments):

- `api.list`: GET /api/v1/logs, one page of 50, no filter; `api.list.X`: the same with each
  filter X, values drawn from the seeded data and rotated (the same searches as
  `search.X`, now through authentication, validation, serialization and HTTP).
- `api.query`: NotificationAPI's POST /{clientId}/logs/query (page of 50, with each record's
  events); `api.query.request_filter_*`: with a requestFilter: an equality on a nested merge
  tag (one order id: the GIN index on request answers it), an equality matching a third of the
  rows (notificationId), and a wildcard (no index: evaluated on rows in date order).
- `api.export`: GET /api/v1/logs/export?format=ndjson of every environment in turn, by one
  gunicorn worker: rows per second, and the worker's peak memory growth (MB) over the
  whole export (every seeded row, 1,000,000 at full size).

Requests are sequential from this process (one keep-alive connection), so each sample is one
request's latency; gunicorn runs 2 gthread workers as in `floor`. The rate limit is lifted
for the servers started here.
"""

import base64
import itertools
import logging
import os
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from accounts.models import Environment
from bench.harness import BenchmarkError, Measurement, Run, Scenario, register, time_calls
from bench.selectors import FULL, SEARCHES, SMOKE, _seeded
from bench.server import start_gunicorn
from logs.models import Notification

PAGE = 50
logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
# Query parameters of GET /api/v1/logs for each search of bench/selectors.py.
API_PARAMS = {
    "tracking_id": lambda v: {"trackingId": str(v)},
    "user_id": lambda v: {"userId": v},
    "email": lambda v: {"email": v.upper()},
    "email_prefix": lambda v: {"emailPrefix": v},
    "number": lambda v: {"number": v},
    "provider_message_id": lambda v: {"providerMessageId": v},
    "type": lambda v: {"type": v},
    "status": lambda v: {"status": v},
    "channel": lambda v: {"channel": v},
    "two_channels": lambda v: {"channel": list(v)},
    "event_sub_kind": lambda v: {"eventSubKind": v},
    "event_kind": lambda v: {"eventKind": v},
}


def _lift_rate_limit(run: Run) -> None:
    # The servers inherit this process's environment (run.subprocess_env).
    previous = os.environ.get("LOGS_API_THROTTLE_RATE")
    os.environ["LOGS_API_THROTTLE_RATE"] = "10000000/minute"

    def restore() -> None:
        if previous is None:
            os.environ.pop("LOGS_API_THROTTLE_RATE", None)
        else:
            os.environ["LOGS_API_THROTTLE_RATE"] = previous

    run.defer(restore)


def _client(run: Run, base_url: str, environment: Environment) -> httpx.Client:
    token = base64.b64encode(f"{environment.client_id}:{environment.client_secret()}".encode())
    client = httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Basic {token.decode()}"},
        timeout=120,
        trust_env=False,  # straight to 127.0.0.1, whatever http_proxy says
    )
    run.defer(client.close)
    return client


def _ok(response: httpx.Response, what: str) -> dict:
    if response.status_code != 200:
        raise BenchmarkError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


class _ApiScenario(Scenario):
    smoke_size = {**SMOKE, "workers": 2, "threads": 4}
    full_size = {**FULL, "workers": 2, "threads": 4}

    def setup(self, run: Run) -> None:
        self.summary = _seeded(run, self.size)
        self.environment = Environment.objects.get(pk=self.summary.environment_ids[0])
        _lift_rate_limit(run)
        base_url = start_gunicorn(run, workers=self.size["workers"], threads=self.size["threads"])
        self.client = _client(run, base_url, self.environment)


@register
class ApiList(_ApiScenario):
    name = "api.list"
    baseline = None
    description = "GET /api/v1/logs over HTTP (gunicorn): no filter, then each filter"

    def _rows(self, params: dict, must_find: bool, what: str) -> None:
        body = _ok(self.client.get("/api/v1/logs", params={**params, "limit": PAGE}), what)
        if must_find and not body["results"]:
            raise BenchmarkError(f"{what}: nothing found for seeded value(s) {params}")

    def measure(self, run: Run) -> dict[str, Measurement]:
        repeat = self.size["repeat"]
        rows = {
            self.name: time_calls(
                lambda: self._rows({}, True, self.name), repeat=repeat, note=f"page of {PAGE}"
            )
        }
        for search in SEARCHES:
            if search.name not in API_PARAMS:
                raise BenchmarkError(f"bench/logs_api.py: no API parameters for {search.name}")
            values = search.values(self.summary, self.environment.pk)
            random.Random(search.name).shuffle(values)
            cycle = itertools.cycle(values)
            name = f"{self.name}.{search.name}"
            rows[name] = time_calls(
                lambda s=search, c=cycle, n=name: self._rows(
                    API_PARAMS[s.name](next(c)), s.must_find, n
                ),
                repeat=repeat,
                baseline=self.name,
            )
        rows[f"{self.name}.created_range"] = self._created_range(repeat)
        # What any authenticated request costs here (credentials, middleware, HTTP): the part
        # of each row above that is not the search.
        rows[f"{self.name}.auth_floor"] = time_calls(
            lambda: _ok(self.client.get("/api/v1/environment"), "GET /api/v1/environment"),
            repeat=repeat,
            baseline=self.name,
            note="GET /api/v1/environment",
        )
        return rows

    def _created_range(self, repeat: int) -> Measurement:
        start, end = self.summary.start, self.summary.end
        hours = max(1, int((end - start).total_seconds() // 3600) - 1)
        offsets = itertools.cycle(random.Random(1).sample(range(hours), min(hours, 50)))

        def call():
            since = start + timedelta(hours=next(offsets))
            window = {
                "createdFrom": since.isoformat(),
                "createdTo": (since + timedelta(hours=1)).isoformat(),
            }
            self._rows(window, False, f"{self.name}.created_range")

        return time_calls(call, repeat=repeat, baseline=self.name, note="one-hour windows")


def _request_filter_values(environment_id: int, count: int) -> list[str]:
    # Real order ids from the seeded requests (untimed).
    rows = Notification.objects.filter(
        environment_id=environment_id, notification_type="order_tracking"
    ).values_list("request__mergeTags__orderId", flat=True)[: count * 20]
    values = sorted({value for value in rows if value})
    random.Random(2).shuffle(values)
    return values[:count]


@register
class ApiQuery(_ApiScenario):
    name = "api.query"
    baseline = None
    description = "POST /{clientId}/logs/query over HTTP: no filter, then requestFilters"

    def _query(self, body: dict, what: str, must_find: bool = True) -> list[dict]:
        path = f"/{self.environment.client_id}/logs/query"
        logs = _ok(self.client.post(path, json={**body, "limit": PAGE}), what)["logs"]
        if must_find and not logs:
            raise BenchmarkError(f"{what}: nothing found for {body}")
        return logs

    def measure(self, run: Run) -> dict[str, Measurement]:
        repeat = self.size["repeat"]
        name = self.name
        order_ids = _request_filter_values(self.environment.pk, 50)
        if not order_ids:
            raise BenchmarkError("the seed has no order_tracking requests with an orderId")
        orders = itertools.cycle(order_ids)

        def by_order_id():
            order_id = next(orders)
            expression = f'request.mergeTags.orderId = "{order_id}"'
            logs = self._query({"requestFilter": [expression]}, f"{name}.request_filter_eq")
            if any(log["request"]["mergeTags"].get("orderId") != order_id for log in logs):
                raise BenchmarkError(f"{name}: a log that does not match {expression}")

        def by_type():
            logs = self._query(
                {"requestFilter": ["request.notificationId = order_tracking"]},
                f"{name}.request_filter_common",
            )
            if len(logs) != PAGE:
                raise BenchmarkError(f"{name}: expected a full page of order_tracking")

        # "ORD-123*": about one order id in a thousand, found only by reading the rows.
        prefixes = itertools.cycle([o[:7] for o in order_ids])

        def by_wildcard():
            self._query(
                {"requestFilter": [f'request.mergeTags.orderId = "{next(prefixes)}*"']},
                f"{name}.request_filter_wildcard",
            )

        return {
            name: time_calls(lambda: self._query({}, name), repeat=repeat, note=f"page of {PAGE}"),
            f"{name}.request_filter_eq": time_calls(
                by_order_id, repeat=repeat, baseline=name, note="orderId = one value (GIN)"
            ),
            f"{name}.request_filter_common": time_calls(
                by_type, repeat=repeat, baseline=name, note="notificationId = 1/3 of rows"
            ),
            f"{name}.request_filter_wildcard": time_calls(
                by_wildcard,
                repeat=min(repeat, 10),
                baseline=name,
                note="orderId = 'ORD-123*' (no index: reads rows)",
            ),
        }


def _worker_pid(master_pid: int) -> int:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    if len(children) != 1:
        raise BenchmarkError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def _memory_kb(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def _gunicorn_children() -> set[int]:
    me = os.getpid()
    children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    found = set()
    for pid in map(int, children):
        try:
            if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
        except FileNotFoundError:
            continue
    return found


@register
class ApiExport(Scenario):
    name = "api.export"
    baseline = None
    description = "GET /api/v1/logs/export (ndjson) of every seeded row through one worker"
    smoke_size = {**SMOKE, "sample_every": 500}
    full_size = {**FULL, "sample_every": 5000}

    def setup(self, run: Run) -> None:
        self.summary = _seeded(run, self.size)
        _lift_rate_limit(run)
        before = _gunicorn_children()
        base_url = start_gunicorn(run, workers=1, threads=1)
        (master,) = _gunicorn_children() - before
        self.worker = _worker_pid(master)
        self.clients = [
            _client(run, base_url, Environment.objects.get(pk=pk))
            for pk in self.summary.environment_ids
        ]

    def _export(self, client: httpx.Client, peak: list[int], **filters: str) -> int:
        lines = 0
        params = {"format": "ndjson", **filters}
        with client.stream("GET", "/api/v1/logs/export", params=params) as response:
            if response.status_code != 200:
                raise BenchmarkError(f"export: HTTP {response.status_code}")
            for _ in response.iter_lines():
                lines += 1
                if lines % self.size["sample_every"] == 0:
                    peak[0] = max(peak[0], _memory_kb(self.worker)["VmRSS"])
        return lines

    def measure(self, run: Run) -> dict[str, Measurement]:
        # Warm the worker up (imports, connection, the export's code path) with an export
        # of nothing, so the baseline is taken before any row has been streamed.
        self._export(self.clients[0], [0], trackingId=str(uuid.uuid4()))
        start_rss = _memory_kb(self.worker)["VmRSS"]
        peak = [start_rss]
        rows, started = 0, time.perf_counter()
        for client in self.clients:
            rows += self._export(client, peak)
        seconds = time.perf_counter() - started
        peak[0] = max(peak[0], _memory_kb(self.worker)["VmRSS"])
        # Other scenarios (alerts, insights, the stream) add notifications to the seeded
        # environments: the export must give every row that is there, seeded or not.
        stored = Notification.objects.filter(environment_id__in=self.summary.environment_ids)
        if rows != (expected := stored.count()):
            raise BenchmarkError(f"exported {rows} rows, {expected} stored")
        growth_mb = (peak[0] - start_rss) / 1024
        return {
            self.name: Measurement.from_samples(
                [rows / seconds], "rows/s", higher_is_better=True, note=f"{rows:,} rows"
            ),
            f"{self.name}.memory": Measurement.from_samples(
                [growth_mb],
                "MB",
                note=f"worker peak RSS growth over {rows:,} rows (goal < 100)",
                start_rss_mb=start_rss / 1024,
            ),
        }
