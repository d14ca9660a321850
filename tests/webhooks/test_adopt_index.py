"""inbox_adopt runs on commit of every Sent that names a message id: at ten million
notifications a day, many times a second. Its lookup (pending or orphaned rows naming the
id) must be an index probe whatever the size of the inbox, never a read of every pending row
or of the whole inbox."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webhooks.models import InboxEntry, InboxState
from webhooks.services import inbox_adopt

INBOX_ROWS = 200_000
INDEX = "inbox_adopt_ids"


@pytest.fixture
def big_inbox(db):
    """200,000 callbacks of the six whole days before today, each naming its message: mostly
    processed, one in fifty still pending (waiting for its message, or not processed yet), one
    in a hundred orphaned. Then ANALYZE, as autovacuum would have by this size. Whole days:
    a day partition holding only a few minutes' callbacks (today's, in the first minutes of a
    day, or a week ago's, in its last) is rightly read whole, which would read as a fault."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO webhooks_inbox (received_at, provider, path, headers, body,
                environment_restricted, state, attempts, next_attempt_at, message_ids,
                events_recorded, error)
            SELECT date_trunc('day', now()) - (1 + i %% 8640) * interval '1 minute', 'twilio_sms',
                '/webhooks/twilio/sms',
                '{}', 'MessageStatus=delivered', false,
                CASE WHEN i %% 50 = 0 THEN 'pending' WHEN i %% 100 = 1 THEN 'orphaned'
                     ELSE 'processed' END,
                1, now(), ARRAY['SM' || i], 1, ''
            FROM generate_series(1, %s) AS i
            """,
            [INBOX_ROWS],
        )
        cursor.execute("ANALYZE webhooks_inbox")


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _inbox_scans(sql: str) -> list[tuple[str, str, str]]:
    """(node type, relation, index) of each node of the plan of `sql` that reads the inbox.
    An index of a partition is named by the parent index it belongs to (a partition made
    later gets its own name for it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    scans = []
    for node in _plan_nodes(plan[0]["Plan"]):
        relation, index = node.get("Relation Name", ""), node.get("Index Name", "")
        if not relation.startswith("webhooks_inbox") and not index:
            continue
        scans.append((node["Node Type"], relation, _parent_index(index) if index else ""))
    return scans


def _parent_index(index: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT parent.relname FROM pg_inherits JOIN pg_class parent ON parent.oid = inhparent"
            " WHERE inhrelid = %s::regclass",
            [index],
        )
        row = cursor.fetchone()
    return row[0] if row else index


def _holds_rows(relation: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples > 0 FROM pg_class WHERE relname = %s", [relation])
        return cursor.fetchone()[0]


def _adopt_query(message_id: str) -> str:
    """The SELECT inbox_adopt runs for `message_id`, as it ran it."""
    with CaptureQueriesContext(connection) as queries:
        inbox_adopt(provider_message_id=message_id)
    [select] = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    return select


@pytest.mark.parametrize(
    ("message_id", "state"), [("SM500", InboxState.PENDING), ("SM501", InboxState.ORPHANED)]
)
def test_adopting_a_message_reads_only_its_callbacks_through_the_adopt_index(
    big_inbox, message_id, state
):
    [row] = InboxEntry.objects.filter(message_ids__contains=[message_id])
    assert row.state == state

    sql = _adopt_query(message_id)

    scans = _inbox_scans(sql)
    assert scans, sql
    # Each partition holding callbacks is probed through its part of the adopt index (a
    # bitmap of the rows naming the id), never scanned, nor read through another index and
    # filtered. (An empty partition, a day ahead, may be scanned: it has no page to read.)
    probes = [index for kind, _, index in scans if kind == "Bitmap Index Scan"]
    assert probes and set(probes) == {INDEX}, scans
    reads = [
        (kind, relation)
        for kind, relation, _ in scans
        if kind in ("Seq Scan", "Index Scan", "Index Only Scan") and _holds_rows(relation)
    ]
    assert not reads, scans
    # And the callback waiting for the message is handed back to processing.
    row.refresh_from_db()
    assert row.state == InboxState.PENDING
