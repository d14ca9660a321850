"""The import layers (pyproject.toml's [tool.importlinter], docs/architecture.md's "Layers"):
the contracts hold on the project, and an import that brings back one of the cycles they
ended fails `lint-imports` (make test runs it), naming the contract it breaks."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# pyproject.toml's root_packages: every app and config.
PACKAGES = (
    "config", "accounts", "logs", "notifications", "webhooks", "stream", "alerts", "insights",
    "audit", "console", "demo",
)  # fmt: skip


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # The packages are found from `cwd` (python -c puts it first on sys.path), never from the
    # repository when `cwd` is a copy of it.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [p for p in paths if Path(p).resolve() != ROOT]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), *paths])}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())",
            "--no-cache",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_project_keeps_its_import_contracts():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(
    ("module", "line", "contract", "message"),
    [
        # A service importing its tasks module (notifications: dispatch <-> services <-> tasks).
        (
            "notifications/services/sends.py",
            "    from notifications.tasks import notification_dispatch_batch_task",
            "Tasks call services; services enqueue tasks by name (config/enqueue.py) BROKEN",
            "notifications.services is not allowed to import notifications.tasks",
        ),
        # The same, as a cycle between an app's modules (alerts: notices -> tasks -> back).
        (
            "alerts/notices.py",
            "    from alerts.tasks import alert_notice_send_task",
            "No import cycles between the modules of an app BROKEN",
            "No cycles are allowed in alerts.",
        ),
        # Tenant deletion importing the log's purge instead of finding it in the registry.
        (
            "accounts/deletion.py",
            "    from logs.partitions import partition_list",
            "Apps in layers that only point down BROKEN",
            "accounts is not allowed to import logs",
        ),
        # The sandbox provider calling up into the webhooks app.
        (
            "notifications/providers/sandbox.py",
            "    from webhooks.sandbox import sandbox_callbacks_enqueue",
            "Apps in layers that only point down BROKEN",
            "notifications is not allowed to import webhooks",
        ),
        # The logs API and config's admin helpers reaching up into the console again (the
        # masker and the viewer's times moved below them: logs/masking.py, config/times.py).
        (
            "logs/api/export.py",
            "    from console.presenting import pretty_json",
            "Apps in layers that only point down BROKEN",
            "logs is not allowed to import console",
        ),
        (
            "config/admin_display.py",
            "    from console.presenting import status_tone",
            "Apps in layers that only point down BROKEN",
            "config is not allowed to import console",
        ),
    ],
)
def test_a_reintroduced_cycle_fails_the_check(project_copy, module, line, contract, message):
    path = project_copy / module
    original = path.read_text()
    # Inside a function, as the cycles were: a late import is an import all the same.
    path.write_text(f"{original}\n\ndef _reintroduced():\n{line}\n")
    try:
        result = _lint_imports(project_copy)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    assert contract in result.stdout, result.stdout
    assert message in result.stdout, result.stdout
