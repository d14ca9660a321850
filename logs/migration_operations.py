"""Migration operations that change an index of a partitioned log table while it is written.

A plain AddIndex on a partitioned table builds the index on every partition in one statement
that holds SHARE on each of them (writers wait for the whole build); RemoveIndex holds ACCESS
EXCLUSIVE while it waits for readers. PostgreSQL cannot build an index on a partitioned table
CONCURRENTLY, so these operations build it in steps, as docs/architecture.md asks of index
changes on the log:

1. `CREATE INDEX … ON ONLY parent`: an empty, invalid index on the parent alone (catalog
   work, in one short transaction of the partition managers: its lock wait is bounded by
   LOG_PARTITION_LOCK_TIMEOUT_MS and retried, so writers queue behind it at most that long);
2. for each partition, `CREATE INDEX CONCURRENTLY IF NOT EXISTS` (writers go on) then
   `ALTER INDEX parent ATTACH PARTITION child` (catalog work, bounded and retried like 1.).
   DEFAULT goes last: PostgreSQL marks the parent's index valid when an ATTACH completes it,
   and DEFAULT is the one partition the retention purge never detaches, so the last ATTACH is
   always ours. A day created meanwhile gets its index from the parent (`LIKE … INCLUDING
   ALL`, then ATTACH).

Every step is idempotent, so an operation interrupted half-way (a deploy killed, a lock that
stayed busy) is finished by running `migrate` again: indexes already built and attached are
kept, and the invalid leftover of a cancelled concurrent build is dropped and built again.
Dropping an index of the parent cannot be done concurrently at all (PostgreSQL refuses DROP
INDEX CONCURRENTLY on a partitioned index): it is a short transaction that takes the parent
and its partitions in ACCESS EXCLUSIVE under the same bounded, retried lock wait, and drops
(files are unlinked at commit; nothing is scanned).

A unique constraint whose definition changes (`PartitionedUniqueReplace`: logs 0016 indexes
the event dedupe key's hash) is the same build of its unique index beside the old one, which
keeps refusing duplicates until the swap drops it (as a constraint or as an index).

The migration that uses them must say `atomic = False` (a concurrent build cannot run in a
transaction). `manage.py sqlmigrate` prints what they run, for the migration linter
(tests/test_migration_lint.py), with the DEFAULT partition standing for every partition.
"""

import logging

from django.conf import settings
from django.db import DatabaseError, migrations, models

from logs.partitions import catalog_change

logger = logging.getLogger(__name__)

# A catalog step retries this many times (backoff up to 2 s each) before the migration gives
# up with PartitionBusy: a minute or so of a lock that never came free. `migrate` again goes on
# where it stopped.
_ATTEMPTS = 30
_NEXT = "_next"  # suffix of the replacement while PartitionedIndexReplace builds it


def _quote(schema_editor, name: str) -> str:
    return schema_editor.quote_name(name)


def _child_name(partition: str, index_name: str) -> str:
    return f"{partition}_{index_name}"[:63]


def _create_sql(
    schema_editor, model, index: models.Index, *, table: str, name: str, only: bool
) -> str:
    """Django's own CREATE INDEX for `index`, on `table` under `name`, made idempotent: on the
    partitioned parent alone (`only`), or CONCURRENTLY on one partition."""
    statement = index.create_sql(model, schema_editor, concurrently=not only)
    statement.rename_table_references(model._meta.db_table, table)
    statement.parts["name"] = _quote(schema_editor, name)
    statement.template = statement.template.replace(
        "%(name)s ON %(table)s",
        "IF NOT EXISTS %(name)s ON ONLY %(table)s"
        if only
        else "IF NOT EXISTS %(name)s ON %(table)s",
    )
    return str(statement)


def _index_state(cursor, name: str) -> bool | None:
    """None when no index has this name, else whether it is valid."""
    cursor.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(quote_ident(%s))", [name]
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _definition(cursor, name: str) -> str | None:
    """The index's definition with its own name taken out, to compare two indexes."""
    cursor.execute(
        "SELECT regexp_replace(pg_get_indexdef(indexrelid), '^(CREATE (UNIQUE )?INDEX )\\S+', "
        "'\\1') FROM pg_index WHERE indexrelid = to_regclass(quote_ident(%s))",
        [name],
    )
    row = cursor.fetchone()
    return None if row is None else row[0]


def _partitions(cursor, table: str) -> list[str]:
    """The table's partitions, DEFAULT last (see the module's docstring)."""
    cursor.execute(
        "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
        "WHERE inhparent = %s::regclass AND child.relkind = 'r' "
        "ORDER BY pg_get_expr(child.relpartbound, child.oid) = 'DEFAULT', child.relname",
        [table],
    )
    return [name for (name,) in cursor.fetchall()]


def _attached(cursor, parent_index: str) -> set[str]:
    """Partitions whose valid index is attached to `parent_index`."""
    cursor.execute(
        "SELECT tab.relname FROM pg_inherits "
        "JOIN pg_index ON pg_index.indexrelid = inhrelid "
        "JOIN pg_class tab ON tab.oid = pg_index.indrelid "
        "WHERE inhparent = to_regclass(quote_ident(%s)) AND pg_index.indisvalid",
        [parent_index],
    )
    return {name for (name,) in cursor.fetchall()}


class _Session:
    """lock_timeout and statement_timeout for the concurrent builds, put back afterwards
    (`migrate` lifts statement_timeout for all of its migrations: RESET would undo that)."""

    def __init__(self, cursor) -> None:
        self.cursor = cursor

    def __enter__(self):
        self.cursor.execute(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')"
        )
        self.saved = self.cursor.fetchone()
        # A concurrent build takes its time, and waits for every transaction older than it (a
        # long export): writers never queue behind its lock (SHARE UPDATE EXCLUSIVE).
        self.cursor.execute("SELECT set_config('lock_timeout', '0', false)")
        self.cursor.execute("SELECT set_config('statement_timeout', '0', false)")
        return self

    def __exit__(self, *exc) -> None:
        self.cursor.execute(
            "SELECT set_config('lock_timeout', %s, false), "
            "set_config('statement_timeout', %s, false)",
            list(self.saved),
        )


class _Runner:
    """The steps, run against the database or, under `sqlmigrate`, printed."""

    def __init__(self, schema_editor, model) -> None:
        self.schema_editor = schema_editor
        self.model = model
        self.table = model._meta.db_table
        self.collecting = schema_editor.collect_sql
        if not self.collecting and schema_editor.connection.in_atomic_block:
            raise RuntimeError(
                f"An online index change on {self.table} cannot run in a transaction: set "
                "`atomic = False` on the migration (CREATE INDEX CONCURRENTLY refuses one)."
            )

    def q(self, name: str) -> str:
        return _quote(self.schema_editor, name)

    def catalog(self, what: str, statements: list[str], *, lock: str | None = None) -> None:
        """Statements run together in one short, bounded, retried transaction; `lock` first
        takes the parent and its partitions in that mode, in the order writers do."""

        def change(budget) -> None:
            if lock:
                budget.lock([self.table], lock)
                budget.lock(_partitions(budget.cursor, self.table), lock)
            budget.arm()
            for statement in statements:
                budget.cursor.execute(statement)

        if self.collecting:
            timeout = f"'{settings.LOG_PARTITION_LOCK_TIMEOUT_MS}ms'"
            self.schema_editor.collected_sql.append(f"SET lock_timeout = {timeout};")
            if lock:
                self.schema_editor.collected_sql.append(
                    f"LOCK TABLE {self.q(self.table)} IN {lock} MODE;"
                )
            for statement in statements:
                # The linter's known-safe exceptions, with their reasons (config/migration_lint.py).
                if statement.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")):
                    self.schema_editor.collected_sql.append(
                        "-- squawk-ignore require-concurrent-index-creation -- ON ONLY the "
                        "parent: catalog only, nothing is built"
                    )
                elif statement.startswith("DROP INDEX"):
                    self.schema_editor.collected_sql.append(
                        "-- squawk-ignore require-concurrent-index-deletion -- a partitioned "
                        "index (CONCURRENTLY is refused): catalog only, lock wait bounded"
                    )
                self.schema_editor.collected_sql.append(f"{statement};")
            self.schema_editor.collected_sql.append("RESET lock_timeout;")
            return
        catalog_change(what, change, attempts=_ATTEMPTS)

    def build(self, index: models.Index, *, name: str) -> None:
        """The index `index` under `name` on the parent and every partition, valid at the end."""
        parent = _create_sql(
            self.schema_editor, self.model, index, table=self.table, name=name, only=True
        )
        if self.collecting:
            self.catalog(f"creating {name} on {self.table}", [parent])
            partition = f"{self.table}_default"
            child = _child_name(partition, name)
            self.schema_editor.collected_sql.append(
                f"-- For each partition of {self.table}, {partition} last:"
            )
            self.schema_editor.collected_sql.append(
                _create_sql(
                    self.schema_editor, self.model, index, table=partition, name=child, only=False
                )
                + ";"
            )
            self.catalog(
                f"attaching {child}",
                [f"ALTER INDEX {self.q(name)} ATTACH PARTITION {self.q(child)}"],
            )
            return
        with self.schema_editor.connection.cursor() as cursor, _Session(cursor):
            if _index_state(cursor, name):
                return  # built by an earlier run
            self.catalog(f"creating {name} on {self.table}", [parent])
            for _ in range(_ATTEMPTS):
                attached = _attached(cursor, name)
                missing = [p for p in _partitions(cursor, self.table) if p not in attached]
                if not missing:
                    break
                for partition in missing:
                    self._build_on(cursor, index, name=name, partition=partition)
            if not _index_state(cursor, name):
                raise RuntimeError(
                    f"The index {name} on {self.table} is not valid yet: partitions kept being "
                    "added while it was built (run migrate again: it goes on where it "
                    "stopped), or, if every partition has it, one was detached before its "
                    f"index was attached and PostgreSQL never checks again: `DROP INDEX {name}` "
                    "and run migrate again."
                )

    def _build_on(self, cursor, index: models.Index, *, name: str, partition: str) -> None:
        child = _child_name(partition, name)
        if _index_state(cursor, child) is False:
            # The leftover of a cancelled concurrent build: invalid, not attached. Again.
            logger.info("Dropping the invalid index %s left by an interrupted build.", child)
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {self.q(child)}")
        try:
            cursor.execute(
                _create_sql(
                    self.schema_editor, self.model, index, table=partition, name=child, only=False
                )
            )
            self.catalog(
                f"attaching {child}",
                [f"ALTER INDEX {self.q(name)} ATTACH PARTITION {self.q(child)}"],
            )
        except DatabaseError:
            # A day the retention purge detached (or dropped) meanwhile: nothing to attach
            # to any more. Anything else is real. The next round lists the partitions again.
            if partition in _partitions(cursor, self.table):
                raise

    def drop(self, name: str, *, partitions: bool = True) -> None:
        """Drop the parent's index and with it every partition's: one short transaction
        (`partitions=False`: an index of the parent alone, which locks only the parent)."""
        self.catalog(
            f"dropping {name} on {self.table}",
            [f"DROP INDEX IF EXISTS {self.q(name)}"],
            lock="ACCESS EXCLUSIVE" if partitions else None,
        )

    def replace(self, index: models.Index) -> None:
        """`index` in place of the index of that name: the new one built aside under another
        name, then swapped in (the old dropped, the new renamed) in one short transaction."""
        name, next_name = index.name, f"{index.name}{_NEXT}"
        if not self.collecting:
            with self.schema_editor.connection.cursor() as cursor:
                if _index_state(cursor, next_name) is None and _index_state(cursor, name):
                    # Already in place (a run stopped after the swap)? Compare definitions.
                    probe = f"{index.name}_probe"
                    self.catalog(
                        f"creating {probe}",
                        [
                            _create_sql(
                                self.schema_editor,
                                self.model,
                                index,
                                table=self.table,
                                name=probe,
                                only=True,
                            )
                        ],
                    )
                    same = _definition(cursor, probe) == _definition(cursor, name)
                    self.drop(probe, partitions=False)
                    if same:
                        return
        self.build(index, name=next_name)
        # A unique index may be a table constraint's (`UNIQUE (…)`, Django's UniqueConstraint
        # over fields): dropping the constraint drops its index, and DROP INDEX refuses it.
        constraint = (
            [f"ALTER TABLE {self.q(self.table)} DROP CONSTRAINT IF EXISTS {self.q(name)}"]
            if isinstance(index, _UniqueIndex)
            else []
        )
        self.catalog(
            f"swapping {next_name} for {name}",
            [
                *constraint,
                f"DROP INDEX IF EXISTS {self.q(name)}",
                f"ALTER INDEX {self.q(next_name)} RENAME TO {self.q(name)}",
            ],
            lock="ACCESS EXCLUSIVE",
        )
        if self.collecting:
            return
        # The partitions' indexes by the name they would have had (SHARE UPDATE EXCLUSIVE on
        # each: writers do not wait). Cosmetic, so a name already taken is left as it is.
        with self.schema_editor.connection.cursor() as cursor:
            for partition in _partitions(cursor, self.table):
                old, new = _child_name(partition, next_name), _child_name(partition, name)
                if _index_state(cursor, old) is not None and _index_state(cursor, new) is None:
                    cursor.execute(f"ALTER INDEX {self.q(old)} RENAME TO {self.q(new)}")


class _Online:
    def _runner(self, app_label: str, schema_editor, state, model_name: str) -> _Runner | None:
        model = state.apps.get_model(app_label, model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, model):
            return None
        return _Runner(schema_editor, model)


class PartitionedFieldAdd(_Online, migrations.AddField):
    """AddField on a partitioned log table: a nullable column without default, added by one
    `ALTER TABLE … ADD COLUMN` on the parent (PostgreSQL adds it to every partition): catalog
    only, no scan, no rewrite, but ACCESS EXCLUSIVE on each table for that instant. So it runs
    as the catalog steps above do: the parent and its partitions locked in the order writers
    take them, each wait bounded by LOG_PARTITION_LOCK_TIMEOUT_MS and the whole retried,
    where a plain AddField would queue every writer behind a long reader of the log. Same
    state change as AddField, so makemigrations sees no difference. Reversed by dropping
    the column (catalog only too)."""

    reduces_to_sql = True

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner is None:
            return
        field = runner.model._meta.get_field(self.name)
        if not field.null or field.has_default() or field.db_default is not models.NOT_PROVIDED:
            raise ValueError(
                f"{self.model_name}.{self.name}: only a nullable column without a default is "
                "a catalog-only change; give it null=True and no default."
            )
        definition, params = schema_editor.column_sql(runner.model, field, include_default=False)
        if params:
            raise ValueError(f"{self.model_name}.{self.name}: its column SQL takes parameters.")
        runner.catalog(
            f"adding {field.column} to {runner.table}",
            [
                f"ALTER TABLE {runner.q(runner.table)} ADD COLUMN IF NOT EXISTS "
                f"{runner.q(field.column)} {definition}"
            ],
            lock="ACCESS EXCLUSIVE",
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, from_state, self.model_name)
        if runner is None:
            return
        column = runner.model._meta.get_field(self.name).column
        runner.catalog(
            f"dropping {column} from {runner.table}",
            [f"ALTER TABLE {runner.q(runner.table)} DROP COLUMN IF EXISTS {runner.q(column)}"],
            lock="ACCESS EXCLUSIVE",
        )

    def describe(self):
        return f"Add field {self.name} to partitioned {self.model_name}, lock wait bounded"


class PartitionedIndexAdd(_Online, migrations.AddIndex):
    """AddIndex on a partitioned log table, built online one partition at a time (see the
    module's docstring). Same state change as AddIndex, so makemigrations sees no difference;
    inside SeparateDatabaseAndState(database_operations=…) it builds an index the models do
    not declare."""

    reduces_to_sql = True  # sqlmigrate prints the steps

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            runner.build(self.index, name=self.index.name)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, from_state, self.model_name)
        if runner:
            runner.drop(self.index.name)

    def describe(self):
        return f"Create index {self.index.name} on partitioned {self.model_name}, online"


class PartitionedIndexRemove(_Online, migrations.RemoveIndex):
    """RemoveIndex on a partitioned log table: one short, bounded, retried transaction;
    reversed by building the index online."""

    reduces_to_sql = True

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, from_state, self.model_name)
        if runner:
            runner.drop(self.name)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            runner.build(index, name=self.name)

    def describe(self):
        return f"Remove index {self.name} from partitioned {self.model_name}, online"


class PartitionedIndexReplace(_Online, migrations.AddIndex):
    """Change the definition of an index of a partitioned log table, keeping its name: the
    new one is built online beside the old one and swapped in, so searches always have one.
    Reversed the same way with the old definition."""

    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        state.remove_index(app_label, self.model_name_lower, self.index.name)
        state.add_index(app_label, self.model_name_lower, self.index)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            runner.replace(self.index)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            previous = to_state.models[app_label, self.model_name_lower].get_index_by_name(
                self.index.name
            )
            runner.replace(previous)

    def describe(self):
        return f"Replace index {self.index.name} on partitioned {self.model_name}, online"

    @property
    def migration_name_fragment(self):
        return f"replace_{self.model_name_lower}_{self.index.name.lower()}"

    def reduce(self, operation, app_label):
        return False  # never folded into another index operation by squashmigrations


class _UniqueIndex:
    """A UniqueConstraint as the unique index it is built as, for the runner (which builds
    models.Index): `CREATE UNIQUE INDEX`, CONCURRENTLY on a partition. A constraint over
    fields alone is written as Django would write it over the same columns as expressions,
    so it is an index too (PostgreSQL cannot add a constraint to a partitioned table USING an
    index built beforehand)."""

    def __init__(self, constraint: models.UniqueConstraint) -> None:
        if constraint.fields:
            constraint = models.UniqueConstraint(
                *(models.F(field) for field in constraint.fields),
                name=constraint.name,
                condition=constraint.condition,
            )
        self.constraint = constraint
        self.name = constraint.name

    def create_sql(self, model, schema_editor, *, concurrently: bool = False):
        statement = self.constraint.create_sql(model, schema_editor)
        if concurrently:
            statement.template = statement.template.replace(
                "CREATE UNIQUE INDEX", "CREATE UNIQUE INDEX CONCURRENTLY", 1
            )
        return statement


class PartitionedUniqueReplace(_Online, migrations.AddConstraint):
    """Change the definition of a unique constraint of a partitioned log table, keeping its
    name, as PartitionedIndexReplace does for an index: the new unique index is built online
    beside the old one (which keeps refusing duplicates meanwhile) and swapped in. The new
    definition must have expressions (a unique index: see _UniqueIndex). Reversed the same way
    with the old definition, which comes back as a unique index of the same columns."""

    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        state.remove_constraint(app_label, self.model_name_lower, self.constraint.name)
        state.add_constraint(app_label, self.model_name_lower, self.constraint)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            runner.replace(_UniqueIndex(self.constraint))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        runner = self._runner(app_label, schema_editor, to_state, self.model_name)
        if runner:
            previous = to_state.models[app_label, self.model_name_lower].get_constraint_by_name(
                self.constraint.name
            )
            runner.replace(_UniqueIndex(previous))

    def describe(self):
        return (
            f"Replace unique constraint {self.constraint.name} on partitioned "
            f"{self.model_name}, online"
        )

    @property
    def migration_name_fragment(self):
        return f"replace_{self.model_name_lower}_{self.constraint.name.lower()}"

    def reduce(self, operation, app_label):
        return False
