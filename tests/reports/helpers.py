"""Shared pieces of the report tests: a small store model, generated data, and the
same figures computed in plain Python from the generated rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import zoneinfo
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from jimu.meta import EntityDef, FieldDef
from jimu.meta.reports import ReportDef
from jimu.site import Site

T = TypeVar("T")

CUSTOMER = EntityDef(
    name="customer",
    fields=[
        FieldDef(name="name", type="text"),
        FieldDef(name="city", type="text", label={"en": "City", "zh-CN": "城市"}),
        FieldDef(name="tier", type="select", options={"choices": ["gold", "silver", "bronze"]}),
    ],
)
ORDER = EntityDef(
    name="shop_order",
    fields=[
        FieldDef(name="customer", type="link", options={"target": "customer"}),
        FieldDef(name="amount", type="decimal", options={"precision": 12, "scale": 2}),
        FieldDef(name="quantity", type="integer"),
        FieldDef(name="channel", type="text"),
        FieldDef(name="status", type="text"),
        FieldDef(name="placed_at", type="datetime"),
        FieldDef(name="shipped_on", type="date"),
        FieldDef(name="note", type="text"),
    ],
)
CITIES = ["上海", "北京", "杭州", "广州", "成都", None]
CHANNELS = ["web", "app", "wechat", "store"]
STATUSES = ["paid", "paid", "paid", "refunded", "pending"]


def run(site: Site, work: Callable[[Site], Awaitable[T]]) -> T:
    """Open ``site``, run ``work(site)``, close it."""

    async def main() -> T:
        async with site:
            return await work(site)

    return asyncio.run(main())


def report(**definition: Any) -> ReportDef:
    """A ReportDef from keyword arguments (as JSON would give them)."""
    definition.setdefault("name", "test")
    definition.setdefault("entity", "shop_order")
    definition.setdefault("chart", {"type": "table"})
    return msgspec.convert(definition, ReportDef)


def generate(
    seed: int, customers: int, orders: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Customers and orders with times spread over six months, many near local midnight."""
    rng = random.Random(seed)
    customer_rows = [
        {
            "name": f"c{i}",
            "city": rng.choice(CITIES),
            "tier": rng.choice(["gold", "silver", "bronze", None]),
        }
        for i in range(customers)
    ]
    start = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    order_rows = []
    for _ in range(orders):
        if rng.random() < 0.2:  # around midnight in Shanghai (16:00 UTC) to catch off-by-a-zone
            day = start + dt.timedelta(days=rng.randrange(0, 180))
            moment = day.replace(hour=15, minute=59) + dt.timedelta(minutes=rng.randrange(0, 3))
        else:
            moment = start + dt.timedelta(seconds=rng.randrange(0, 180 * 86400))
        order_rows.append(
            {
                "customer": rng.randrange(1, customers + 1) if rng.random() > 0.05 else None,
                "amount": str(Decimal(rng.randrange(100, 100000)) / 100)
                if rng.random() > 0.03
                else None,
                "quantity": rng.randrange(1, 6),
                "channel": rng.choice(CHANNELS),
                "status": rng.choice(STATUSES),
                "placed_at": moment.isoformat(),
                "shipped_on": (moment + dt.timedelta(days=rng.randrange(0, 5))).date().isoformat()
                if rng.random() > 0.1
                else None,
                "note": rng.choice(["gift", "rush", None]),
            }
        )
    return customer_rows, order_rows


async def load(site: Site, customers: list[dict[str, Any]], orders: list[dict[str, Any]]) -> None:
    """Create the model and the records on an open site."""
    await site.create_entity(CUSTOMER)
    await site.create_entity(ORDER)
    if customers:
        await site.records.bulk("customer", {"create": customers})
    for start in range(0, len(orders), 5000):
        await site.records.bulk("shop_order", {"create": orders[start : start + 5000]})


# -- the same figures in plain Python ------------------------------------------------------


def local(value: str, timezone: str = "Asia/Shanghai") -> dt.datetime:
    """An ISO instant in the zone's wall clock."""
    return dt.datetime.fromisoformat(value).astimezone(zoneinfo.ZoneInfo(timezone))


def bucket_of(day: dt.datetime | dt.date, bucket: str) -> str:
    """The label of the bucket holding a local moment (hour) or day, computed independently."""
    if bucket == "hour":
        assert isinstance(day, dt.datetime)
        return day.replace(minute=0, second=0, microsecond=0).isoformat()
    date = day.date() if isinstance(day, dt.datetime) else day
    if bucket == "day":
        return date.isoformat()
    if bucket == "week":
        return (date - dt.timedelta(days=date.weekday())).isoformat()  # Monday
    if bucket == "month":
        return f"{date.year:04d}-{date.month:02d}-01"
    if bucket == "quarter":
        return f"{date.year:04d}-{(date.month - 1) // 3 * 3 + 1:02d}-01"
    return f"{date.year:04d}-01-01"


def aggregate(agg: str, values: list[Any], rows: list[dict[str, Any]] | None = None) -> Any:
    """count, count_distinct, sum, avg, min, max, repeat_rate of a group's values."""
    present = [value for value in values if value is not None]
    if agg == "count":
        return len(present)
    if agg == "count_distinct":
        return len(set(present))
    if agg == "repeat_rate":
        if not present:
            return None
        counts: dict[Any, int] = {}
        for value in present:
            counts[value] = counts.get(value, 0) + 1
        return sum(1 for n in counts.values() if n >= 2) / len(counts)
    if not present:
        return Decimal(0) if agg == "sum" else None
    if agg == "sum":
        return sum(present)
    if agg == "avg":
        return float(sum(present)) / len(present)
    if agg == "min":
        return min(present)
    return max(present)
