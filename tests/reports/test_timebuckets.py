"""SQLite's bucket codes against buckets computed with zoneinfo, with and without a known range."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import zoneinfo

import pytest

from jimu.reports.timebuckets import bucket_key, bucket_sql

BUCKETS = ("hour", "day", "week", "month", "quarter", "year")


def _expected(moment: dt.datetime, bucket: str, timezone: str) -> dt.date | dt.datetime:
    local = moment.astimezone(zoneinfo.ZoneInfo(timezone)).replace(tzinfo=None)
    day = local.date()
    if bucket == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return day
    if bucket == "week":
        return day - dt.timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _moments(low: dt.datetime, high: dt.datetime, count: int) -> list[dt.datetime]:
    rng = random.Random(7)
    span = int((high - low).total_seconds())
    picked = [low + dt.timedelta(seconds=rng.randrange(span)) for _ in range(count)]
    # the instants around month ends and offset changes are where a wrong shift shows
    for year in (1986, 1991, 2023, 2024):
        for month in (1, 3, 11, 12):
            edge = dt.datetime(year, month, 1, tzinfo=dt.UTC)
            for minutes in (-8 * 60 - 1, -8 * 60, -5 * 60, -1, 0, 1, 4 * 60, 5 * 60):
                picked.append(edge + dt.timedelta(minutes=minutes))
    return [moment for moment in picked if low <= moment < high]


@pytest.mark.parametrize("timezone", ["Asia/Shanghai", "America/New_York", "Asia/Kolkata"])
@pytest.mark.parametrize("bounded", [False, True])
def test_sqlite_codes_are_the_local_buckets(timezone: str, bounded: bool) -> None:
    low = dt.datetime(1985, 1, 1, tzinfo=dt.UTC)
    high = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    if bounded:
        low = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    moments = _moments(low, high, 3000)
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (at TEXT)")
    connection.executemany(
        "INSERT INTO t VALUES (?)",
        [(moment.isoformat(" ", "microseconds"),) for moment in moments],
    )
    for bucket in BUCKETS:
        sql, params = bucket_sql(
            "at", "datetime", bucket, "sqlite", timezone, (low, high) if bounded else None
        )
        codes = [row[0] for row in connection.execute(f"SELECT {sql} FROM t", params)]
        got = [bucket_key(code, bucket) for code in codes]
        want = [_expected(moment, bucket, timezone) for moment in moments]
        assert got == want, (timezone, bucket)
        by_code = [key for _, key in sorted(zip(codes, got, strict=True))]
        assert by_code == sorted(got), f"{bucket} codes sort in bucket order"


def test_a_range_without_offset_changes_compiles_to_one_expression() -> None:
    year_2024 = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    narrowed, _ = bucket_sql("at", "datetime", "month", "sqlite", "Asia/Shanghai", year_2024)
    assert "CASE" not in narrowed and "'+28800 seconds'" in narrowed
    unbounded, _ = bucket_sql("at", "datetime", "month", "sqlite", "Asia/Shanghai")
    assert unbounded.startswith("CASE WHEN at >= '1991-09-14 17:00:00'")
    # New York changes twice in 2024: both changes, and nothing older, stay in
    new_york, _ = bucket_sql("at", "datetime", "day", "sqlite", "America/New_York", year_2024)
    assert new_york.count("CASE") == 2 and "2024-03-10 07:00:00" in new_york


def test_date_columns_bucket_without_a_zone() -> None:
    connection = sqlite3.connect(":memory:")
    for bucket, want in (
        ("day", dt.date(2024, 2, 29)),
        ("week", dt.date(2024, 2, 26)),
        ("month", dt.date(2024, 2, 1)),
        ("quarter", dt.date(2024, 1, 1)),
        ("year", dt.date(2024, 1, 1)),
    ):
        sql, params = bucket_sql("'2024-02-29'", "date", bucket, "sqlite", "Asia/Shanghai")
        (code,) = connection.execute(f"SELECT {sql}", params).fetchone()
        assert bucket_key(code, bucket) == want, bucket
