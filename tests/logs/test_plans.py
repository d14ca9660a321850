"""Every support search is an index lookup that reads about a page: the plans of the queries
each selector runs, on seeded data with fresh statistics and run for real (EXPLAIN ANALYZE),
contain no sequential scan of a partition that has rows, no Sort of more than a few pages of
rows, and no scan that reads more than a few pages of rows (a filter rejecting most of an
index range counts as reading it)."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from demo.loader import seed_logs
from logs.models import Delivery
from logs.search_filters import NotificationFilters
from logs.selectors import notification_get, notification_page, notification_timeline
from logs.services import event_record
from tests.webhooks.test_adopt_index import _parent_index

PAGE = 50
# "Far more rows than the page": a node may handle a few pages' worth (a filtered search
# reads candidates in rounds of a few pages), never the whole match.
READ_BOUND = 10 * (PAGE + 1)
# A lookup by key descends one B-tree (a few pages) and reads its row(s).
LOOKUP_PAGES = 10
# A scan run once per row of the node above it (a semi-join's probe of one notification's
# events by its key) reads that row's own rows: at most this many each time, and it runs at
# most READ_BOUND times (the rows above are checked themselves).
LOOKUP_ROWS = 30
SCANS = {"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan", "Bitmap Index Scan"}


@pytest.fixture
def seeded(db):
    # One full day of rows (ending at midnight, so no partly filled partition): a partition
    # big enough that PostgreSQL weighs index against sequential scans as it does at scale.
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    summary = seed_logs(notifications=15_000, days=1, environments=2, seed=11, end=midnight)
    environment_id = summary.environment_ids[0]
    return environment_id, summary.samples[environment_id]


def _plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _rows_in(relation: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [relation])
        return cursor.fetchone()[0]


def _explain(query: dict | str, *, analyze: bool) -> dict:
    """The plan of a captured query. One the code ran as a prepared statement (logs.
    statements.prepared_rows) is explained as PostgreSQL runs it: planned once, for any
    values (a generic plan, as config/settings/datastores.py asks), then executed with
    these."""
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    sql = query if isinstance(query, str) else query["sql"]
    prepared = None if isinstance(query, str) else query.get("prepared")
    with connection.cursor() as cursor:
        if prepared is None:
            cursor.execute(f"EXPLAIN ({options}) {sql}")
            plan = cursor.fetchone()[0]
        else:
            text, params = prepared
            numbered = iter(range(1, len(params) + 1))
            text = re.sub(r"%s", lambda _: f"${next(numbered)}", text.replace("%%", "%"))
            placeholders = ", ".join(["%s"] * len(params))
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE explained AS {text}")
            try:
                cursor.execute(f"EXPLAIN ({options}) EXECUTE explained({placeholders})", params)
                plan = cursor.fetchone()[0]
            finally:
                cursor.execute("DEALLOCATE explained")
                cursor.execute("RESET plan_cache_mode")
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return plan[0]["Plan"]


def _sequential_scans(query: dict | str) -> list[str]:
    return [
        f"sequential scan of {node['Relation Name']}"
        for node in _plan_nodes(_explain(query, analyze=False))
        if node["Node Type"] == "Seq Scan" and _rows_in(node["Relation Name"]) > 0
    ]


def _rows_read(node: dict) -> float:
    # What a node went through, not what it passed on: rows a filter threw away were read too.
    per_loop = sum(
        node.get(key, 0)
        for key in ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
    )
    return per_loop * node.get("Actual Loops", 1)


def _plan_faults(query: dict | str) -> list[str]:
    """What in this query's plan, run for real, reads far more than a page or no index."""
    faults = _sequential_scans(query)
    for node in _plan_nodes(_explain(query, analyze=True)):
        kind = node["Node Type"]
        if kind == "Sort":
            sorted_rows = sum(_rows_read(child) for child in node.get("Plans", []))
            if sorted_rows > READ_BOUND:
                faults.append(f"Sort of {sorted_rows:.0f} rows")
        elif kind in SCANS:
            where = node.get("Relation Name") or node.get("Index Name")
            loops = node.get("Actual Loops", 1)
            if loops > 1 and (_rows_read(node) / loops > LOOKUP_ROWS or loops > READ_BOUND):
                per_loop = _rows_read(node) / loops
                faults.append(f"{kind} of {where} run {loops} times, {per_loop:.0f} rows each")
            elif loops <= 1 and _rows_read(node) > READ_BOUND:
                faults.append(f"{kind} of {where} reading {_rows_read(node):.0f} rows")
    return faults


def _wide_lookups(sql: str) -> list[str]:
    """Scans that touch more index and table pages than finding a few rows by key takes. An
    index whose leading column the query does not name is still used, but read whole: the
    rows it returns look fine, the pages it reads do not."""
    faults = []
    for node in _plan_nodes(_explain(sql, analyze=True)):
        if node["Node Type"] not in SCANS:
            continue
        pages = node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
        per_loop = pages / max(node.get("Actual Loops", 1), 1)
        if per_loop > LOOKUP_PAGES:
            where = node.get("Index Name") or node.get("Relation Name")
            faults.append(f"{node['Node Type']} of {where}: {per_loop:.0f} pages")
    return faults


def _searches(sample) -> dict[str, NotificationFilters]:
    return {
        "tracking id": NotificationFilters(tracking_ids=[sample.tracking_ids[0]]),
        "user id": NotificationFilters(user_ids=[sample.user_ids[0]]),
        "email": NotificationFilters(email=sample.emails[0].upper()),
        "email prefix": NotificationFilters(email_prefix=sample.emails[0][:6]),
        "number": NotificationFilters(number=sample.numbers[0]),
        "provider message id": NotificationFilters(
            provider_message_id=sample.provider_message_ids[0]
        ),
        "type": NotificationFilters(notification_types=[sample.notification_types[0]]),
        "status": NotificationFilters(statuses=["failure"]),
        # Most rows: not in the partial notif_env_status, read from notif_env_created.
        "status success": NotificationFilters(statuses=["success"]),
        "channel": NotificationFilters(channels=["sms"]),
        "two channels": NotificationFilters(channels=["sms", "call"]),
        "event kind": NotificationFilters(event_kind="failed"),
        "engagement": NotificationFilters(event_kind="engagement"),
        # The pipeline's kinds, on nearly every notification: not in the kind indexes, the
        # newest notifications (or a channel's deliveries) checked for the event.
        "universal event kind": NotificationFilters(event_kind="sent"),
        "received": NotificationFilters(event_kind="received"),
        "universal event kind and failure": NotificationFilters(
            event_kind="sending", statuses=["failure"]
        ),
        "universal event kind and type": NotificationFilters(
            event_kind="delivered", notification_types=["order_tracking"]
        ),
        "channel and universal event kind": NotificationFilters(
            channels=["email"], event_kind="sent"
        ),
        "channel, success and universal event kind": NotificationFilters(
            channels=["email"], statuses=["success"], event_kind="delivered"
        ),
        "event sub-kind": NotificationFilters(event_sub_kind="bounce"),
        "channel and status": NotificationFilters(channels=["email"], statuses=["failure"]),
        "two channels and status": NotificationFilters(
            channels=["sms", "call"], statuses=["failure"]
        ),
        # A channel's own status or event (one delivery): delivery_env_channel_state and
        # event_env_channel_kind / _sub_kind, one range per channel and delivery state.
        "channel and success": NotificationFilters(channels=["sms"], statuses=["success"]),
        "channel and received": NotificationFilters(channels=["email"], statuses=["received"]),
        "channel and event kind": NotificationFilters(channels=["sms"], event_kind="failed"),
        "channel and event sub-kind": NotificationFilters(
            channels=["email"], event_sub_kind="bounce"
        ),
        "two channels and event kind": NotificationFilters(
            channels=["sms", "call"], event_kind="delivered"
        ),
        "channel, status and event": NotificationFilters(
            channels=["email"], statuses=["failure"], event_kind="failed"
        ),
        "channel, event and type": NotificationFilters(
            channels=["email"], event_kind="delivered", notification_types=["order_tracking"]
        ),
        "two channels, event and type": NotificationFilters(
            channels=["email", "sms"], event_kind="delivered", notification_types=["order_tracking"]
        ),
        "provider message id and status": NotificationFilters(
            provider_message_id=sample.provider_message_ids[0], statuses=["success", "received"]
        ),
        "newest first": NotificationFilters(),
    }


@pytest.mark.django_db
def test_every_search_reads_about_a_page_from_an_index(seeded):
    environment_id, sample = seeded
    offenders = {}
    for name, filters in _searches(sample).items():
        with CaptureQueriesContext(connection) as queries:
            page = notification_page(environment_id=environment_id, filters=filters, limit=PAGE)
            # Page two too: the keyset condition must keep the index usable.
            if page.next_cursor:
                notification_page(
                    environment_id=environment_id,
                    filters=filters,
                    after=page.next_cursor,
                    limit=PAGE,
                )
            if page.notifications:
                list(notification_timeline(notification=page.notifications[0]))
        assert page.notifications, f"the seeded data has no match for {name}"
        faults = [fault for query in queries for fault in _plan_faults(query)]
        if faults:
            offenders[name] = faults
    assert not offenders, f"searches reading far more than a page: {offenders}"


@pytest.mark.django_db
def test_lookups_by_id_use_the_primary_key(seeded):
    """environment_id joined the keys (last): a notification by tracking id, a delivery by
    the provider's id and event_record's row lock still find their row through an index."""
    environment_id, sample = seeded
    with CaptureQueriesContext(connection) as queries:
        notification = notification_get(
            environment_id=environment_id, tracking_id=sample.tracking_ids[0]
        )
        list(Delivery.objects.filter(provider_message_id=sample.provider_message_ids[0]))
        event_record(
            notification_id=notification.id,
            notification_created_at=notification.created_at,
            kind="sent",
            channel="email",
            source="plan-test",
        )
    selects = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    assert any("FOR UPDATE" in sql for sql in selects), "event_record no longer locks a row"
    faults = {sql[:150]: _sequential_scans(sql) + _wide_lookups(sql) for sql in selects}
    assert not any(faults.values()), f"lookups that read more than their rows: {faults}"


@pytest.mark.django_db
def test_the_check_catches_a_lookup_reading_a_whole_index(seeded):
    """A primary key led by created_at, looked up by id alone: an index scan returning one
    row, and every page of the index read to find it. (Led by environment_id it would not do:
    PostgreSQL 18 skip-scans a leading column with two values in a few pages.)"""
    _, sample = seeded
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE logs_notification DROP CONSTRAINT logs_notification_pkey, "
            "ADD CONSTRAINT logs_notification_pkey PRIMARY KEY (created_at, id)"
        )
        cursor.execute("ANALYZE logs_notification")
        # The index, not a sequential scan (also a fault, but not the one under test).
        cursor.execute("SET LOCAL enable_seqscan = off")
    tracking_id = sample.tracking_ids[0]
    faults = _wide_lookups(f"SELECT * FROM logs_notification WHERE id = '{tracking_id}'")
    assert any("pkey" in fault for fault in faults), faults


@pytest.mark.django_db
def test_the_check_catches_a_sequential_scan(seeded):
    """The plan walk above is not vacuous: an unindexed search is reported."""
    assert _plan_faults("SELECT * FROM logs_notification WHERE timezone = 'Europe/Paris'")


@pytest.mark.django_db
def test_the_check_catches_a_sort_of_every_candidate(seeded):
    """The shape the two-channel search had: an IN over the channel index, which PostgreSQL
    cannot read in order, so it gathers and sorts every candidate for one page."""
    environment_id, _ = seeded
    faults = _plan_faults(
        "SELECT DISTINCT notification_created_at, notification_id FROM logs_delivery "
        f"WHERE environment_id = {environment_id} AND channel IN ('sms', 'call') "
        f"ORDER BY 1 DESC, 2 DESC LIMIT {PAGE + 1}"
    )
    assert any(fault.startswith("Sort of") for fault in faults), faults


@pytest.mark.django_db
def test_the_check_catches_an_index_scan_reading_far_more_than_the_page(seeded):
    """An index read in order whose filter rejects every row: the planner hopes to stop after
    a page (it guesses a third of the rows match) and reads the whole range instead."""
    environment_id, _ = seeded
    faults = _plan_faults(
        f"SELECT * FROM logs_notification WHERE environment_id = {environment_id} "
        "AND length(user_id) < 0 ORDER BY created_at DESC, id DESC LIMIT 50"
    )
    assert any(fault.startswith("Index Scan") for fault in faults), faults


def _indexes_read(query: dict | str) -> set[str]:
    """The indexes (by their log table's name for them) that the plan of `query`, run for
    real, reads rows through."""
    return {
        _parent_index(node["Index Name"])
        for node in _plan_nodes(_explain(query, analyze=True))
        if node.get("Index Name") and node.get("Actual Rows", 0) > 0
    }


@pytest.mark.django_db
def test_each_search_reads_the_index_docs_indexes_md_names(seeded):
    """docs/indexes.md says which index serves which search; the partial and merged ones
    only serve it when the query states their condition (a plan made once for any values
    cannot prove it from a parameter). Success (most rows) is not in the partial status index
    and reads the newest-first one; a message id is found through its hash."""
    environment_id, sample = seeded
    expected = {
        "status": ({"statuses": ["failure"]}, "notif_env_status"),
        "status success": ({"statuses": ["success"]}, "notif_env_created"),
        "channel and failure": (
            {"channels": ["email"], "statuses": ["failure"]},
            "delivery_env_channel_state",
        ),
        "provider message id": (
            {"provider_message_id": sample.provider_message_ids[0]},
            "delivery_provider_msg",
        ),
        # Rare kinds: the partial kind indexes, when the query names the kind.
        "event kind": ({"event_kind": "failed"}, "event_env_kind"),
        "event kind engagement": ({"event_kind": "engagement"}, "event_env_kind"),
        "channel and event kind": (
            {"channels": ["sms"], "event_kind": "failed"},
            "event_env_channel_kind",
        ),
        "event sub-kind": ({"event_sub_kind": "bounce"}, "event_env_sub_kind"),
        # Universal kinds: the newest notifications or deliveries, each checked for the
        # event on the delivery's own columns (the events folded into it: logs.timeline),
        # through its notification's key; never a kind index. Every notification has a
        # Received: its newest ones, unchecked.
        "universal event kind": (
            {"event_kind": "delivered"},
            {"notif_env_created", "delivery_unique_channel"},
        ),
        "received": ({"event_kind": "received"}, "notif_env_created"),
        "channel and universal event kind": (
            {"channels": ["sms"], "event_kind": "sent"},
            "delivery_env_channel",
        ),
        "channel, success and universal event kind": (
            {"channels": ["email"], "statuses": ["success"], "event_kind": "delivered"},
            "delivery_env_channel_state",
        ),
    }
    wrong = {}
    for name, (filters, indexes) in expected.items():
        with CaptureQueriesContext(connection) as queries:
            page = notification_page(
                environment_id=environment_id, filters=NotificationFilters(**filters), limit=PAGE
            )
        assert page.notifications, f"the seeded data has no match for {name}"
        read = set().union(*(_indexes_read(query) for query in queries))
        indexes = {indexes} if isinstance(indexes, str) else indexes
        if not indexes <= read:
            wrong[name] = (sorted(indexes), sorted(read))
    assert not wrong, f"searches not reading their index (expected, read): {wrong}"


@pytest.mark.django_db
def test_callbacks_find_deliveries_through_the_message_id_hash_index(seeded):
    """The callbacks' lookup of deliveries by the provider's message ids, as prepared by
    webhooks.services (a plan for any ids): the hash index, never a scan of the day."""
    from webhooks.services import _DELIVERIES_BY_MESSAGE_ID

    _, sample = seeded
    ids = list(sample.provider_message_ids[:3])
    query = {"sql": _DELIVERIES_BY_MESSAGE_ID, "prepared": (_DELIVERIES_BY_MESSAGE_ID, [ids])}
    assert _indexes_read(query) == {"delivery_provider_msg"}
    assert not _plan_faults(query)


@pytest.mark.django_db
def test_the_check_catches_a_lookup_run_per_row_reading_far_more_than_its_rows(seeded):
    """A subplan run for each notification that reads the whole environment's events each
    time: every loop a few rows short of all of them."""
    environment_id, _ = seeded
    faults = _plan_faults(
        f"SELECT id FROM logs_notification n WHERE environment_id = {environment_id} "
        "AND EXISTS (SELECT 1 FROM logs_event e WHERE e.environment_id = n.environment_id "
        "AND e.notification_created_at = n.created_at AND length(e.dedupe_key) < 0 OFFSET 0) "
        "ORDER BY created_at DESC, id DESC LIMIT 50"
    )
    assert any("times" in fault for fault in faults), faults


@pytest.mark.django_db
def test_an_environments_log_rows_are_in_an_index_that_leads_with_it():
    """Tenant deletion and per-account retention delete an environment's rows of each day in
    batches found by environment (accounts.deletion.environment_rows_purge: `WHERE
    environment_id = %s LIMIT n`), and the foreign key to the environment looks its rows up
    the same way: every row of every log table must be in an index led by environment_id
    (for events, event_env: the kind indexes are partial), or each batch reads the day."""
    from logs.partitions import PARTITIONED_TABLES
    from logs.retention import PURGE_ORDER

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, array_agg(x.relname ORDER BY x.relname) "
            "FILTER (WHERE a.attname = 'environment_id' AND i.indpred IS NULL) "
            "FROM pg_class c JOIN pg_index i ON i.indrelid = c.oid "
            "JOIN pg_class x ON x.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
            "WHERE c.relname = ANY(%s) GROUP BY 1",
            [list(PARTITIONED_TABLES)],
        )
        led = dict(cursor.fetchall())
    assert set(PARTITIONED_TABLES) <= set(PURGE_ORDER)
    assert led == {
        "logs_notification": ["notif_env_created", "notif_env_email", "notif_env_number",
                              "notif_env_type", "notif_env_user"],
        "logs_delivery": ["delivery_env_channel", "delivery_env_channel_state"],
        "logs_event": ["event_env"],
        "webhooks_inbox": ["inbox_env"],
    }  # fmt: skip
