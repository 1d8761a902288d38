"""Shared pieces of the import/export tests: the entity, file builders, site helpers."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import xlsxwriter

from jimu.meta import EntityDef, FieldDef
from jimu.site import Site
from jimu.store.database import Database
from jimu.store.records import ListQuery, SortKey

T = TypeVar("T")

MEMBER = EntityDef(
    name="member",
    label={"en": "Member", "zh-CN": "会员"},
    title_field="name",
    fields=[
        FieldDef(name="name", type="text", required=True, label={"en": "Name", "zh-CN": "姓名"}),
        FieldDef(
            name="phone",
            type="text",
            unique=True,
            options={"max_length": 20},
            label={"en": "Phone", "zh-CN": "手机号码"},
        ),
        FieldDef(
            name="city",
            type="select",
            options={"choices": ["上海", "北京", "杭州"]},
            label={"en": "City", "zh-CN": "城市"},
        ),
        FieldDef(name="points", type="integer", label={"en": "Points", "zh-CN": "积分"}),
        FieldDef(
            name="balance",
            type="decimal",
            options={"precision": 12, "scale": 2},
            label={"en": "Balance", "zh-CN": "余额"},
        ),
        FieldDef(name="birthday", type="date", label={"en": "Birthday", "zh-CN": "生日"}),
        FieldDef(name="joined_at", type="datetime", label={"en": "Joined at", "zh-CN": "入会时间"}),
        FieldDef(name="vip", type="boolean", label={"en": "VIP", "zh-CN": "是否VIP"}),
        FieldDef(name="email", type="email", label={"en": "Email", "zh-CN": "邮箱"}),
        FieldDef(name="note", type="long_text", label={"en": "Note", "zh-CN": "备注"}),
    ],
)

HEADERS_ZH = [
    "姓名",
    "手机号码",
    "城市",
    "积分",
    "余额",
    "生日",
    "入会时间",
    "是否VIP",
    "邮箱",
    "备注",
]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def run(site: Site, work: Callable[[Site], Awaitable[T]]) -> T:
    """Open ``site``, run ``work(site)``, close it."""

    async def main() -> T:
        async with site:
            return await work(site)

    return asyncio.run(main())


def with_member(site: Site, entity: EntityDef = MEMBER) -> Site:
    """Create ``entity`` on ``site``; return the (closed) site."""

    async def create(opened: Site) -> None:
        await opened.create_entity(entity)

    run(site, create)
    return site


async def all_records(site: Site, entity: str = "member") -> list[dict[str, Any]]:
    """Every record of ``entity`` in id order (keyset pages)."""
    records: list[dict[str, Any]] = []
    query = ListQuery(sort=[SortKey("id")], limit=1000, count="none")
    for _ in range(10_000):
        page = await site.records.query(entity, query)
        records.extend(page.data)
        query.cursor = page.page["next_cursor"]
        if not query.cursor:
            break
    return records


def records_of(site: Site, entity: str = "member") -> list[dict[str, Any]]:
    """Every record of ``entity`` (opens and closes the site)."""
    return run(site, lambda opened: all_records(opened, entity))


def events_of(site: Site) -> list[dict[str, Any]]:
    """The outbox rows, in order, with their payloads decoded."""

    async def read(opened: Site) -> list[dict[str, Any]]:
        rows = await opened.db.fetch(
            "SELECT entity, record_id, kind, payload FROM jimu_event ORDER BY id"
        )
        return [
            {
                **row,
                "payload": json.loads(row["payload"])
                if isinstance(row["payload"], str)
                else row["payload"],
            }
            for row in rows
        ]

    return run(site, read)


def csv_bytes(
    rows: Sequence[Sequence[Any]], *, encoding: str = "utf-8", delimiter: str = ","
) -> bytes:
    """A CSV file of ``rows`` in ``encoding`` (``utf-8-sig`` adds the byte-order mark)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(
    rows: Sequence[Sequence[Any]],
    *,
    merges: Sequence[tuple[int, int, int, int, Any]] = (),
    start_row: int = 0,
    sheet: str = "Sheet1",
) -> bytes:
    """An XLSX workbook with ``rows`` from ``start_row`` (0-based), written by xlsxwriter.

    Numbers stay numbers, booleans booleans, dates real dates; ``merges`` are
    (first row, first column, last row, last column, value), 0-based.
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    worksheet = workbook.add_worksheet(sheet)
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    merged_cells = set()
    for first_row, first_col, last_row, last_col, value in merges:
        worksheet.merge_range(first_row, first_col, last_row, last_col, value)
        for r in range(first_row, last_row + 1):
            for c in range(first_col, last_col + 1):
                merged_cells.add((r, c))
    for offset, row in enumerate(rows):
        number = start_row + offset
        for column, cell in enumerate(row):
            if cell is None or (number, column) in merged_cells:
                continue
            if isinstance(cell, bool):
                worksheet.write_boolean(number, column, cell)
            elif isinstance(cell, int | float):
                worksheet.write_number(number, column, cell)
            elif isinstance(cell, dt.datetime):
                worksheet.write_datetime(number, column, cell, time_format)
            elif isinstance(cell, dt.date):
                worksheet.write_datetime(number, column, cell, date_format)
            else:
                worksheet.write_string(number, column, str(cell))
    workbook.close()
    return buffer.getvalue()


async def count_rows(db: Database, table: str) -> int:
    """Rows in ``table``."""
    row = await db.fetch_one(f'SELECT COUNT(*) AS n FROM "{table}"')
    return int(row["n"]) if row else 0
