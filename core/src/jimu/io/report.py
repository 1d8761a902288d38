"""The error report of an import: one line per problem, as a CSV file Excel opens.

Columns: the row number as the file shows it, the column (its header, or its
letter), the field, the value as it was in the file, and the reason. UTF-8
with a byte-order mark; headers in the site's language.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["REPORT_COLUMNS", "report_csv"]

REPORT_COLUMNS = ("row", "column", "field", "value", "reason")
_HEADERS = {
    "zh": ("行号", "列", "字段", "值", "原因"),
    "en": ("row", "column", "field", "value", "reason"),
}


def report_csv(problems: Iterable[Mapping[str, Any]], locale: str = "en") -> bytes:
    """The problems of an import as CSV bytes (UTF-8 with a byte-order mark)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_HEADERS.get(locale.split("-", 1)[0].lower(), _HEADERS["en"]))
    for problem in problems:
        writer.writerow(
            ["" if problem.get(name) is None else problem[name] for name in REPORT_COLUMNS]
        )
    return "\ufeff".encode() + buffer.getvalue().encode()
