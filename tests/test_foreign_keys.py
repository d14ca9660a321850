"""Every foreign key has an index that leads with its columns.

Deleting a row makes PostgreSQL look up the rows that refer to it in every referencing table
(to cascade, set null or refuse). Without an index on the referencing columns that is a scan
of the whole referencing table per deleted row: a purge batch of 5,000 rows, or a tenant's
deletion, then reads a table of millions 5,000 times, and never finishes under the statement
timeout. The check reads the catalog, so a foreign key added later without its index fails
here, not in production."""

import pytest
from django.db import connection

# Foreign keys of the database (on partitioned tables, the parent's: each partition's copy
# follows it) whose leading columns no valid, non-partial, non-expression index covers. A
# partitioned table's index counts when its own definition covers them (every partition
# gets one).
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname,
       (SELECT array_agg(a.attname ORDER BY k.ord)
        FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)::text[]
FROM pg_constraint c
JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND c.conparentid = 0 AND n.nspname = current_schema()
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i
    WHERE i.indrelid = c.conrelid AND i.indisvalid AND i.indpred IS NULL
      AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
      AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
  )
ORDER BY 1, 2
"""


def unindexed_foreign_keys() -> list[tuple[str, str, list[str]]]:
    with connection.cursor() as cursor:
        cursor.execute(UNINDEXED_FOREIGN_KEYS)
        return cursor.fetchall()


@pytest.mark.django_db
def test_every_foreign_key_has_an_index_that_leads_with_it():
    assert unindexed_foreign_keys() == [], (
        "Add an index leading with these foreign keys' columns (models.Index, built with "
        "AddIndexConcurrently on a big table), or every delete of a row they refer to scans "
        "the whole table."
    )


@pytest.mark.django_db
def test_the_check_finds_an_unindexed_foreign_key_and_accepts_it_once_indexed():
    """The guard can fail: a table whose foreign key has no index (or only a partial one, or
    one where it is not the leading column) is reported until a leading index is built."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE fk_check_child (id bigint PRIMARY KEY, other int, "
            "environment_id bigint REFERENCES accounts_environment (id) ON DELETE CASCADE)"
        )
        cursor.execute("CREATE INDEX fk_check_second ON fk_check_child (other, environment_id)")
        cursor.execute(
            "CREATE INDEX fk_check_partial ON fk_check_child (environment_id) WHERE other = 1"
        )
        found = [row for row in unindexed_foreign_keys() if row[0] == "fk_check_child"]
        assert [(table, columns) for table, _, columns in found] == [
            ("fk_check_child", ["environment_id"])
        ]
        cursor.execute("CREATE INDEX fk_check_leading ON fk_check_child (environment_id, other)")
    assert unindexed_foreign_keys() == []
