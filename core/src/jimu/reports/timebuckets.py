"""Time buckets in the site's time zone, as SQL for each dialect and as Python keys.

Datetimes are stored in UTC: on PostgreSQL as ``TIMESTAMPTZ``, on SQLite as
fixed-width text (``2024-03-01 08:30:00.000000+00:00``). PostgreSQL converts
with ``AT TIME ZONE``. SQLite knows no time zones, so the zone's UTC offsets
are read from the time-zone database once and compiled into the query: one
constant offset when the zone has no change inside the range the query reads,
otherwise the newest offset tested first (one text comparison per row) and a
balanced tree of comparisons over the older changes, so daylight saving time
and old offsets stay right.

PostgreSQL returns buckets as local dates (hour buckets: local wall-clock
hours). SQLite returns integer codes, which group and sort faster than text
and are mostly integer arithmetic on ``unixepoch``: hours, days or weeks since
0001-01-01 in local time, ``yyyymm`` for months and quarters, ``yyyy`` for
years. :func:`bucket_key` turns either dialect's value into the same Python
key, :func:`bucket_series` lists every bucket of a range so empty ones can be
filled, and weeks start on Monday everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

from jimu.fields import Dialect

__all__ = [
    "BucketKey",
    "bucket_bounds",
    "bucket_key",
    "bucket_label",
    "bucket_series",
    "bucket_sql",
    "local_transitions",
    "shift_bucket",
]

#: A bucket: its first local day (``hour``: its local wall-clock hour, naive).
BucketKey = dt.date | dt.datetime

_SCAN_FROM = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_SCAN_TO = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@functools.cache
def local_transitions(timezone: str) -> tuple[int, tuple[tuple[dt.datetime, int], ...]]:
    """The zone's UTC offset before 1900 (seconds) and each later change: (UTC instant, new offset).

    Found by stepping a day at a time from 1900 to 2100 and bisecting each
    change to the second; computed once per zone and process.
    """
    zone = zoneinfo.ZoneInfo(timezone)

    def offset(moment: dt.datetime) -> int:
        delta = moment.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    first = offset(_SCAN_FROM)
    changes: list[tuple[dt.datetime, int]] = []
    step = dt.timedelta(days=1)
    previous_moment, previous_offset = _SCAN_FROM, first
    moment = _SCAN_FROM + step
    while moment <= _SCAN_TO:
        current = offset(moment)
        if current != previous_offset:
            low, high = previous_moment, moment  # offset(low) is old, offset(high) is new
            while (high - low) > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                if offset(middle) == previous_offset:
                    low = middle
                else:
                    high = middle
            changes.append((high, current))
            previous_offset = current
        previous_moment = moment
        moment += step
    return first, tuple(changes)


def _sqlite_text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


#: Seconds from 0001-01-01 (a Monday, Python's ordinal day 1) to 1970-01-01.
_EPOCH_FROM_YEAR_ONE = (dt.date(1970, 1, 1).toordinal() - 1) * 86400


def _sqlite_local(
    column: str,
    timezone: str,
    leaf: Callable[[str, int], str],
    within: tuple[dt.datetime, dt.datetime] | None = None,
) -> str:
    """``leaf(column, offset)`` of a stored UTC datetime, ``offset`` seconds being the
    zone's UTC offset at that moment.

    A zone whose offset never changes inside ``within`` (the UTC range the query
    reads, when the report's parameters bound it) or since its last change (the
    newest offset tested first, one text comparison per row) costs one
    expression; older moments go through a balanced tree of comparisons over
    the zone's changes.
    """
    first, changes = local_transitions(timezone)
    # segments: [(start or None, offset)], each until the next one's start
    segments: list[tuple[dt.datetime | None, int]] = [(None, first), *changes]
    if within is not None:
        low, high = within
        ends: list[dt.datetime | None] = [start for start, _ in segments[1:]] + [None]
        segments = [
            (start, offset)
            for (start, offset), end in zip(segments, ends, strict=True)
            if (start is None or start < high) and (end is None or end > low)
        ] or segments[-1:]
    if len(segments) == 1:
        return leaf(column, segments[0][1])

    def tree(low: int, high: int) -> str:  # segments[low:high], at least one
        if high - low == 1:
            return leaf(column, segments[low][1])
        middle = (low + high) // 2
        start = segments[middle][0]
        assert start is not None
        return (
            f"CASE WHEN {column} < '{_sqlite_text(start)}' "
            f"THEN {tree(low, middle)} ELSE {tree(middle, high)} END"
        )

    newest_start, newest_offset = segments[-1]
    assert newest_start is not None
    return (
        f"CASE WHEN {column} >= '{_sqlite_text(newest_start)}' THEN {leaf(column, newest_offset)} "
        f"ELSE {tree(0, len(segments) - 1)} END"
    )


def _seconds(column: str, offset: int) -> str:
    """Local seconds since 0001-01-01 00:00 (never negative, so ``/`` floors)."""
    return f"(unixepoch({column}) + {offset + _EPOCH_FROM_YEAR_ONE})"


def _shifted(column: str, offset: int) -> str:
    """``column, '+N seconds'``: the arguments of a date function for local time."""
    return f"{column}, '{offset:+d} seconds'" if offset else column


#: SQLite's bucket of a stored moment as an integer code, ``(column, offset) -> SQL``;
#: :func:`bucket_key` turns a code back into the bucket's first day (or hour).
#: Integers group and sort faster than text, and most codes are integer arithmetic
#: on ``unixepoch`` (which also reads the stored ``+00:00``) rather than formatting.
_SQLITE_BUCKETS: dict[str, Callable[[str, int], str]] = {
    # local hours since 0001-01-01 00:00
    "hour": lambda c, o: f"({_seconds(c, o)} / 3600)",
    # days since 0001-01-01 (Python's ordinal day - 1)
    "day": lambda c, o: f"({_seconds(c, o)} / 86400)",
    # weeks since Monday 0001-01-01
    "week": lambda c, o: f"({_seconds(c, o)} / 604800)",
    # yyyymm of the month, of the quarter's first month; yyyy of the year
    "month": lambda c, o: f"CAST(strftime('%Y%m', {_shifted(c, o)}) AS INTEGER)",
    "quarter": lambda c, o: (
        f"CAST(strftime('%Y', {_shifted(c, o)}) || substr('010101040404070707101010', "
        f"CAST(strftime('%m', {_shifted(c, o)}) AS INTEGER) * 2 - 1, 2) AS INTEGER)"
    ),
    "year": lambda c, o: f"CAST(strftime('%Y', {_shifted(c, o)}) AS INTEGER)",
}


def bucket_sql(
    column: str,
    storage: str,
    bucket: str,
    dialect: Dialect,
    timezone: str,
    within: tuple[dt.datetime, dt.datetime] | None = None,
) -> tuple[str, list[Any]]:
    """SQL (``{}`` placeholders) and parameters for the local bucket of a date/datetime column.

    ``within``: the UTC instants ``[low, high)`` the query's conditions keep
    (when known), so SQLite tests only the zone's offsets in that range. On
    SQLite the bucket is an integer code; read it with :func:`bucket_key`.
    """
    if dialect == "postgres":
        if storage == "datetime":
            local, params = f"({column} AT TIME ZONE {{}})", [timezone]
        else:
            local, params = f"CAST({column} AS TIMESTAMP)", []
        if bucket == "hour":
            return f"date_trunc('hour', {local})", params
        return f"CAST(date_trunc('{bucket}', {local}) AS DATE)", params
    leaf = _SQLITE_BUCKETS[bucket]
    if storage == "datetime":
        return _sqlite_local(column, timezone, leaf, within), []
    return leaf(column, 0), []


_YEAR_ONE = dt.datetime(1, 1, 1)


def _decode_sqlite(code: int, bucket: str) -> BucketKey:
    """The bucket of one of SQLite's integer codes (see ``_SQLITE_BUCKETS``)."""
    if bucket == "hour":
        return _YEAR_ONE + dt.timedelta(hours=code)
    if bucket == "day":
        return dt.date.fromordinal(code + 1)
    if bucket == "week":
        return dt.date.fromordinal(code * 7 + 1)
    if bucket == "year":
        return dt.date(code, 1, 1)
    return dt.date(code // 100, code % 100, 1)


def bucket_key(value: Any, bucket: str) -> BucketKey | None:
    """The Python key of a bucket as either dialect returns it."""
    if value is None:
        return None
    if type(value) is int:  # SQLite's code
        return _decode_sqlite(value, bucket)
    if bucket == "hour":
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        return dt.datetime.fromisoformat(str(value))
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def truncate(day: dt.date, bucket: str) -> dt.date:
    """The first day of the bucket holding ``day`` (day, week, month, quarter, year)."""
    if bucket == "week":
        return day - dt.timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if bucket == "year":
        return day.replace(month=1, day=1)
    return day


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    return day.replace(year=total // 12, month=total % 12 + 1, day=1)


def next_bucket(key: BucketKey, bucket: str) -> BucketKey:
    """The bucket after ``key``."""
    if bucket == "hour":
        assert isinstance(key, dt.datetime)
        return key + dt.timedelta(hours=1)
    assert isinstance(key, dt.date)
    if bucket == "day":
        return key + dt.timedelta(days=1)
    if bucket == "week":
        return key + dt.timedelta(days=7)
    if bucket == "month":
        return _add_months(key, 1)
    if bucket == "quarter":
        return _add_months(key, 3)
    return key.replace(year=key.year + 1)


def shift_bucket(key: BucketKey, bucket: str, years: int) -> BucketKey:
    """``key`` moved by whole years (weeks by 52 weeks, so they still start on Monday)."""
    if bucket == "week":
        return key + dt.timedelta(weeks=52 * years)
    if bucket == "hour":
        assert isinstance(key, dt.datetime)
        try:
            return key.replace(year=key.year + years)
        except ValueError:  # 29 February
            return key.replace(year=key.year + years, day=28)
    try:
        return key.replace(year=key.year + years)
    except ValueError:
        return key.replace(year=key.year + years, day=28)


def bucket_series(first: BucketKey, last: BucketKey, bucket: str) -> Iterator[BucketKey]:
    """Every bucket from ``first`` to ``last`` inclusive."""
    key = first
    for _ in range(1_000_000):  # bounded: a report never spans a million buckets
        if key > last:
            return
        yield key
        key = next_bucket(key, bucket)


def bucket_bounds(start: dt.date, end: dt.date, bucket: str) -> tuple[BucketKey, BucketKey]:
    """The first and last bucket of the local days ``start`` to ``end`` (inclusive)."""
    if bucket == "hour":
        return (
            dt.datetime.combine(start, dt.time()),
            dt.datetime.combine(end, dt.time(23)),
        )
    return truncate(start, bucket), truncate(end, bucket)


def bucket_label(key: BucketKey, bucket: str, timezone: str) -> str:
    """A bucket as text: its first day (``2024-03-01``), an hour with the zone's offset."""
    if bucket == "hour":
        assert isinstance(key, dt.datetime)
        return key.replace(tzinfo=zoneinfo.ZoneInfo(timezone)).isoformat()
    return key.isoformat()


def bucket_end(key: BucketKey, bucket: str) -> BucketKey:
    """The start of the bucket after ``key`` (the exclusive end of ``key``)."""
    return next_bucket(key, bucket)
