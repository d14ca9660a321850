"""logs.statements.prepared_rows: the hot paths' prepared statements. A statement of many
parameters (a batch's event writes) has its placeholders numbered once per text and goes
through a RawCursor; one with another % in it keeps psycopg's own parsing."""

import pytest

from logs.statements import _numbered, prepared_rows

pytestmark = pytest.mark.django_db


def test_a_statement_of_many_parameters_is_numbered_once_and_runs():
    sql = "SELECT " + " + ".join(["%s::int"] * 120)
    _numbered.cache_clear()
    assert prepared_rows(sql, list(range(120))) == [(sum(range(120)),)]
    assert prepared_rows(sql, [1] * 120) == [(120,)]
    assert _numbered.cache_info().hits == 1  # the second run reused the numbered text
    assert _numbered(sql).startswith("SELECT $1::int + $2::int")


def test_a_statement_with_another_percent_keeps_psycopgs_parsing():
    assert _numbered("SELECT 'a%%b', %s::int") is None
    assert prepared_rows("SELECT 'a%%b', %s::int", [7]) == [("a%b", 7)]
