"""Funnel, cohort retention and RFM on small fixed datasets, numbers checked by hand."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from jimu.meta import EntityDef, FieldDef
from jimu.reports import ReportEngine
from jimu.site import Site

from .helpers import CUSTOMER, ORDER, report, run

EVENT = EntityDef(
    name="event",
    fields=[
        FieldDef(name="visitor", type="integer"),
        FieldDef(name="action", type="text"),
        FieldDef(name="at", type="datetime"),
    ],
)


def _event(visitor: int, action: str, at: str) -> dict[str, Any]:
    return {"visitor": visitor, "action": action, "at": at}


EVENTS = [
    # 1: view, cart, pay in order: reaches every step
    _event(1, "view", "2024-05-01T10:00:00+08:00"),
    _event(1, "cart", "2024-05-01T10:05:00+08:00"),
    _event(1, "pay", "2024-05-01T10:10:00+08:00"),
    # 2: view then pay, never a cart: step 1 only
    _event(2, "view", "2024-05-01T10:00:00+08:00"),
    _event(2, "pay", "2024-05-01T10:01:00+08:00"),
    # 3: a cart before viewing does not count, the one after does: steps 1-2
    _event(3, "cart", "2024-05-01T09:00:00+08:00"),
    _event(3, "view", "2024-05-01T10:00:00+08:00"),
    _event(3, "cart", "2024-05-01T11:00:00+08:00"),
    # 4: every step, but cart and pay come 19 and 20 days after the view
    _event(4, "view", "2024-05-01T10:00:00+08:00"),
    _event(4, "cart", "2024-05-20T10:00:00+08:00"),
    _event(4, "pay", "2024-05-21T10:00:00+08:00"),
    # 5: pays without viewing: in no step
    _event(5, "pay", "2024-05-01T10:00:00+08:00"),
    # 6: pays before the cart: steps 1-2
    _event(6, "view", "2024-05-01T10:00:00+08:00"),
    _event(6, "pay", "2024-05-01T10:02:00+08:00"),
    _event(6, "cart", "2024-05-01T10:05:00+08:00"),
]


def _steps() -> list[dict[str, Any]]:
    return [
        {"label": {"en": name, "zh-CN": name}, "filter": {"==": [{"var": "action"}, name]}}
        for name in ("view", "cart", "pay")
    ]


def test_funnel(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await site.create_entity(EVENT)
        await site.records.bulk("event", {"create": EVENTS})
        engine = ReportEngine.of(site)
        funnel = report(
            entity="event",
            kind="funnel",
            options={"actor": "visitor", "time": "at", "steps": _steps()},
            chart={"type": "funnel"},
        )
        result = await engine.run(funnel)
        assert [(r["label"], r["count"]) for r in result.rows] == [
            ("view", 5),
            ("cart", 4),
            ("pay", 2),
        ]
        assert [r["conversion"] for r in result.rows] == [1.0, 0.8, 0.4]
        assert [r["step_conversion"] for r in result.rows] == [1.0, 0.8, 0.5]
        # within 7 days of the first step, visitor 4 drops out of steps 2 and 3
        windowed = report(
            entity="event",
            kind="funnel",
            options={"actor": "visitor", "time": "at", "steps": _steps(), "window_days": 7},
        )
        result = await engine.run(windowed)
        assert [r["count"] for r in result.rows] == [5, 3, 1]
        # the report's filter narrows the events first
        filtered = report(
            entity="event",
            kind="funnel",
            filter={"<=": [{"var": "visitor"}, 3]},
            options={"actor": "visitor", "time": "at", "steps": _steps()},
        )
        result = await engine.run(filtered)
        assert [r["count"] for r in result.rows] == [3, 2, 1]

    run(new_site(), work)


ORDERS_BY_CUSTOMER = {
    1: ["2024-01-05T12:00:00+08:00", "2024-02-10T12:00:00+08:00", "2024-04-01T12:00:00+08:00"],
    2: ["2024-01-20T12:00:00+08:00", "2024-01-25T12:00:00+08:00"],
    3: ["2024-01-31T17:00:00+00:00", "2024-03-03T12:00:00+08:00"],  # 1 February in Shanghai
    4: ["2024-03-15T12:00:00+08:00"],
}


def test_cohort_retention(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await site.create_entity(CUSTOMER)
        await site.create_entity(ORDER)
        await site.records.bulk("customer", {"create": [{"name": f"c{i}"} for i in range(1, 5)]})
        orders = [
            {"customer": customer, "placed_at": moment, "amount": "1"}
            for customer, moments in ORDERS_BY_CUSTOMER.items()
            for moment in moments
        ]
        await site.records.bulk("shop_order", {"create": orders})
        cohort = report(
            kind="cohort",
            options={"actor": "customer", "time": "placed_at", "bucket": "month", "periods": 4},
            chart={"type": "cohort_grid"},
        )
        result = await ReportEngine.of(site).run(cohort)
        grid = [
            (row["cohort"], row["size"], [row[f"period_{n}"] for n in range(4)])
            for row in result.rows
        ]
        assert grid == [
            ("2024-01-01", 2, [2, 1, 0, 1]),
            ("2024-02-01", 1, [1, 1, 0, None]),  # April is the last month seen: +3 not yet
            ("2024-03-01", 1, [1, 0, None, None]),
        ]
        assert [result.rows[0][f"period_{n}_rate"] for n in range(4)] == [1.0, 0.5, 0.0, 0.5]

    run(new_site(), work)


RFM_ORDERS = {
    1: [("2024-06-29", "100"), ("2024-06-20", "200"), ("2024-05-01", "300")],
    2: [("2024-06-25", "50")],
    3: [("2024-03-01", "1000"), ("2024-02-01", "1000")],
    4: [("2024-01-10", "20")],
    5: [("2024-06-10", "80"), ("2024-06-11", "80"), ("2024-06-12", "80"), ("2024-06-13", "80")],
}


def test_rfm_scores_and_segments(new_site: Callable[..., Site]) -> None:
    async def work(site: Site) -> None:
        await site.create_entity(CUSTOMER)
        await site.create_entity(ORDER)
        await site.records.bulk("customer", {"create": [{"name": f"c{i}"} for i in range(1, 7)]})
        orders = [
            {"customer": customer, "placed_at": f"{day}T12:00:00+08:00", "amount": amount}
            for customer, items in RFM_ORDERS.items()
            for day, amount in items
        ]
        orders.append({"customer": 6, "placed_at": "2024-07-02T12:00:00+08:00", "amount": "9"})
        await site.records.bulk("shop_order", {"create": orders})
        options = {
            "customer": "customer",
            "time": "placed_at",
            "amount": "amount",
            "as_of": "2024-06-30",
        }
        engine = ReportEngine.of(site)
        per_customer = await engine.run(
            report(kind="rfm", options={**options, "output": "customers"})
        )
        scores = [
            (row["customer"], row["r"], row["f"], row["m"], row["segment"])
            for row in per_customer.rows
        ]
        # customer 6 ordered only after as_of: not scored
        assert scores == [
            (1, 5, 4, 4, "champions"),
            (2, 4, 2, 2, "potential_loyalists"),
            (5, 3, 5, 3, "loyal"),
            (3, 2, 3, 5, "at_risk"),
            (4, 1, 2, 1, "hibernating"),
        ]
        first = per_customer.rows[0]
        assert first["recency_days"] == 1.5  # 29 June noon to the end of 30 June
        assert (first["frequency"], first["monetary"]) == (3, Decimal("600.00"))
        segments = await engine.run(report(kind="rfm", options=options, chart={"type": "rfm_grid"}))
        by_segment = {row["segment"]: row for row in segments.rows}
        assert set(by_segment) == {
            "champions",
            "potential_loyalists",
            "loyal",
            "at_risk",
            "hibernating",
        }
        assert by_segment["at_risk"]["monetary"] == Decimal("2000.00")
        assert by_segment["at_risk"]["customers"] == 1
        assert by_segment["champions"]["share"] == 0.2
        assert by_segment["champions"]["segment_label"] == "重要价值客户"

    run(new_site(), work)
