"""Exporting a list of records to CSV or XLSX, streamed, so memory stays flat.

The list is the one the record API serves (a JsonLogic ``filter``, a
``sort``, selected ``fields``), read a keyset page at a time from the record
repository. CSV is written as UTF-8 with a byte-order mark, so Excel opens
Chinese text correctly, and each page is sent as soon as it is written. XLSX
is written by xlsxwriter in ``constant_memory`` mode to a temporary file (a
workbook is a zip that can only be finished at the end), then sent in pieces.

Cells are what each field type's ``format_cell`` makes of a value: times in
the site's time zone, decimals exact, JSON as text. Column headers are the
fields' labels in the site's locale, or their names.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import decimal
import functools
import io
import os
import re
import shutil
import tempfile
import zoneinfo
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jimu.auth import current_access
from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import FieldType
from jimu.fields.cells import format_cell
from jimu.io.access import exportable_fields
from jimu.io.mapping import label_of
from jimu.meta import FieldDef, translate
from jimu.site import Site
from jimu.store.records import EntityRuntime, ListQuery, SortKey

__all__ = ["EXPORT_FORMATS", "Export", "ExportOptions", "export_records", "open_export"]

EXPORT_FORMATS = ("csv", "xlsx")
#: Records read per page.
PAGE_ROWS = 1000
#: Rows of one worksheet (Excel's limit, header included); more rows go on to a new sheet.
SHEET_ROWS = 1_048_576
#: Bytes sent per piece of an XLSX file.
PIECE_BYTES = 256 * 1024

_MEDIA = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")
_SYSTEM = ("id", "created_at", "updated_at")
_EXCEL_FIRST_DAY = dt.date(1900, 3, 1)


@dataclass
class ExportOptions:
    """What to export: the list (filter, sort, fields) and the file (format, headers)."""

    format: str = "csv"
    filter: Any = None
    sort: list[SortKey] = field(default_factory=list)
    fields: list[str] | None = None
    #: ``label`` (the fields' labels in the site's locale) or ``name``
    header: str = "label"


@dataclass
class Export:
    """An export ready to stream: its file name, media type and content."""

    filename: str
    media_type: str
    rows: Callable[[], int]
    content: AsyncIterator[bytes]


def _as_is(value: Any) -> Any:
    return value


def _cell_writers(
    site: Site, rt: EntityRuntime, columns: Sequence[str]
) -> list[Callable[[Any], Any]]:
    """For each column, the function turning an API value into its cell."""
    tz = zoneinfo.ZoneInfo(site.config.timezone)
    writers: list[Callable[[Any], Any]] = []
    for name in columns:
        if name == "id":
            writers.append(_as_is)
        elif name in ("created_at", "updated_at"):
            writers.append(functools.partial(_system_time, timezone=tz))
        else:
            writers.append(
                functools.partial(
                    _field_cell, field_type=rt.types[name], definition=rt.fields[name], timezone=tz
                )
            )
    return writers


def _system_time(value: Any, *, timezone: dt.tzinfo) -> Any:
    return format_cell("datetime", value, timezone)


def _field_cell(
    value: Any, *, field_type: FieldType, definition: FieldDef, timezone: dt.tzinfo
) -> Any:
    return None if value is None else field_type.format_cell(definition, value, timezone)


def _columns(rt: EntityRuntime, fields: list[str] | None) -> list[str]:
    if fields is None:
        wanted = ["id", *(name for name in rt.all_columns if name not in _SYSTEM)]
    else:
        unknown = [name for name in fields if name not in rt.all_columns]
        if unknown:
            raise ValidationFailed(
                FieldProblem("fields", f"unknown field {unknown[0]!r} of {rt.name}")
            )
        wanted = list(dict.fromkeys(fields))
        current_access().check_readable(rt.name, wanted, "fields")  # asked by name: refuse
    return exportable_fields(rt, wanted)


async def open_export(site: Site, entity: str, options: ExportOptions) -> Export:
    """Check the request and read the first page, so mistakes are a 422 before any byte is sent."""
    rt = site.runtime(entity)
    if options.format not in EXPORT_FORMATS:
        raise ValidationFailed(
            FieldProblem("format", f"{options.format!r} is not one of {', '.join(EXPORT_FORMATS)}")
        )
    if options.header not in ("label", "name"):
        raise ValidationFailed(FieldProblem("header", "must be label or name"))
    columns = _columns(rt, options.fields)
    if not columns:
        raise ValidationFailed(FieldProblem("fields", "nothing to export"))
    query = ListQuery(
        filter=options.filter,
        sort=list(options.sort),
        fields=[c for c in columns if c != "id"] or ["id"],
        limit=PAGE_ROWS,
        count="none",
    )
    first = await site.records.query(entity, query)
    locale = site.config.locale
    headers = [name if options.header == "name" else label_of(rt, name, locale) for name in columns]
    writers = _cell_writers(site, rt, columns)
    counter = [0]

    async def pages() -> AsyncIterator[list[list[Any]]]:
        page = first
        while True:
            rows = [
                [write(record.get(name)) for name, write in zip(columns, writers, strict=True)]
                for record in page.data
            ]
            counter[0] += len(rows)
            if rows:
                yield rows
            cursor = page.page.get("next_cursor")
            if not cursor:
                return
            query.cursor = cursor
            page = await site.records.query(entity, query)

    stamp = dt.datetime.now(zoneinfo.ZoneInfo(site.config.timezone)).strftime("%Y%m%d-%H%M%S")
    filename = f"{entity}-{stamp}.{options.format}"
    if options.format == "csv":
        content = _csv(headers, pages(), yes_no=_yes_no(locale))
    else:
        title = translate(rt.entity.label, locale, fallback=rt.name)
        content = _xlsx(headers, pages(), title)
    return Export(
        filename=filename,
        media_type=_MEDIA[options.format],
        rows=lambda: counter[0],
        content=_audited(site, entity, options, columns, content, counter),
    )


async def _audited(
    site: Site,
    entity: str,
    options: ExportOptions,
    columns: list[str],
    content: AsyncIterator[bytes],
    counter: list[int],
) -> AsyncIterator[bytes]:
    """``content``, then an audit entry: who exported which filter and fields, how many rows.

    An export the client abandons is audited too, with the rows sent so far.
    """
    completed = False
    try:
        async for piece in content:
            yield piece
        completed = True
    finally:
        await site.auth.audit(
            "export",
            entity=entity,
            detail={
                "format": options.format,
                "filter": options.filter,
                "sort": list(options.sort),
                "fields": columns,
                "rows": counter[0],
                "completed": completed,
            },
        )


async def export_records(site: Site, entity: str, options: ExportOptions, target: Path) -> int:
    """Export into the file ``target``; return the number of records written."""
    export = await open_export(site, entity, options)
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            async for piece in export.content:
                out.write(piece)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return export.rows()


# -- CSV ---------------------------------------------------------------------------------


def _yes_no(locale: str) -> tuple[str, str]:
    return ("是", "否") if locale.lower().startswith("zh") else ("true", "false")


def _csv_text(value: Any, yes_no: tuple[str, str]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return yes_no[0] if value else yes_no[1]
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")
    if isinstance(value, dt.date | decimal.Decimal | int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


async def _csv(
    headers: list[str], pages: AsyncIterator[list[list[Any]]], *, yes_no: tuple[str, str]
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    async for rows in pages:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_csv_text(value, yes_no) for value in row] for row in rows)
        yield buffer.getvalue().encode()


# -- XLSX --------------------------------------------------------------------------------


class _Sheets:
    """An xlsxwriter workbook in constant-memory mode, one row after another."""

    def __init__(self, path: str, headers: list[str], title: str) -> None:
        import xlsxwriter

        self.workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "tmpdir": os.path.dirname(path),
            },
        )
        self.headers = headers
        self.title = _SHEET_NAME.sub(" ", title).strip()[:28] or "Sheet"
        self.bold = self.workbook.add_format({"bold": True})
        self.date = self.workbook.add_format({"num_format": "yyyy-mm-dd"})
        self.moment = self.workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.sheets = 0
        self.new_sheet()

    def new_sheet(self) -> None:
        self.sheets += 1
        name = self.title if self.sheets == 1 else f"{self.title} {self.sheets}"
        self.sheet = self.workbook.add_worksheet(name[:31])
        self.sheet.write_row(0, 0, self.headers, self.bold)
        self.sheet.freeze_panes(1, 0)
        self.row = 1

    def write(self, rows: list[list[Any]]) -> None:
        sheet = self.sheet
        for values in rows:
            if self.row >= SHEET_ROWS:
                self.new_sheet()
                sheet = self.sheet
            row = self.row
            for column, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, str):
                    sheet.write_string(row, column, value)
                elif isinstance(value, bool):
                    sheet.write_boolean(row, column, value)
                elif isinstance(value, int):
                    if abs(value) < 2**53:
                        sheet.write_number(row, column, value)
                    else:  # beyond a double's exact range: keep every digit as text
                        sheet.write_string(row, column, str(value))
                elif isinstance(value, decimal.Decimal | float):
                    sheet.write_number(row, column, float(value))
                elif isinstance(value, dt.date):
                    day = value.date() if isinstance(value, dt.datetime) else value
                    if day < _EXCEL_FIRST_DAY:
                        # Excel's dates start in 1900 (and count a 1900-02-29): older ones as text
                        sheet.write_string(
                            row,
                            column,
                            value.isoformat(sep=" ")
                            if isinstance(value, dt.datetime)
                            else value.isoformat(),
                        )
                    elif isinstance(value, dt.datetime):
                        sheet.write_datetime(row, column, value.replace(tzinfo=None), self.moment)
                    else:
                        sheet.write_datetime(row, column, value, self.date)
                else:
                    sheet.write_string(row, column, str(value))
            self.row += 1

    def close(self) -> None:
        self.workbook.close()


async def _xlsx(
    headers: list[str], pages: AsyncIterator[list[list[Any]]], title: str
) -> AsyncIterator[bytes]:
    folder = tempfile.mkdtemp(prefix="jimu-export-")
    path = os.path.join(folder, "export.xlsx")
    try:
        sheets = await asyncio.to_thread(_Sheets, path, headers, title)
        async for rows in pages:
            await asyncio.to_thread(sheets.write, rows)
        await asyncio.to_thread(sheets.close)
        source = await asyncio.to_thread(Path(path).open, "rb")
        try:
            for _ in range(1 << 40):  # bounded by the file's size
                piece = await asyncio.to_thread(source.read, PIECE_BYTES)
                if not piece:
                    break
                yield piece
        finally:
            source.close()
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
