"""Export: CSV and XLSX of a filtered, sorted list, streamed; and the round trip back in."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from python_calamine import CalamineWorkbook

from jimu.io import ExportOptions, ImportOptions, ImportOutcome, Source, import_file, open_export
from jimu.io.export import PAGE_ROWS
from jimu.site import Site
from jimu.store.records import SortKey
from jimu_sdk.testing import site_client
from tests.io.helpers import HEADERS_ZH, MEMBER, records_of, run, with_member

PEOPLE: list[dict[str, Any]] = [
    {
        "name": "王芳",
        "phone": "13800138000",
        "city": "上海",
        "points": 120,
        "balance": "1299.50",
        "birthday": "1990-05-01",
        "joined_at": "2024-11-11T20:00:00+08:00",
        "vip": True,
        "email": "wang@example.cn",
        "note": '多行\n备注, with "quotes"',
    },
    {
        "name": "李娜",
        "phone": "+8613900000000",
        "city": "杭州",
        "points": 0,
        "balance": "0.10",
        "birthday": "1899-12-31",
        "joined_at": "2024-01-02T01:30:05Z",
        "vip": False,
        "email": None,
        "note": "=1+1",
    },
    {
        "name": "张伟",
        "phone": None,
        "city": None,
        "points": -5,
        "balance": None,
        "birthday": None,
        "joined_at": None,
        "vip": None,
        "email": None,
        "note": None,
    },
]


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    site = with_member(new_site())

    async def fill(opened: Site) -> None:
        await opened.records.create_many("member", PEOPLE)

    run(site, fill)
    return site


def export_bytes(site: Site, **options: Any) -> bytes:
    async def work(opened: Site) -> bytes:
        export = await open_export(opened, "member", ExportOptions(**options))
        return b"".join([piece async for piece in export.content])

    return run(site, work)


def csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the byte-order mark to read UTF-8"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_rows(data: bytes) -> list[list[Any]]:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return [list(row) for row in sheet.iter_rows()]


def test_csv_has_labels_local_times_and_exact_decimals(site: Site) -> None:
    rows = csv_rows(export_bytes(site))
    assert rows[0] == ["ID", *HEADERS_ZH]
    assert rows[1][1:] == [
        "王芳",
        "13800138000",
        "上海",
        "120",
        "1299.50",
        "1990-05-01",
        "2024-11-11 20:00:00",
        "是",
        "wang@example.cn",
        '多行\n备注, with "quotes"',
    ]
    assert rows[2][7:9] == ["2024-01-02 09:30:05", "否"]
    assert rows[3][1:] == ["张伟", "", "", "-5", "", "", "", "", "", ""]
    named = csv_rows(export_bytes(site, header="name", fields=["name", "points", "created_at"]))
    assert named[0] == ["name", "points", "created_at"]
    assert len(named) == 4


def test_filter_sort_and_fields_like_the_list_api(site: Site) -> None:
    rule = {">=": [{"var": "points"}, 0]}
    rows = csv_rows(
        export_bytes(
            site,
            filter=rule,
            sort=[SortKey("points", True)],
            fields=["name", "points"],
            header="name",
        )
    )
    assert rows == [["name", "points"], ["王芳", "120"], ["李娜", "0"]]
    with site_client(site) as client:
        response = client.get(
            "/api/v1/records/member/export",
            params={
                "filter": json.dumps(rule),
                "sort": "points",
                "fields": "name,points",
                "header": "name",
            },
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        disposition = response.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="member-') and ".csv" in disposition
        assert csv_rows(response.content) == [["name", "points"], ["李娜", "0"], ["王芳", "120"]]
        posted = client.post(
            "/api/v1/records/member/export",
            json={"format": "xlsx", "filter": rule, "sort": ["-points"], "fields": ["name"]},
        )
        assert posted.status_code == 200
        assert xlsx_rows(posted.content) == [["姓名"], ["王芳"], ["李娜"]]


def test_export_mistakes_are_422_before_anything_is_sent(site: Site) -> None:
    with site_client(site) as client:
        cases = [
            ({"format": "pdf"}, "format"),
            ({"fields": "name,colour"}, "fields"),
            ({"filter": "{not json"}, "filter"),
            ({"filter": json.dumps({"==": [{"var": "colour"}, 1]})}, "filter"),
            ({"sort": "colour"}, "sort"),
            ({"header": "both"}, "header"),
            ({"limit": "5"}, "limit"),
        ]
        for params, field in cases:
            response = client.get("/api/v1/records/member/export", params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.json()["errors"][0]["field"] == field
        assert client.get("/api/v1/records/ghost/export").status_code == 404
        assert client.post("/api/v1/records/member/export", json={"limit": 1}).status_code == 422


def test_xlsx_keeps_types(site: Site) -> None:
    rows = xlsx_rows(export_bytes(site, format="xlsx"))
    assert rows[0][:3] == ["ID", "姓名", "手机号码"]
    first = rows[1]
    assert first[2] == "13800138000"  # text stays text, never a number
    assert first[4] == 120 and first[5] == 1299.5
    assert first[6] == dt.date(1990, 5, 1)
    assert first[7] == dt.datetime(2024, 11, 11, 20, 0)
    assert first[8] is True
    assert rows[2][10] == "=1+1"  # written as text, never as a formula


def test_many_pages_stream_in_order(site: Site) -> None:
    extra = [{"name": f"会员{i}", "points": i} for i in range(PAGE_ROWS * 2 + 5)]

    async def fill(opened: Site) -> None:
        await opened.records.create_many("member", extra)

    run(site, fill)
    rows = csv_rows(
        export_bytes(
            site, fields=["id", "points"], header="name", filter={">=": [{"var": "points"}, 1]}
        )
    )
    assert rows[0] == ["id", "points"]
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    points = [int(row[1]) for row in rows[1:]]
    assert points == [120, *range(1, len(extra))]  # 王芳, then every extra member but 会员0


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_round_trip_export_then_import_gives_the_same_records(site: Site, fmt: str) -> None:
    data = export_bytes(site, format=fmt)
    copy = msgspec.structs.replace(MEMBER, name="member_copy")

    async def import_copy(opened: Site) -> ImportOutcome:
        await opened.create_entity(copy)
        return await import_file(opened, "member_copy", Source(data, f"members.{fmt}"))

    outcome = run(site, import_copy)
    assert outcome.status == "succeeded", outcome.errors
    assert outcome.created == 3
    assert [c.field for c in outcome.columns] == [None, *[f.name for f in MEMBER.fields]]

    def plain(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k not in {"id", "created_at", "updated_at"}}
            for r in records
        ]

    original, copied = plain(records_of(site)), plain(records_of(site, "member_copy"))
    assert copied == original
    assert copied[0]["balance"] == Decimal("1299.50")
    # and back over the records it came from, by id: nothing changes
    again = run(
        site,
        lambda opened: import_file(
            opened, "member", Source(data, f"m.{fmt}"), ImportOptions(mode="update")
        ),
    )
    assert (again.status, again.updated, again.unchanged) == ("succeeded", 0, 3), again.errors
