"""Every measure, dimension and time bucket against the same figures computed in plain
Python over the generated rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from jimu.meta.reports import BUCKETS
from jimu.reports import ReportEngine
from jimu.site import Site

from .helpers import aggregate, bucket_of, generate, load, local, report, run

CUSTOMERS, ORDERS = generate(seed=7, customers=40, orders=1200)


def _city(order: dict[str, Any]) -> Any:
    customer = order["customer"]
    return None if customer is None else CUSTOMERS[customer - 1]["city"]


def _amount(order: dict[str, Any]) -> Decimal | None:
    return None if order["amount"] is None else Decimal(order["amount"])


def _close(actual: Any, expected: Any, what: str) -> None:
    if isinstance(expected, float) or isinstance(actual, float):
        assert actual == pytest.approx(expected, rel=1e-9), what
    else:
        assert actual == expected, what


def _grouped(key: Callable[[dict[str, Any]], Any]) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = {}
    for order in ORDERS:
        groups.setdefault(key(order), []).append(order)
    return groups


MEASURES: list[dict[str, Any]] = [
    {"name": "orders", "agg": "count"},
    {"name": "with_amount", "agg": "count", "field": "amount"},
    {"name": "customers", "agg": "count_distinct", "field": "customer"},
    {"name": "revenue", "agg": "sum", "field": "amount"},
    {"name": "items", "agg": "sum", "field": "quantity"},
    {"name": "avg_amount", "agg": "avg", "field": "amount"},
    {"name": "smallest", "agg": "min", "field": "amount"},
    {"name": "largest", "agg": "max", "field": "amount"},
    {"name": "first_order", "agg": "min", "field": "placed_at"},
    {"name": "last_shipped", "agg": "max", "field": "shipped_on"},
    {
        "name": "paid_revenue",
        "agg": "sum",
        "field": "amount",
        "filter": {"==": [{"var": "status"}, "paid"]},
    },
    {"name": "gold_orders", "agg": "count", "filter": {"==": [{"var": "customer.tier"}, "gold"]}},
    {"name": "repeat", "agg": "repeat_rate", "field": "customer"},
    {"name": "aov", "expr": {"/": [{"var": "revenue"}, {"var": "with_amount"}]}},
    {"name": "margin", "expr": {"-": [{"*": [{"var": "revenue"}, 0.3]}, {"var": "items"}]}},
]


def _expected_measures(group: list[dict[str, Any]]) -> dict[str, Any]:
    amounts = [_amount(o) for o in group]
    revenue = aggregate("sum", amounts)
    with_amount = aggregate("count", amounts)
    items = aggregate("sum", [o["quantity"] for o in group])
    tiers = [CUSTOMERS[o["customer"] - 1]["tier"] if o["customer"] else None for o in group]
    return {
        "orders": len(group),
        "with_amount": with_amount,
        "customers": aggregate("count_distinct", [o["customer"] for o in group]),
        "revenue": revenue,
        "items": items,
        "avg_amount": aggregate("avg", amounts),
        "smallest": aggregate("min", amounts),
        "largest": aggregate("max", amounts),
        "first_order": aggregate("min", [dt.datetime.fromisoformat(o["placed_at"]) for o in group]),
        "last_shipped": aggregate(
            "max",
            [dt.date.fromisoformat(o["shipped_on"]) if o["shipped_on"] else None for o in group],
        ),
        "paid_revenue": aggregate(
            "sum", [a for a, o in zip(amounts, group, strict=True) if o["status"] == "paid"]
        ),
        "gold_orders": sum(1 for tier in tiers if tier == "gold"),
        "repeat": aggregate("repeat_rate", [o["customer"] for o in group]),
        "aov": float(revenue) / with_amount if with_amount else None,
        "margin": float(revenue) * 0.3 - float(items),
    }


def _check_rows(
    rows: list[dict[str, Any]],
    expected: dict[Any, dict[str, Any]],
    key: Callable[[dict[str, Any]], Any],
) -> None:
    got = {key(row): row for row in rows}
    assert set(got) == set(expected)
    for group, figures in expected.items():
        for name, value in figures.items():
            _close(got[group][name], value, f"{name} of {group!r}")


def test_every_measure_by_field_and_link_attribute(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        engine = ReportEngine.of(site)
        result = await engine.run(
            report(measures=MEASURES, dimensions=[{"field": "channel"}, {"field": "customer.city"}])
        )
        expected = {
            group: _expected_measures(orders)
            for group, orders in _grouped(lambda o: (o["channel"], _city(o))).items()
        }
        _check_rows(result.rows, expected, lambda row: (row["channel"], row["customer_city"]))
        # rows come ordered by the dimensions, missing values last
        keys = [
            (row["channel"], row["customer_city"] is None, row["customer_city"] or "")
            for row in result.rows
        ]
        assert keys == sorted(keys)
        # one group over everything (no dimension)
        total = await engine.run(report(measures=MEASURES))
        assert len(total.rows) == 1
        for name, value in _expected_measures(ORDERS).items():
            _close(total.rows[0][name], value, name)

    run(new_site(), work)


@pytest.mark.parametrize("field", ["placed_at", "shipped_on"])
def test_every_time_bucket_in_the_site_time_zone(new_site: Callable[..., Site], field: str) -> None:
    async def work(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        engine = ReportEngine.of(site)
        for bucket in BUCKETS:
            if bucket == "hour" and field == "shipped_on":
                continue
            definition = report(
                measures=[
                    {"name": "orders", "agg": "count"},
                    {"name": "revenue", "agg": "sum", "field": "amount"},
                ],
                dimensions=[{"field": field, "bucket": bucket, "name": "period"}],
                filter={"!=": [{"var": field}, None]},
            )
            result = await engine.run(definition)

            def when(order: dict[str, Any]) -> Any:
                if field == "placed_at":
                    return local(order["placed_at"])
                return dt.date.fromisoformat(order["shipped_on"])

            groups = _grouped(lambda o, size=bucket: bucket_of(when(o), size) if o[field] else None)
            groups.pop(None, None)
            got = {row["period"]: row for row in result.rows}
            # every bucket from the first to the last is there, the empty ones as zero
            labels = [row["period"] for row in result.rows]
            assert labels == sorted(labels), bucket
            assert labels[0] == min(groups) and labels[-1] == max(groups), bucket
            for label, row in got.items():
                orders = groups.get(label, [])
                assert row["orders"] == len(orders), (bucket, label)
                assert row["revenue"] == aggregate("sum", [_amount(o) for o in orders]), (
                    bucket,
                    label,
                )
            if bucket == "hour":
                assert any(label not in groups for label in got), "expected empty hours"
            if bucket == "day":
                span = dt.date.fromisoformat(labels[-1]) - dt.date.fromisoformat(labels[0])
                assert len(labels) == span.days + 1
            if bucket == "week":
                assert all(dt.date.fromisoformat(label).weekday() == 0 for label in got)

    run(new_site(), work)


def test_date_range_parameter_fills_empty_months(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        definition = report(
            measures=[
                {"name": "orders", "agg": "count"},
                {"name": "aov", "expr": {"/": [{"var": "revenue"}, {"var": "orders"}]}},
                {"name": "revenue", "agg": "sum", "field": "amount"},
            ],
            dimensions=[{"field": "placed_at", "bucket": "month"}],
            parameters=[
                {"name": "period", "type": "date_range", "field": "placed_at"},
                {"name": "channels", "type": "list", "field": "channel"},
                {"name": "status", "type": "text", "field": "status", "default": "paid"},
            ],
        )
        result = await ReportEngine.of(site).run(
            definition, {"period": "2023-10-01..2024-05-31", "channels": "web,app"}
        )
        wanted = [
            o
            for o in ORDERS
            if o["channel"] in ("web", "app")
            and o["status"] == "paid"
            and dt.date(2023, 10, 1) <= local(o["placed_at"]).date() <= dt.date(2024, 5, 31)
        ]
        months = {}
        for order in wanted:
            months.setdefault(bucket_of(local(order["placed_at"]), "month"), []).append(order)
        assert [row["placed_at_month"] for row in result.rows] == [
            "2023-10-01",
            "2023-11-01",
            "2023-12-01",
            "2024-01-01",
            "2024-02-01",
            "2024-03-01",
            "2024-04-01",
            "2024-05-01",
        ]
        for row in result.rows:
            orders = months.get(row["placed_at_month"], [])
            assert row["orders"] == len(orders)
            assert row["revenue"] == aggregate("sum", [_amount(o) for o in orders])
        empty = result.rows[0]
        assert empty["orders"] == 0 and empty["revenue"] == 0 and empty["aov"] is None
        assert result.params["period"] == {"start": "2023-10-01", "end": "2024-05-31"}

    run(new_site(), work)


def test_previous_period_and_running_totals(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        engine = ReportEngine.of(site)
        definition = report(
            measures=[
                {"name": "orders", "agg": "count"},
                {"name": "revenue", "agg": "sum", "field": "amount"},
            ],
            dimensions=[{"field": "placed_at", "bucket": "day"}],
            parameters=[{"name": "period", "type": "date_range", "field": "placed_at"}],
            compare={"parameter": "period"},
            cumulative=["revenue"],
            chart={"type": "line"},
        )
        result = await engine.run(
            definition, {"period": {"start": "2024-02-01", "end": "2024-02-29"}}
        )
        by_day = _grouped(lambda o: local(o["placed_at"]).date())
        assert len(result.rows) == 29
        running = Decimal(0)
        for index, row in enumerate(result.rows):
            day = dt.date(2024, 2, 1) + dt.timedelta(days=index)
            before = day - dt.timedelta(days=29)  # the 29 days just before
            assert row["placed_at_day"] == day.isoformat()
            assert row["orders"] == len(by_day.get(day, []))
            assert row["orders_previous"] == len(by_day.get(before, []))
            revenue = aggregate("sum", [_amount(o) for o in by_day.get(day, [])])
            previous = aggregate("sum", [_amount(o) for o in by_day.get(before, [])])
            assert row["revenue_previous"] == previous
            if previous:
                assert row["revenue_change"] == pytest.approx(
                    float((revenue - previous) / previous)
                )
            running += revenue
            assert row["revenue_cumulative"] == running
        # a year back there is no data: the previous figures are zero, the change unknown
        yearly = msgspec.structs.replace(
            definition,
            compare=msgspec.convert(
                {"parameter": "period", "shift": "year"}, type(definition.compare)
            ),
        )
        result = await engine.run(yearly, {"period": "2024-02-01..2024-02-29"})
        assert all(
            row["orders_previous"] == 0 and row["orders_change"] is None for row in result.rows
        )
        # by channel: the same channel in the previous 30 days
        by_channel = report(
            measures=[{"name": "orders", "agg": "count"}],
            dimensions=[{"field": "channel"}],
            parameters=[{"name": "period", "type": "date_range", "field": "placed_at"}],
            compare={"parameter": "period"},
        )
        result = await engine.run(by_channel, {"period": "2024-03-01..2024-03-30"})
        for row in result.rows:
            now = [
                o
                for o in ORDERS
                if o["channel"] == row["channel"]
                and dt.date(2024, 3, 1) <= local(o["placed_at"]).date() <= dt.date(2024, 3, 30)
            ]
            then = [
                o
                for o in ORDERS
                if o["channel"] == row["channel"]
                and dt.date(2024, 1, 31) <= local(o["placed_at"]).date() <= dt.date(2024, 2, 29)
            ]
            assert (row["orders"], row["orders_previous"]) == (len(now), len(then))

    run(new_site(), work)


def test_top_n_with_others(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        definition = report(
            measures=[
                {"name": "revenue", "agg": "sum", "field": "amount"},
                {"name": "customers", "agg": "count_distinct", "field": "customer"},
                {"name": "avg_amount", "agg": "avg", "field": "amount"},
            ],
            dimensions=[{"field": "customer.city", "name": "city"}],
            top={"n": 2, "by": "revenue", "others_label": {"en": "others", "zh-CN": "其他"}},
            sort=[{"by": "revenue", "descending": True}],
        )
        result = await ReportEngine.of(site).run(definition)
        groups = _grouped(_city)
        totals = {
            city: aggregate("sum", [_amount(o) for o in orders]) for city, orders in groups.items()
        }
        ranked = sorted(totals, key=lambda city: totals[city], reverse=True)
        top, rest = ranked[:2], ranked[2:]
        assert [row["city"] for row in result.rows] == [*top, "其他"]
        rest_orders = [o for city in rest for o in groups[city]]
        others = result.rows[-1]
        assert others["_others"] is True
        assert others["revenue"] == aggregate("sum", [_amount(o) for o in rest_orders])
        # distinct customers and averages of "others" are computed over its rows, not added up
        assert others["customers"] == aggregate(
            "count_distinct", [o["customer"] for o in rest_orders]
        )
        assert others["avg_amount"] == pytest.approx(
            aggregate("avg", [_amount(o) for o in rest_orders])
        )
        without = msgspec.structs.replace(
            definition, top=msgspec.structs.replace(definition.top, others=False)
        )
        result = await ReportEngine.of(site).run(without)
        assert [row["city"] for row in result.rows] == top

    run(new_site(), work)


def test_buckets_follow_daylight_saving_time(new_site: Callable[..., Site]) -> None:
    """New York: the offset changes on 2024-03-10 and 2024-11-03; buckets must follow."""
    site = new_site()
    site.config = msgspec.structs.replace(site.config, timezone="America/New_York")
    moments = [
        "2024-03-10T04:59:00+00:00",  # 23:59 EST on the 9th
        "2024-03-10T05:00:00+00:00",  # 00:00 EST on the 10th
        "2024-03-10T06:59:00+00:00",  # 01:59 EST
        "2024-03-10T07:00:00+00:00",  # 03:00 EDT (02:00 never happens)
        "2024-03-11T03:59:00+00:00",  # 23:59 EDT on the 10th
        "2024-03-11T04:00:00+00:00",  # 00:00 EDT on the 11th
        "2024-11-03T05:30:00+00:00",  # 01:30 EDT
        "2024-11-03T06:30:00+00:00",  # 01:30 EST (the hour repeats)
        "2024-11-04T04:59:00+00:00",  # 23:59 EST on the 3rd
        "1990-07-01T03:30:00+00:00",  # 23:30 EDT on 30 June 1990
    ]
    orders = [{"placed_at": m, "channel": "web", "quantity": 1} for m in moments]

    async def work(site: Site) -> None:
        await load(site, [], orders)
        engine = ReportEngine.of(site)
        for bucket in ("day", "hour"):
            result = await engine.run(
                report(
                    measures=[{"name": "orders", "agg": "count"}],
                    dimensions=[{"field": "placed_at", "bucket": bucket, "fill": False}],
                )
            )
            expected: dict[str, int] = {}
            for moment in moments:
                label = bucket_of(local(moment, "America/New_York"), bucket)
                expected[label] = expected.get(label, 0) + 1
            got = {row[f"placed_at_{bucket}"]: row["orders"] for row in result.rows}
            if bucket == "hour":  # labels carry the offset; the repeated 01:00 hour is one bucket
                merged: dict[str, int] = {}
                for label, count in expected.items():
                    merged[label[:19]] = merged.get(label[:19], 0) + count
                assert {label[:19]: n for label, n in got.items()} == merged
            else:
                assert got == expected

    run(site, work)
