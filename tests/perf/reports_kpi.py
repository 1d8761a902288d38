"""A store's KPI set through the report engine vs hand-written SQL vs pandas.

Run: ``python -m tests.perf.reports_kpi --scale 0.1`` (1.0 = 200,000 customers and
2,000,000 orders), on SQLite and on the PostgreSQL server of the test fixtures
(``JIMU_TEST_POSTGRES_URL``, a fresh database dropped afterwards).

The KPI set: revenue, orders, average order value and repurchase rate (the
share of the month's customers who ordered at least twice that month) by
month in Asia/Shanghai, and RFM segments over all customers. Three ways, on
the same tables, each checked to give the same figures before timing:

* the engine: two ``ReportDef``s run by :class:`~jimu.reports.ReportEngine`
  (compile, one query each, shaping the rows);
* hand-written SQL for the same figures, what a developer would write for
  this dialect (fixed +8 hours on SQLite, ``AT TIME ZONE`` on PostgreSQL);
* pandas: load the order table (the columns the KPIs need) and compute the
  same figures with group-bys.

Targets: the engine within 1.2x of the hand-written SQL, and faster than
pandas loading the same tables (a ratio below 1).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd

from jimu.meta import EntityDef, FieldDef
from jimu.meta.reports import ReportDef
from jimu.reports import ReportEngine
from jimu.reports.builtin_kinds import rfm_segment
from jimu.site import Site
from jimu_sdk.testing import make_site, postgres_database
from tests.perf._bench import Report, parse_args, scaled

START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
DAYS = 540
AS_OF = dt.date(2024, 6, 30)
REPEATS = 3

CUSTOMER = EntityDef(
    name="customer",
    fields=[FieldDef(name="name", type="text"), FieldDef(name="city", type="text")],
)
ORDER = EntityDef(
    name="shop_order",
    fields=[
        FieldDef(name="customer", type="link", options={"target": "customer"}),
        FieldDef(name="amount", type="decimal", options={"precision": 12, "scale": 2}),
        FieldDef(name="channel", type="text"),
        FieldDef(name="placed_at", type="datetime"),
    ],
)
MONTHLY = msgspec.convert(
    {
        "name": "kpi_monthly",
        "entity": "shop_order",
        "measures": [
            {"name": "revenue", "agg": "sum", "field": "amount"},
            {"name": "orders", "agg": "count"},
            {"name": "aov", "expr": {"/": [{"var": "revenue"}, {"var": "orders"}]}},
            {"name": "repurchase", "agg": "repeat_rate", "field": "customer"},
        ],
        "dimensions": [{"field": "placed_at", "bucket": "month", "name": "month"}],
        "chart": {"type": "combo"},
    },
    ReportDef,
)
RFM = msgspec.convert(
    {
        "name": "kpi_rfm",
        "entity": "shop_order",
        "kind": "rfm",
        "options": {
            "customer": "customer",
            "time": "placed_at",
            "amount": "amount",
            "as_of": AS_OF.isoformat(),
        },
        "chart": {"type": "rfm_grid"},
    },
    ReportDef,
)

# -- hand-written SQL -------------------------------------------------------------------

_MONTHLY_SQL = {
    "sqlite": (
        "SELECT m, SUM(s) AS revenue, SUM(n) AS orders, SUM(s) * 1.0 / SUM(n) AS aov, "
        "SUM(n >= 2) * 1.0 / COUNT(*) AS repurchase FROM ("
        " SELECT strftime('%Y-%m-01', substr(placed_at, 1, 19), '+8 hours') AS m, customer,"
        " COUNT(*) AS n, SUM(amount) AS s FROM shop_order GROUP BY 1, 2) GROUP BY m ORDER BY m"
    ),
    "postgres": (
        "SELECT m, SUM(s) AS revenue, SUM(n) AS orders, SUM(s) / SUM(n) AS aov, "
        "COUNT(*) FILTER (WHERE n >= 2)::float8 / COUNT(*) AS repurchase FROM ("
        " SELECT date_trunc('month', placed_at AT TIME ZONE 'Asia/Shanghai') AS m, customer,"
        " COUNT(*) AS n, SUM(amount) AS s FROM shop_order GROUP BY 1, 2) AS per"
        " GROUP BY m ORDER BY m"
    ),
}
_RFM_SCORES = {
    "sqlite": (
        "SELECT r, f, COUNT(*) AS customers, SUM(n) AS orders, SUM(m) AS money, SUM(days) AS days"
        " FROM (SELECT n, m, julianday({}) - julianday(substr(last, 1, 19)) AS days,"
        " (5 * COUNT(*) OVER (ORDER BY last) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS r,"
        " (5 * COUNT(*) OVER (ORDER BY n) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS f"
        " FROM (SELECT customer, MAX(placed_at) AS last, COUNT(*) AS n, SUM(amount) AS m"
        " FROM shop_order WHERE placed_at < {} GROUP BY customer) AS per) AS scored GROUP BY r, f"
    ),
    "postgres": (
        "SELECT r, f, COUNT(*) AS customers, SUM(n) AS orders, SUM(m) AS money, SUM(days) AS days"
        " FROM (SELECT n, m, EXTRACT(EPOCH FROM ($1::timestamptz - last)) / 86400.0 AS days,"
        " (5 * COUNT(*) OVER (ORDER BY last) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS r,"
        " (5 * COUNT(*) OVER (ORDER BY n) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS f"
        " FROM (SELECT customer, MAX(placed_at) AS last, COUNT(*) AS n, SUM(amount) AS m"
        " FROM shop_order WHERE placed_at < $1 GROUP BY customer) AS per) AS scored GROUP BY r, f"
    ),
}


def _as_of_end(dialect: str) -> Any:
    moment = dt.datetime(2024, 7, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00") if dialect == "sqlite" else moment


async def hand_written(site: Site) -> tuple[dict[str, tuple[Any, ...]], dict[str, int]]:
    """The KPI set by hand: monthly figures by month label, customers per RFM segment."""
    dialect = site.db.dialect
    rows = await site.db.fetch(_MONTHLY_SQL[dialect])
    monthly = {
        str(row["m"])[:10]: (row["revenue"], row["orders"], row["aov"], row["repurchase"])
        for row in rows
    }
    segments: dict[str, int] = {}
    end = _as_of_end(dialect)
    if dialect == "sqlite":
        scores = await site.db.fetch(_RFM_SCORES[dialect], [end, end])
    else:
        scores = await site.db.fetch_rendered(_RFM_SCORES[dialect], [end])
    for row in scores:
        name = rfm_segment(int(row["r"]), int(row["f"]))
        segments[name] = segments.get(name, 0) + int(row["customers"])
    return monthly, segments


async def engine(site: Site) -> tuple[dict[str, tuple[Any, ...]], dict[str, int]]:
    """The KPI set through the report engine."""
    reports = ReportEngine.of(site)
    monthly = await reports.run(MONTHLY)
    rfm = await reports.run(RFM)
    return (
        {
            row["month"]: (row["revenue"], row["orders"], row["aov"], row["repurchase"])
            for row in monthly.rows
        },
        {row["segment"]: row["customers"] for row in rfm.rows},
    )


async def with_pandas(site: Site) -> tuple[dict[str, tuple[Any, ...]], dict[str, int]]:
    """Load the order columns the KPIs need into pandas and compute the same figures."""
    sql = "SELECT customer, amount, placed_at FROM shop_order"
    if site.db.dialect == "sqlite":
        rows = await site.db.fetch(sql)
        frame = pd.DataFrame.from_records(rows, columns=["customer", "amount", "placed_at"])
        frame["placed_at"] = pd.to_datetime(frame["placed_at"], utc=True, format="ISO8601")
    else:
        pool: Any = site.db.engine.pool  # type: ignore[attr-defined]
        async with pool.acquire() as connection:
            records = await connection.fetch(sql)
        frame = pd.DataFrame.from_records(
            [tuple(record) for record in records], columns=["customer", "amount", "placed_at"]
        )
        frame["placed_at"] = pd.to_datetime(frame["placed_at"], utc=True)
    frame["amount"] = frame["amount"].astype("float64")
    local = frame["placed_at"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    frame["month"] = local.dt.to_period("M").dt.start_time.dt.strftime("%Y-%m-%d")
    per = frame.groupby(["month", "customer"]).agg(n=("amount", "size"), s=("amount", "sum"))
    per["repeater"] = per["n"] >= 2
    monthly_frame = per.groupby(level="month").agg(
        revenue=("s", "sum"), orders=("n", "sum"), repeater=("repeater", "mean")
    )
    monthly = {
        str(month): (row.revenue, int(row.orders), row.revenue / row.orders, float(row.repeater))
        for month, row in monthly_frame.iterrows()
    }
    end = pd.Timestamp(_as_of_end("postgres"))
    scoped = frame[frame["placed_at"] < end]
    customers = scoped.groupby("customer").agg(
        last=("placed_at", "max"), n=("amount", "size"), m=("amount", "sum")
    )
    recency = customers["last"].rank(method="max", pct=True)
    frequency = customers["n"].rank(method="max", pct=True)
    r = (recency * 5 - 1e-9).apply(math.floor) + 1
    f = (frequency * 5 - 1e-9).apply(math.floor) + 1
    segments: dict[str, int] = {}
    for r_score, f_score in zip(r.astype(int), f.astype(int), strict=True):
        name = rfm_segment(r_score, f_score)
        segments[name] = segments.get(name, 0) + 1
    return monthly, segments


# -- data -----------------------------------------------------------------------------------


def _orders(customers: int, orders: int) -> list[tuple[Any, ...]]:
    rng = random.Random(20240630)
    # a few customers order often, most rarely: a long tail as in a real store
    weights = [1.0 / (1 + i % 97) for i in range(customers)]
    picked = rng.choices(range(1, customers + 1), weights=weights, k=orders)
    channels = ["web", "app", "wechat", "store"]
    rows = []
    for number, customer in enumerate(picked, start=1):
        moment = START + dt.timedelta(seconds=rng.randrange(0, DAYS * 86400))
        cents = rng.randrange(500, 200000)
        rows.append((number, moment, customer, cents, rng.choice(channels)))
    return rows


async def load(site: Site, customers: int, orders: int) -> None:
    """Create the tables through the site and fill them fast (executemany / COPY)."""
    await site.create_entity(CUSTOMER)
    await site.create_entity(ORDER)
    now = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
    rows = _orders(customers, orders)
    if site.db.dialect == "sqlite":
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        async with site.db.transaction():
            await site.db.execute_many(
                "INSERT INTO customer (id, created_at, updated_at, name, city) "
                "VALUES ({}, {}, {}, {}, {})",
                ((i, stamp, stamp, f"c{i}", "上海") for i in range(1, customers + 1)),
            )
            await site.db.execute_many(
                "INSERT INTO shop_order (id, created_at, updated_at, customer, amount, channel, "
                "placed_at) VALUES ({}, {}, {}, {}, {}, {}, {})",
                (
                    (
                        number,
                        stamp,
                        stamp,
                        customer,
                        cents / 100,
                        channel,
                        moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
                    )
                    for number, moment, customer, cents, channel in rows
                ),
            )
        await site.db.execute("ANALYZE")
        return
    pool: Any = site.db.engine.pool  # type: ignore[attr-defined]
    async with pool.acquire() as connection:
        await connection.copy_records_to_table(
            "customer",
            records=[(i, now, now, f"c{i}", "上海") for i in range(1, customers + 1)],
            columns=["id", "created_at", "updated_at", "name", "city"],
        )
        await connection.copy_records_to_table(
            "shop_order",
            records=[
                (number, now, now, customer, Decimal(cents).scaleb(-2), channel, moment)
                for number, moment, customer, cents, channel in rows
            ],
            columns=[
                "id",
                "created_at",
                "updated_at",
                "customer",
                "amount",
                "channel",
                "placed_at",
            ],
        )
        await connection.execute("ANALYZE")


# -- checking and timing ----------------------------------------------------------------------


def _same(label: str, got: tuple[Any, ...], want: tuple[Any, ...], dialect: str) -> None:
    for name, value, expected in zip(
        ("revenue", "orders", "aov", "repurchase"), got, want, strict=True
    ):
        if not math.isclose(float(value), float(expected), rel_tol=1e-9, abs_tol=1e-6):
            raise SystemExit(f"{dialect}: {name} of {label}: {value} != {expected}")


def check(dialect: str, *results: tuple[dict[str, tuple[Any, ...]], dict[str, int]]) -> None:
    """Stop the benchmark when the three ways disagree."""
    reference = results[0]
    for other in results[1:]:
        if set(other[0]) != set(reference[0]):
            raise SystemExit(
                f"{dialect}: months differ: {sorted(other[0])} vs {sorted(reference[0])}"
            )
        for month, figures in reference[0].items():
            _same(month, other[0][month], figures, dialect)
        if other[1] != reference[1]:
            raise SystemExit(f"{dialect}: RFM segments differ: {other[1]} vs {reference[1]}")


async def best(site: Site, work: Any) -> float:
    """The fastest of a few runs, in seconds."""
    fastest = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        await work(site)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


async def measure(site: Site, customers: int, orders: int, report: Report) -> bool:
    """Load, check, time; record the two ratios of one dialect."""
    dialect = site.db.dialect
    started = time.perf_counter()
    await load(site, customers, orders)
    print(
        f"{dialect}: loaded {customers} customers, {orders} orders in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    check(dialect, await engine(site), await hand_written(site), await with_pandas(site))
    engine_s = await best(site, engine)
    sql_s = await best(site, hand_written)
    pandas_s = await best(site, with_pandas)
    print(
        f"{dialect}: engine {engine_s:.3f}s, hand-written SQL {sql_s:.3f}s, pandas {pandas_s:.3f}s",
        flush=True,
    )
    vs_sql = report.figure(f"{dialect}_kpi_engine_vs_sql", engine_s / sql_s, "x", "<=", 1.2)
    vs_pandas = report.figure(f"{dialect}_kpi_engine_vs_pandas", engine_s / pandas_s, "x", "<", 1.0)
    return vs_sql and vs_pandas


async def run_site(site: Site, customers: int, orders: int, report: Report) -> bool:
    """Open ``site``, measure it, close it."""
    async with site:
        return await measure(site, customers, orders, report)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    customers = scaled(200_000, args.scale, 100)
    orders = scaled(2_000_000, args.scale, 1000)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="jimu-bench-reports-") as folder:
        site = make_site(Path(folder) / "sqlite")
        ok = asyncio.run(run_site(site, customers, orders, report))
        with postgres_database() as url:
            site = make_site(Path(folder) / "postgres", database_url=url)
            ok = asyncio.run(run_site(site, customers, orders, report)) and ok
    report.print()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
