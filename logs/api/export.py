"""Streamed export of the log as CSV or NDJSON: rows leave as PostgreSQL hands them over, a
chunk at a time, so memory stays flat whatever the number of rows. CSV cells that a
spreadsheet would run as formulas are written as text (logs.csv_cells, as the console's)."""

import csv
import io
import json
from collections.abc import Iterable, Iterator

from logs.api.params import CHANNEL_WIRE_NAMES
from logs.api.search import EXPORT_COLUMNS, export_rows
from logs.csv_cells import csv_row
from logs.masking import email_masked, number_masked
from logs.search_filters import NotificationFilters

# The export's header, in the API's spelling; channels as NotificationAPI names them.
EXPORT_HEADER = (
    "trackingId",
    "createdAt",
    "updatedAt",
    "type",
    "userId",
    "email",
    "number",
    "status",
    "channels",
)
assert len(EXPORT_HEADER) == len(EXPORT_COLUMNS)
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
_ROWS_PER_WRITE = 500


def _values(row: tuple) -> list:
    id_, created_at, updated_at, *rest, channels = row
    wire = [CHANNEL_WIRE_NAMES.get(c, c) for c in channels or ()]
    return [str(id_), created_at.isoformat(), updated_at.isoformat(), *rest, wire]


def _csv_lines(rows: Iterable[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_HEADER)
    for count, row in enumerate(rows, 1):
        *values, channels = _values(row)
        writer.writerow(csv_row([*values, " ".join(channels)]))
        if count % _ROWS_PER_WRITE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _ndjson_lines(rows: Iterable[tuple]) -> Iterator[str]:
    lines = []
    for row in rows:
        lines.append(json.dumps(dict(zip(EXPORT_HEADER, _values(row), strict=True))) + "\n")
        if len(lines) == _ROWS_PER_WRITE:
            yield "".join(lines)
            lines = []
    yield "".join(lines)


_EMAIL_AT, _NUMBER_AT = EXPORT_HEADER.index("email"), EXPORT_HEADER.index("number")


def _addresses_masked(row: tuple) -> tuple:
    masked = list(row)
    masked[_EMAIL_AT] = email_masked(row[_EMAIL_AT]) if row[_EMAIL_AT] else ""
    masked[_NUMBER_AT] = number_masked(row[_NUMBER_AT]) if row[_NUMBER_AT] else ""
    return tuple(masked)


def export_stream(
    *,
    environment_id: int,
    filters: NotificationFilters,
    format: str,
    addresses_masked: bool = False,
) -> Iterator[str]:
    """`addresses_masked`: for a read key marked masked (ApiKey.masked)."""
    rows = export_rows(environment_id=environment_id, filters=filters)
    if addresses_masked:
        rows = map(_addresses_masked, rows)
    return _csv_lines(rows) if format == "csv" else _ndjson_lines(rows)
