"""HTTP load for scenarios that measure a server: wrk when installed, else a Python generator.

`run_load()` is what scenarios call; it always loads the server from a separate process, so
the load generator never shares a CPU-bound interpreter with the harness. Both tools return
the same summary (see `run_load`).

The Python generator (`python -m bench.loadgen --url ...`, prints one JSON line) runs one
thread per connection, each with its own keep-alive http.client connection (it reconnects
when the server closes, as gunicorn's sync workers do). It is bounded twice: by duration and
by a total request count. It costs more CPU per request than wrk, which matters on small
machines: the summary names the tool, so figures from different tools are not compared.

Only 127.0.0.1 is loaded: `run_load` refuses any other host.

`url` may be a list of URLs differing only in their port (servers started with
bench.server.start_gunicorns): the connections are then split evenly between them, as a load
balancer would. Behind one listening socket shared by several gunicorn workers, which worker
accepts a connection is a race: a run's 16 keep-alive connections sometimes all land on one
worker, which halves the throughput of that run and made the same server's figure jump
between two values from one run to the next.
"""

import argparse
import http.client
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.stats import percentile

ROOT = Path(__file__).resolve().parent.parent


def available_tool(preference: str = "auto") -> str:
    """ "wrk" or "python": the tool `run_load` uses for this preference (auto|wrk|python)."""
    if preference not in {"auto", "wrk", "python"}:
        raise ValueError(f"unknown load generator {preference!r}: use auto, wrk or python")
    if preference == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    if preference == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    return preference


def tool_version(tool: str) -> str:
    if tool != "wrk":
        return f"python {sys.version.split()[0]} (threads, http.client keep-alive)"
    # `wrk -v` prints its version and exits 1.
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def run_load(
    url: str | list[str],
    *,
    connections: int,
    duration: float,
    warmup: float = 0.0,
    max_requests: int = 1_000_000,
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    tool: str = "auto",
) -> dict:
    """Load url with `connections` concurrent connections for warmup + duration seconds.

    Returns {"tool", "connections", "duration_s", "ok", "errors", "error_samples",
    "latency_ms": {"median", "p95", "p99", "max", "n"}, "throughput": {"overall",
    "windows"}, "total_ok"}: latencies and throughput cover only the measured part (after
    the warm-up); "windows" are requests/s of each full second (the Python tool only);
    "total_ok" counts 2xx responses including the warm-up.
    """
    urls = [url] if isinstance(url, str) else list(url)
    _check_urls(urls)
    if connections < 1 or duration <= 0 or max_requests < 1:
        raise ValueError("connections, duration and max_requests must be positive")
    if connections % len(urls):
        raise ValueError(f"{connections} connections do not split evenly over {len(urls)} URLs")
    tool = available_tool(tool)
    headers = dict(headers or {})
    if tool == "wrk":
        return _run_wrk(urls, connections, duration, warmup, method, body, headers, timeout)
    command = [
        sys.executable, "-m", "bench.loadgen", *[f"--url={one}" for one in urls],
        "--method", method,
        f"--body={body}", f"--headers={json.dumps(headers)}", "--connections", str(connections),
        "--duration", str(duration), "--warmup", str(warmup),
        "--max-requests", str(max_requests), "--timeout", str(timeout),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=warmup + duration + timeout + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the Python load generator exited with {done.returncode}:\n{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_urls(urls: list[str]) -> None:
    if not urls:
        raise ValueError("no URL to load")
    for one in urls:
        if urlsplit(one).hostname != "127.0.0.1":
            raise ValueError(f"load generators only target 127.0.0.1, not {one}")
    if len({urlsplit(one)._replace(netloc="") for one in urls}) > 1:
        raise ValueError(f"the URLs may differ only in their port: {urls}")


# --- wrk ------------------------------------------------------------------------------------

_WRK_SCRIPT = """
wrk.method = [==[{method}]==]
wrk.body = [==[{body}]==]
{headers}
-- One wrk thread per server, each with its share of the connections.
local ports = {{ {ports} }}
local threads = 0
function setup(thread)
  threads = threads + 1
  thread.addr = wrk.lookup("127.0.0.1", ports[threads])[1]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_WRK {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %.1f, "p95_us": %.1f, ' ..
    '"p99_us": %.1f, "max_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def _wrk_once(
    urls: list[str], connections: int, seconds: float, script: Path, timeout: float
) -> dict:
    whole_seconds = max(1, math.ceil(seconds))
    command = [
        "wrk", "-t", str(len(urls)), "-c", str(connections), "-d", f"{whole_seconds}s",
        "--timeout", f"{max(1, math.ceil(timeout))}s", "-s", str(script), urls[0],
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=whole_seconds + timeout + 60
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_WRK ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1].removeprefix("BENCH_WRK "))


def _run_wrk(urls, connections, duration, warmup, method, body, headers, timeout) -> dict:
    header_lines = "\n".join(
        f"wrk.headers[ [==[{name}]==] ] = [==[{value}]==]" for name, value in headers.items()
    )
    ports = ", ".join(f'"{urlsplit(one).port or 80}"' for one in urls)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        script = Path(tmp) / "load.lua"
        script.write_text(
            _WRK_SCRIPT.format(method=method, body=body, headers=header_lines, ports=ports)
        )
        warm = _wrk_once(urls, connections, warmup, script, timeout) if warmup > 0 else None
        main = _wrk_once(urls, connections, duration, script, timeout)

    def failures(result: dict) -> int:
        return sum(result[kind] for kind in ("connect", "read", "write", "status", "timeout"))

    def ok(result: dict | None) -> int:
        return 0 if result is None else max(0, result["requests"] - result["status"])

    seconds = main["duration_us"] / 1e6
    errors = failures(main)
    return {
        "tool": "wrk",
        "connections": connections,
        "duration_s": seconds,
        "ok": ok(main),
        "errors": errors,
        "error_samples": [
            f"{kind}: {main[kind]}"
            for kind in ("connect", "read", "write", "status", "timeout")
            if main[kind]
        ],
        "latency_ms": {
            "median": main["p50_us"] / 1000,
            "p95": main["p95_us"] / 1000,
            "p99": main["p99_us"] / 1000,
            "max": main["max_us"] / 1000,
            "n": ok(main),
        },
        "throughput": {"overall": main["requests"] / seconds if seconds else 0.0, "windows": []},
        "total_ok": ok(warm) + ok(main),
    }


# --- the Python load generator (runs in its own process) ------------------------------------


class _Budget:
    """A request count shared by the connection threads."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def _connection_loop(target, stop_at, budget, timings, errors, timeout) -> None:
    host, port, path, method, body, headers = target
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        while True:
            start = time.perf_counter()
            if start >= stop_at or not budget.take():
                return
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                errors.append((start, f"{type(exc).__name__}: {exc}"))
                time.sleep(0.05)  # do not spin on a server that refuses connections
                continue
            end = time.perf_counter()
            if 200 <= response.status < 300:
                timings.append((start, end))
            else:
                errors.append((start, f"HTTP {response.status}"))
    finally:
        connection.close()


def generate_load(
    urls, *, connections, duration, warmup, max_requests, method, body, headers, timeout
) -> dict:
    _check_urls(urls)
    parts = urlsplit(urls[0])
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    payload = body.encode() if body else None
    # Connection i goes to server i modulo their number: the same share for each.
    targets = [
        (parts.hostname, urlsplit(one).port or 80, path, method, payload, headers) for one in urls
    ]
    budget = _Budget(max_requests)
    begin = time.perf_counter()
    measure_from = begin + warmup
    stop_at = measure_from + duration
    timings: list[list[tuple[float, float]]] = [[] for _ in range(connections)]
    errors: list[list[tuple[float, str]]] = [[] for _ in range(connections)]
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(targets[i % len(targets)], stop_at, budget, timings[i], errors[i], timeout),
            daemon=True,
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, stop_at - time.perf_counter()) + timeout + 5)

    all_timings = [t for per_connection in timings for t in per_connection]
    all_errors = [e for per_connection in errors for e in per_connection]
    measured = [(start, end) for start, end in all_timings if start >= measure_from]
    measured_errors = [message for start, message in all_errors if start >= measure_from]
    latencies = [(end - start) * 1000 for start, end in measured]
    # The measured window ends at the deadline, or earlier when the request budget ran out.
    window_end = min(stop_at, max((end for _, end in measured), default=stop_at))
    seconds = max(window_end - measure_from, 1e-9)
    completions = [end for _, end in measured if end <= window_end]
    full_windows = int(seconds)
    per_window = [0] * full_windows
    for end in completions:
        index = int(end - measure_from)
        if index < full_windows:
            per_window[index] += 1
    samples = sorted({message for message in measured_errors})[:5]
    return {
        "tool": "python",
        "connections": connections,
        "duration_s": seconds,
        "ok": len(measured),
        "errors": len(measured_errors),
        "error_samples": samples,
        "latency_ms": {
            "median": percentile(latencies, 50) if latencies else None,
            "p95": percentile(latencies, 95) if latencies else None,
            "p99": percentile(latencies, 99) if latencies else None,
            "max": max(latencies, default=None),
            "n": len(latencies),
        },
        "throughput": {"overall": len(completions) / seconds, "windows": per_window},
        "total_ok": len(all_timings),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, action="append", help="repeat for several")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--headers", default="{}", help="a JSON object")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = generate_load(
        args.url,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        max_requests=args.max_requests,
        method=args.method,
        body=args.body,
        headers=json.loads(args.headers),
        timeout=args.timeout,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
