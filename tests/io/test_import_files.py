"""Imports of messy real-world files, generated here: encodings, numbers, dates, merges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from jimu.errors import ValidationFailed
from jimu.io import ImportOptions, ImportOutcome, ImportStore, Source, import_file, report_csv
from jimu.site import Site
from tests.io.helpers import (
    HEADERS_ZH,
    count_rows,
    csv_bytes,
    events_of,
    records_of,
    run,
    with_member,
    xlsx_bytes,
)


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    return with_member(new_site())


def do_import(
    site: Site, data: bytes, filename: str, options: ImportOptions | None = None
) -> ImportOutcome:
    return run(site, lambda opened: import_file(opened, "member", Source(data, filename), options))


def test_gbk_csv_with_chinese_headers(site: Site) -> None:
    data = csv_bytes(
        [
            HEADERS_ZH,
            [
                "王芳",
                "13800138000",
                "上海",
                "120",
                "1,299.50",
                "1990-05-01",
                "2024-11-11 20:00",
                "是",
                "wang@example.cn",
                "老客户，喜欢龙井",
            ],
            [
                "李娜",
                "13900000000",
                "杭州",
                "0",
                "￥12",
                "1988/12/31",
                "2024-01-02 09:30:00",
                "否",
                "",
                "",
            ],
        ],
        encoding="gbk",
    )
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    outcome = do_import(site, data, "会员.csv")
    assert outcome.status == "succeeded", outcome.errors
    assert (outcome.encoding, outcome.created, outcome.rows) == ("gb18030", 2, 2)
    first, second = records_of(site)
    assert first["name"] == "王芳" and first["note"] == "老客户，喜欢龙井"
    assert first["balance"] == Decimal("1299.50") and first["points"] == 120
    assert first["birthday"] == dt.date(1990, 5, 1) and first["vip"] is True
    # a time without an offset is in the site's time zone (Asia/Shanghai)
    assert first["joined_at"] == dt.datetime(2024, 11, 11, 12, 0, tzinfo=dt.UTC)
    assert second["balance"] == Decimal("12.00") and second["vip"] is False
    assert second["birthday"] == dt.date(1988, 12, 31) and second["email"] is None


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("utf-8", "\t"), ("gb18030", ";"), ("utf-16", ",")],
)
def test_common_encodings_and_delimiters(site: Site, encoding: str, delimiter: str) -> None:
    data = csv_bytes(
        [["姓名", "手机号码", "城市"], ["周杰", "13700000000", "北京"]],
        encoding=encoding,
        delimiter=delimiter,
    )
    outcome = do_import(site, data, "members.csv")
    assert outcome.status == "succeeded", outcome.errors
    assert [(r["name"], r["city"]) for r in records_of(site)] == [("周杰", "北京")]


def test_xlsx_with_chinese_headers_phone_numbers_and_serial_dates(site: Site) -> None:
    data = xlsx_bytes(
        [
            HEADERS_ZH,
            # phone numbers typed as numbers; dates as Excel serial numbers (45000 = 2023-03-15)
            ["王芳", 13800138000, "上海", 120.0, 1299.5, 45000, 45607.5, True, None, None],
            [
                "李娜",
                13900000000.0,
                "杭州",
                7,
                0.1,
                dt.date(1990, 5, 1),
                dt.datetime(2024, 11, 11, 20, 0),
                "是",
                None,
                12345,
            ],
            [
                "张伟",
                "139 0000 0001",
                "北京",
                None,
                None,
                "1991-02-03",
                "2024-11-11T20:00:00+08:00",
                "否",
                None,
                None,
            ],
        ]
    )
    outcome = do_import(site, data, "members.xlsx")
    assert outcome.status == "succeeded", outcome.errors
    assert outcome.format == "xlsx" and outcome.sheet == "Sheet1"
    wang, li, zhang = records_of(site)
    assert wang["phone"] == "13800138000" and li["phone"] == "13900000000"
    assert zhang["phone"] == "139 0000 0001"
    assert wang["birthday"] == dt.date(2023, 3, 15)
    assert wang["joined_at"] == dt.datetime(2024, 11, 11, 4, 0, tzinfo=dt.UTC)  # 12:00 in Shanghai
    assert wang["points"] == 120 and wang["balance"] == Decimal("1299.50")
    assert li["birthday"] == dt.date(1990, 5, 1) and li["balance"] == Decimal("0.10")
    assert li["joined_at"] == zhang["joined_at"] == dt.datetime(2024, 11, 11, 12, 0, tzinfo=dt.UTC)
    assert li["note"] == "12345" and li["vip"] is True and zhang["vip"] is False


def test_blank_rows_are_skipped_and_rows_keep_their_numbers(site: Site) -> None:
    rows: list[list[Any]] = [
        ["姓名", "手机号码", "积分"],
        ["", "", ""],
        ["王芳", "13800138000", "1"],
        ["  ", None, ""],
        ["李娜", "13900000000", "x"],
        [],
        ["", "", ""],
    ]
    for data, name in [(csv_bytes(rows), "m.csv"), (xlsx_bytes(rows), "m.xlsx")]:
        outcome = do_import(site, data, name)
        assert outcome.status == "failed"
        assert (outcome.rows, outcome.blank) == (2, 4)
        assert outcome.errors == [
            {
                "row": 5,
                "column": "积分",
                "field": "points",
                "value": "x",
                "reason": "'x' is not a whole number",
            }
        ]
    rows[4][2] = "2"
    assert do_import(site, xlsx_bytes(rows), "m.xlsx").status == "succeeded"
    assert [r["points"] for r in records_of(site)] == [1, 2]


def test_merged_header_cells_span_their_columns(site: Site) -> None:
    # row 1: a title merged over the whole width; rows 2-3: a two-row header where
    # 姓名 is merged down and 联系方式 spans 手机号码 and 邮箱; then a city merged down 3 rows
    data = xlsx_bytes(
        [
            [],
            [None, "联系方式", None, "城市", "积分"],
            [None, "手机号码", "邮箱", None, None],
            ["王芳", 13800138000, "w@example.cn", None, 1],
            ["李娜", 13900000000, None, None, 2],
            ["张伟", 13700000000, None, None, 3],
            ["周杰", 13600000000, None, "北京", 4],
        ],
        merges=[
            (0, 0, 0, 4, "2024 会员名单"),
            (1, 0, 2, 0, "姓名"),
            (1, 3, 2, 3, "城市"),
            (1, 4, 2, 4, "积分"),
            (3, 3, 5, 3, "上海"),
        ],
    )
    outcome = do_import(site, data, "merged.xlsx")
    assert outcome.status == "succeeded", outcome.errors
    assert outcome.header_row == 3
    assert [c.field for c in outcome.columns] == ["name", "phone", "email", "city", "points"]
    records = records_of(site)
    assert [(r["name"], r["phone"], r["city"], r["points"]) for r in records] == [
        ("王芳", "13800138000", "上海", 1),
        ("李娜", "13900000000", "上海", 2),
        ("张伟", "13700000000", "上海", 3),
        ("周杰", "13600000000", "北京", 4),
    ]
    assert records[0]["email"] == "w@example.cn"


def test_a_header_merged_across_columns_joins_their_cells(site: Site) -> None:
    data = xlsx_bytes(
        [["姓名", None, None], ["王芳", "浙江省", "杭州市"], ["李娜", "", "上海市"]],
        merges=[(0, 1, 0, 2, "备注")],
    )
    outcome = do_import(site, data, "notes.xlsx")
    assert outcome.status == "succeeded", outcome.errors
    assert [r["note"] for r in records_of(site)] == ["浙江省 杭州市", "上海市"]


def test_duplicate_keys_within_the_file_are_reported(site: Site) -> None:
    data = csv_bytes(
        [
            ["姓名", "手机号码"],
            ["王芳", "13800138000"],
            ["李娜", "13900000000"],
            ["王芳2", "13800138000"],
            ["王芳3", "13800138000"],
        ]
    )
    outcome = do_import(site, data, "dupes.csv")
    assert outcome.status == "failed" and outcome.failed == 2
    assert [(e["row"], e["column"], e["value"], e["reason"]) for e in outcome.errors] == [
        (4, "手机号码", "13800138000", "the same phone as row 2: each row needs its own"),
        (5, "手机号码", "13800138000", "the same phone as row 2: each row needs its own"),
    ]
    assert records_of(site) == []


def test_a_bad_value_in_row_9000_of_10000_writes_nothing(site: Site) -> None:
    rows: list[list[Any]] = [["姓名", "手机号码", "积分", "生日"]]
    for number in range(2, 10_002):  # file rows 2..10001: 10,000 records
        birthday = "1990-13-45" if number == 9000 else "1990-05-01"
        rows.append([f"会员{number}", f"138{number:08d}", str(number), birthday])
    data = csv_bytes(rows)
    outcome = do_import(site, data, "big.csv")
    assert outcome.status == "failed"
    assert (outcome.rows, outcome.failed, outcome.created) == (10_000, 1, 0)
    assert outcome.errors == [
        {
            "row": 9000,
            "column": "生日",
            "field": "birthday",
            "value": "1990-13-45",
            "reason": "'1990-13-45' is not a date (write 2024-03-08)",
        }
    ]

    async def check(opened: Site) -> tuple[int, int, bytes]:
        assert outcome.id is not None
        _, errors = await ImportStore(opened.db).get(outcome.id)
        return (
            await count_rows(opened.db, "member"),
            await count_rows(opened.db, "jimu_event"),
            report_csv(errors, opened.config.locale),
        )

    records, events, report = run(site, check)
    assert (records, events) == (0, 0)
    assert report.decode("utf-8-sig").splitlines() == [
        "行号,列,字段,值,原因",
        "9000,生日,birthday,1990-13-45,'1990-13-45' is not a date (write 2024-03-08)",
    ]
    # on request, the valid rows go in and the bad one is reported
    partial = do_import(site, data, "big.csv", ImportOptions(valid_rows=True))
    assert (partial.status, partial.created, partial.failed) == ("partial", 9_999, 1)
    assert [e["row"] for e in partial.errors] == [9000]
    assert len(records_of(site)) == 9_999
    assert len(events_of(site)) == 9_999


def test_unreadable_files_are_refused_naming_the_file(site: Site) -> None:
    cases = [
        (b"", "empty.csv", "file", "is empty: no header row"),
        (b"PK\x03\x04not really a zip", "broken.xlsx", "file", "cannot read this file as XLSX"),
        (csv_bytes([["color", "size"], ["red", "L"]]), "other.csv", "mapping", "no column matches"),
        (
            csv_bytes([["手机号码"], ["13800138000"]]),
            "no-name.csv",
            "mapping",
            "required field 'name'",
        ),
        (
            csv_bytes([["姓名", "手机号码"]]),
            "header-only.csv",
            "file",
            "has no rows under the header",
        ),
        (
            csv_bytes([["姓名", "name"], ["a", "b"]]),
            "twice.csv",
            "mapping",
            "both go into field 'name'",
        ),
    ]
    for data, name, field, reason in cases:
        with pytest.raises(ValidationFailed) as caught:
            do_import(site, data, name)
        assert caught.value.errors[0]["field"] == field, name
        assert reason in caught.value.errors[0]["reason"], (name, caught.value.errors)
    assert records_of(site) == []


def test_header_row_found_below_a_title_or_given(site: Site) -> None:
    rows = [
        ["会员导入模板"],
        ["说明：带 * 的列必填"],
        ["* 姓名：", "Phone", "city "],
        ["王芳", "13800138000", "上海"],
    ]
    outcome = do_import(site, csv_bytes(rows), "t.csv")
    assert outcome.status == "succeeded" and outcome.header_row == 3
    assert [c.field for c in outcome.columns] == ["name", "phone", "city"]
    with pytest.raises(ValidationFailed) as caught:
        do_import(site, csv_bytes(rows), "t.csv", ImportOptions(header_row=1))
    assert caught.value.errors[0]["field"] == "mapping"


def test_a_file_that_breaks_half_way_leaves_nothing(site: Site) -> None:
    rows = [["姓名", "备注"]] + [[f"会员{i}", ""] for i in range(3000)]
    rows[2500][1] = "长" * 200_000  # over the csv module's field limit: it stops reading there
    with pytest.raises(ValidationFailed) as caught:
        do_import(site, csv_bytes(rows), "broken.csv")
    assert caught.value.errors[0]["field"] == "file"
    assert "not valid CSV" in caught.value.errors[0]["reason"]
    # two chunks had been written when the file broke: they are rolled back
    assert records_of(site) == [] and events_of(site) == []


def test_utf16_without_a_byte_order_mark(site: Site) -> None:
    chinese = "姓名,手机号码\n王芳,13800138000\n".encode("utf-16-le")
    assert do_import(site, chinese, "zh.csv").encoding == "utf-16-le"  # detected
    # ASCII in UTF-16 is also valid UTF-8, full of NUL characters: refused, unless told
    latin = "name,phone\nZhou,13900000000\n".encode("utf-16-le")
    with pytest.raises(ValidationFailed) as caught:
        do_import(site, latin, "en.csv")
    assert "holds NUL characters" in caught.value.errors[0]["reason"]
    outcome = do_import(site, latin, "en.csv", ImportOptions(encoding="utf-16-le"))
    assert outcome.status == "succeeded"
    assert [r["name"] for r in records_of(site)] == ["王芳", "Zhou"]
