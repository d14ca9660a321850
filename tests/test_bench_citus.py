"""`python -m bench --citus` (`make bench-citus`): the searches (alone, and as the console's
and the API's requests), send.sender and callback freshness on one PostgreSQL and on the
three-node Citus cluster in the same run, each Citus row with its ratio to the single node's
(bench/citus.py).

The run itself needs Citus (scripts/citus-cluster available: CITUS_PG_CONFIG or a source
tarball) and Redis; it uses a running cluster (CITUS_PORT) or starts and stops one. It runs at
the smoke size, a few minutes (two databases created and migrated, one distributed)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import citus, harness

ROOT = Path(__file__).resolve().parent.parent
ROWS = ["search.email", "search.page_20", "console.email", "api.list", "send.sender",
        "callbacks.freshness"]  # fmt: skip
# api.list's rows past its own: the list per filter, and the cost of any request.
API_ROWS = ["api.list.email", "api.list.provider_message_id", "api.list.auth_floor"]


def _citus_available() -> tuple[bool, str]:
    result = subprocess.run(
        [str(ROOT / "scripts" / "citus-cluster"), "available"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0, result.stderr.strip()


@pytest.mark.redis
def test_the_citus_mode_prints_each_row_on_the_cluster_with_its_ratio_to_one_node(
    tmp_path, redis_url
):
    available, why = _citus_available()
    if not available:
        pytest.skip(f"no Citus to benchmark (scripts/citus-cluster available: {why})")
    output = tmp_path / "citus.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--citus", "--smoke", "--only", ",".join(ROWS),
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "REDIS_URL": redis_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    rows = {row["name"]: row for row in json.loads(output.read_text())["rows"]}
    for name in [*ROWS, *API_ROWS]:
        single, on_citus = rows[name], rows[f"citus.{name}"]
        assert single["status"] == on_citus["status"] == "ok"
        assert on_citus["baseline"] == name
        assert on_citus["median"] > 0 and on_citus["p95"] > 0
        assert on_citus["ratio"] == pytest.approx(on_citus["median"] / single["median"])
        assert on_citus["p95_ratio"] == pytest.approx(on_citus["p95"] / single["p95"])
        # The table: the Citus row with its number, its ratio and the single row it is to.
        line = re.search(rf"^citus\.{re.escape(name)} .*$", result.stdout, re.M)
        assert line, result.stdout
        assert re.search(rf"\s[\d.]+\s+[\d.]+\s+\S.*\s[\d.]+x\s.*\s{re.escape(name)}\s", line[0])
        assert "x single" in line[0]
    for name in ["search.email", "console.email", "api.list.email"]:  # the searches
        assert re.search(r"(within|OVER) the 2x goal", rows[f"citus.{name}"]["note"])
    assert "2x goal" not in rows["citus.send.sender"]["note"]  # not a search
    assert re.search(r"^citus: +a coordinator and 2 workers", result.stdout, re.M)


def test_the_citus_mode_defaults_to_the_searches_requests_send_and_freshness_without_baselines():
    harness.discover()
    names = [cls.name for cls, _ in harness.select(citus.ROWS, baselines=False)]
    assert {"send.sender", "callbacks.freshness", "search.email", "search.page_20"} <= set(names)
    # The searches as the console's requests and the API list's (one row per filter).
    assert {"console.email", "console.tracking_id", "console.notification_page"} <= set(names)
    assert "api.list" in names
    assert not [name for name in names if name.startswith(("naive.", "floor", "admin_default"))]
    assert len([name for name in names if name.startswith("search.")]) >= 12


def test_the_citus_sizes_apply_only_where_a_selected_scenario_has_them():
    harness.discover()
    selected = harness.select(["search.email"], baselines=False)
    sets = citus._sets(selected, False, ["repeat=3"])
    assert sets == ["notifications=100000", "days=7", "environments=3", "repeat=3"]
    assert citus._sets(selected, True, []) == []  # --smoke: the smoke sizes
    with pytest.raises(ValueError, match="rate"):
        citus._sets(selected, False, ["rate=5"])


def test_citus_and_scale_do_not_mix(capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--citus", "--scale", "10m"])
    assert "no --scale" in capsys.readouterr().err
