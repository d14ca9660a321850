"""The migration linter: no migration may take a lock on a log table that stops its writers
for longer than a catalog change (docs/architecture.md, "Maintenance never blocks the log").

Every migration's SQL, as `manage.py sqlmigrate` prints it, goes through squawk (the
`squawk-cli` package), and what squawk finds about locks and rewrites is an error when the
statement is on a log table (logs.partitions.PARTITIONED_TABLES, or one of their partitions)
or comes from an operation on a log model: a plain CREATE INDEX, a DROP INDEX, ADD COLUMN
with a volatile DEFAULT, SET NOT NULL, a CHECK or foreign key without NOT VALID, a UNIQUE
constraint, a column type change, REINDEX; plus VACUUM FULL and CLUSTER, which squawk lets
through. Other tables are small and are not checked. `make test` runs it
(tests/test_migration_lint.py); `python -m config.migration_lint` prints the findings.

A statement known to be safe is marked where it is written, with its reason on the same line,
right above it in the SQL of a RunSQL:

    -- squawk-ignore require-concurrent-index-creation -- the table is created just above

(squawk's own comment; logs.migration_operations marks its catalog-only steps this way). An
operation whose SQL Django writes (AddField, AlterField, ...) gets an entry in KNOWN_SAFE
below, with its reason.

RunPython cannot be read: its SQL is whatever the function runs, so it is listed as not
linted. Index changes on the log belong in logs.migration_operations, which sqlmigrate prints.
"""

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps as django_apps
from django.conf import settings
from django.db import connection
from django.db.migrations import Migration, SeparateDatabaseAndState
from django.db.migrations.executor import MigrationExecutor

from logs.partitions import PARTITIONED_TABLES

# squawk's rules about locks held while a table is scanned, rewritten or indexed. Its other
# rules (naming, types, robustness) are matters of taste here and are not enforced.
BLOCKING_RULES = frozenset(
    {
        "adding-field-with-default",
        "adding-foreign-key-constraint",
        "adding-not-nullable-field",
        "adding-required-field",
        "adding-serial-primary-key-field",
        "ban-concurrent-index-creation-in-transaction",
        "changing-column-type",
        "constraint-missing-not-valid",
        "disallowed-unique-constraint",
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-reindex",
        "syntax-error",
    }
)
# What squawk does not catch, as (rule, pattern): both rewrite the table under ACCESS EXCLUSIVE.
_OWN_RULES = (
    ("vacuum-full", re.compile(r"^\s*VACUUM\s*(\([^)]*\bFULL\b[^)]*\)|\bFULL\b)", re.I | re.M)),
    ("cluster", re.compile(r"^\s*CLUSTER\b", re.I | re.M)),
)
# (app label, migration name, rule) -> why the statement is safe there. For statements whose
# SQL Django writes; hand-written SQL carries a `-- squawk-ignore` comment instead.
_BEFORE_ANY_ROW = (
    "written the day the log tables were created (logs 0001), before any install held a row: "
    "it only ever ran on empty tables"
)
KNOWN_SAFE: dict[tuple[str, str, str], str] = {
    ("logs", "0002_keys_with_environment_and_checks", "adding-serial-primary-key-field"): (
        _BEFORE_ANY_ROW
    ),
    ("logs", "0002_keys_with_environment_and_checks", "constraint-missing-not-valid"): (
        _BEFORE_ANY_ROW
    ),
    ("logs", "0002_keys_with_environment_and_checks", "disallowed-unique-constraint"): (
        _BEFORE_ANY_ROW
    ),
    ("logs", "0003_sub_kinds_fit_channels", "constraint-missing-not-valid"): _BEFORE_ANY_ROW,
}

_LOG_TABLE = re.compile(
    r'(?<![\w$])"?(?:'
    + "|".join(re.escape(table) for table in PARTITIONED_TABLES)
    + r')(?:_default|_p\d{8})?"?(?![\w$])'
)


@dataclass(frozen=True)
class Finding:
    migration: str  # "app_label.name"
    rule: str
    message: str
    statement: str

    def __str__(self) -> str:
        return f"{self.migration}: {self.rule}: {self.message}\n    {self.statement.strip()}"


@dataclass
class _Chunk:
    """Statements of one operation, and whether that operation is on a log model."""

    statements: list[str]
    on_log: bool


@dataclass
class MigrationSql:
    label: str  # "app_label.name"
    chunks: list[_Chunk]
    not_linted: list[str]  # operations that cannot be written as SQL (RunPython)

    def text(self) -> tuple[str, list[tuple[int, str, bool]]]:
        """The SQL, and for each statement its first line (0-based), text and log flag."""
        lines, statements = 0, []
        parts = []
        for chunk in self.chunks:
            for statement in chunk.statements:
                statements.append((lines, statement, chunk.on_log))
                parts.append(statement)
                lines += statement.count("\n") + 1
        return "\n".join(parts) + "\n", statements


def _is_log_model(state, app_label: str, operation) -> bool:
    name = getattr(operation, "model_name_lower", None) or getattr(operation, "name_lower", None)
    model_state = state.models.get((app_label, name)) if name else None
    if model_state is None:
        return False
    table = model_state.options.get("db_table") or f"{app_label}_{name}"
    return table in PARTITIONED_TABLES


def _collect(migration: Migration, state, editor, chunks, not_linted):
    """Migration.apply(collect_sql=True), without running RunPython (sqlmigrate runs the
    RunPython inside a SeparateDatabaseAndState for real) and noting what each operation
    wrote. Returns the state after the migration."""

    def emit(app_label, operation, from_state, to_state):
        if isinstance(operation, SeparateDatabaseAndState):
            for inner in operation.database_operations:
                inner_to = from_state.clone()
                inner.state_forwards(app_label, inner_to)
                emit(app_label, inner, from_state, inner_to)
                from_state = inner_to
            return
        if not operation.reduces_to_sql:
            not_linted.append(f"{migration.app_label}.{migration.name}: {operation.describe()}")
            chunks.append(_Chunk([f"-- not linted: {operation.describe()}"], False))
            return
        before = len(editor.collected_sql)
        operation.database_forwards(app_label, editor, from_state, to_state)
        on_log = _is_log_model(to_state, app_label, operation) or _is_log_model(
            from_state, app_label, operation
        )
        chunks.append(_Chunk(editor.collected_sql[before:], on_log))

    for operation in migration.operations:
        old_state = state.clone()
        operation.state_forwards(migration.app_label, state)
        emit(migration.app_label, operation, old_state, state)
    return state


def _project_apps() -> set[str]:
    """The project's own apps: Django's and third parties' never touch the log."""
    base = Path(settings.BASE_DIR).resolve()
    return {
        app.label
        for app in django_apps.get_app_configs()
        if Path(app.path).resolve().is_relative_to(base)
    }


def migration_sql(migration: Migration, state) -> tuple[MigrationSql, object]:
    """One migration's SQL as `sqlmigrate` prints it, from the project state before it; and
    the state after it."""
    chunks: list[_Chunk] = []
    not_linted: list[str] = []
    with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
        state = _collect(migration, state, editor, chunks, not_linted)
    deferred = editor.collected_sql[sum(len(c.statements) for c in chunks) :]
    if deferred:  # what the schema editor writes at the end (foreign keys, indexes)
        chunks.append(_Chunk(deferred, False))
    if migration.atomic and connection.features.can_rollback_ddl:
        chunks = [_Chunk(["BEGIN;"], False), *chunks, _Chunk(["COMMIT;"], False)]
    label = f"{migration.app_label}.{migration.name}"
    return MigrationSql(label, chunks, not_linted), state


def migrations_sql(*, app_labels: set[str] | None = None) -> list[MigrationSql]:
    """The SQL of every migration of `app_labels` (default: the project's apps), in the order
    `migrate` applies them on an empty database."""
    app_labels = _project_apps() if app_labels is None else app_labels
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes(), clean_start=True)
    state = executor.loader.project_state(())
    result = []
    for migration, _backwards in plan:
        if migration.app_label in app_labels:
            sql, state = migration_sql(migration, state)
            result.append(sql)
        else:
            state = migration.mutate_state(state, preserve=False)
    return result


def _squawk(files: dict[str, str]) -> list[dict]:
    """squawk's findings (JSON) over {name: sql}."""
    binary = Path(sys.executable).with_name("squawk")
    if not binary.exists():
        raise RuntimeError(
            f"{binary} is missing: the migration linter needs squawk (`make install` installs "
            "the test extra, which has squawk-cli)."
        )
    major, minor = divmod(connection.pg_version // 100, 100)
    with tempfile.TemporaryDirectory() as directory:
        paths = {}
        for name, sql in files.items():
            path = Path(directory) / f"{name}.sql"
            path.write_text(sql)
            paths[str(path)] = name
        completed = subprocess.run(
            [str(binary), "--reporter", "json", f"--pg-version={major}.{minor}", *paths],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if completed.returncode not in (0, 1) or not completed.stdout.strip().startswith("["):
        raise RuntimeError(f"squawk failed ({completed.returncode}): {completed.stderr}")
    findings = json.loads(completed.stdout)
    for finding in findings:
        finding["name"] = paths[finding["file"]]
    return findings


def lint(migrations: list[MigrationSql]) -> list[Finding]:
    """The blocking statements on log tables, minus KNOWN_SAFE."""
    texts = {m.label: m.text() for m in migrations}
    findings = []
    for raw in _squawk({label: sql for label, (sql, _) in texts.items()}):
        if raw["rule_name"] not in BLOCKING_RULES:
            continue
        _, statements = texts[raw["name"]]
        statement, on_log = next(
            (text, on_log) for first, text, on_log in reversed(statements) if first <= raw["line"]
        )
        if on_log or _LOG_TABLE.search(statement):
            findings.append(Finding(raw["name"], raw["rule_name"], raw["message"], statement))
    for migration in migrations:
        _, statements = texts[migration.label]
        for _, statement, on_log in statements:
            if on_log or _LOG_TABLE.search(statement):
                findings.extend(
                    Finding(
                        migration.label,
                        rule,
                        "rewrites the table under ACCESS EXCLUSIVE",
                        statement,
                    )
                    for rule, pattern in _OWN_RULES
                    if pattern.search(statement)
                )
    return [
        finding
        for finding in findings
        if (*finding.migration.split(".", 1), finding.rule) not in KNOWN_SAFE
    ]


def lint_sql(sql: str, *, label: str = "sql.statements", on_log: bool = False) -> list[Finding]:
    """Lint SQL given as text, one statement per entry ending in `;` (for tests and checks)."""
    statements = [s.strip() + ";" for s in sql.split(";\n") if s.strip().rstrip(";")]
    return lint([MigrationSql(label, [_Chunk(statements, on_log)], [])])


def main() -> int:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    migrations = migrations_sql()
    findings = lint(migrations)
    for finding in findings:
        print(finding)
    for operation in (op for m in migrations for op in m.not_linted):
        print(f"not linted (RunPython): {operation}")
    print(f"{len(findings)} blocking statement(s) on log tables in {len(migrations)} migrations.")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
