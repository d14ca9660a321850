"""The nightly purges of the unpartitioned tables finish at the size 10 million sends a day
makes them, under the statement timeout every connection has (DATABASE_STATEMENT_TIMEOUT).

A single `DELETE ... WHERE created_at < cutoff` over most of a million rows runs for seconds:
past the timeout it is cancelled and rolled back, every night, and the table only grows. Here
the timeout is lowered so that a million rows are enough to show it (a batch is well under
it, the single statement far over), and the rows are inserted with one
`INSERT ... SELECT generate_series`."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from notifications.models import SendIdempotencyKey
from notifications.services.upkeep import send_tables_purge
from tests.factories import EnvironmentFactory
from tests.helpers import series_insert

ROWS = 1_000_000
EXPIRED = 900_000
# A batch of 5,000 rows takes about 100 ms on a loaded 2-core machine; deleting 900,000 rows
# in one statement, seconds.
STATEMENT_TIMEOUT = "1s"


@pytest.mark.django_db
def test_the_nightly_purge_of_a_million_idempotency_keys_finishes_under_the_statement_timeout():
    environment = EnvironmentFactory()
    now = datetime(2026, 11, 27, 3, 45, tzinfo=UTC)
    cutoff = now - timedelta(days=7)
    # Row n was written n seconds before the cutoff's second EXPIRED: the first EXPIRED rows
    # are past retention, the rest are kept.
    first = cutoff - timedelta(seconds=EXPIRED)
    series_insert(
        "notifications_sendidempotencykey",
        "environment_id, key, notification_id, request_hash, created_at",
        "%(environment)s, 'key-' || n, md5(n::text)::uuid, '', "
        "%(first)s + (n - 1) * interval '1 second'",
        rows=ROWS,
        environment=environment.pk,
        first=first,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")

    purged = send_tables_purge(retention_days=7, now=now)

    with connection.cursor() as cursor:
        cursor.execute("RESET statement_timeout")  # the checks below read it all

    assert purged["sendidempotencykey"] == EXPIRED
    kept = SendIdempotencyKey.objects.filter(environment=environment)
    assert kept.count() == ROWS - EXPIRED
    assert not kept.filter(created_at__lt=cutoff).exists()
    assert kept.order_by("created_at").values_list("key", flat=True).first() == (
        f"key-{EXPIRED + 1}"
    )
