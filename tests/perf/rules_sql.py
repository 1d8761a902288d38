"""Filtering with rules in SQL vs loading the rows and evaluating in Python.

Run: ``python -m tests.perf.rules_sql --scale 0.1`` (1.0 = 1,000,000 rows).

A SQLite table of customers stored the way the store stores them (decimal as
NUMERIC, boolean 0/1, date and datetime as text, tags as JSON text) is filtered
by typical segment rules two ways: through ``compile_sql`` (one SELECT of the
matching ids), and by loading every row, converting it to the Python types the
API gives rules (Decimal, date, aware datetime, bool, parsed JSON) and calling
the compiled rule. Both must select the same ids (checked before timing).

Target: SQL at least 5x faster than Python evaluation. That is an honest floor
for SQLite on one core at these sizes (typically 10-30x here); the win grows
with indexes and PostgreSQL.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from piccolo.querystring import QueryString

from jimu.rules import SqlColumn, default_registry
from jimu.rules.sqlbase import format_sqlite_datetime
from tests.perf._bench import Report, best_of, parse_args, scaled

NOW = datetime(2024, 5, 15, 1, 30, tzinfo=UTC)
REGISTRY = default_registry(clock=lambda: NOW)
FIELDS = {
    "name": "text",
    "city": "text",
    "total_spent": "decimal",
    "orders": "integer",
    "active": "boolean",
    "birthday": "date",
    "last_order_at": "datetime",
    "tags": "json",
}
CITIES = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Suzhou", "Xian"]
TAGS = ["vip", "wechat", "new", "churn-risk", "b2b"]

RULES: list[tuple[str, Any]] = [
    (
        "big spenders in big cities",
        {"and": [{">=": [{"var": "total_spent"}, 1000]},
                 {"in": [{"var": "city"}, ["Shanghai", "Beijing"]]}]},
    ),
    (
        "ordered in the last 30 days",
        {">=": [{"var": "last_order_at"}, {"add_days": [{"today": []}, -30]}]},
    ),
    (
        "inactive vips",
        {"and": [{"has_tag": "vip"}, {"!": {"var": "active"}}]},
    ),
    (
        "30 this year, regulars",
        {"and": [{"==": [{"age_years": {"var": "birthday"}}, 30]}, {">": [{"var": "orders"}, 3]}]},
    ),
]  # fmt: skip


class Scope:
    """Resolves var paths to the columns of table ``customer``."""

    def resolve(self, path: str) -> SqlColumn | None:
        kind = FIELDS.get(path)
        return SqlColumn(f'"customer"."{path}"', kind) if kind else None


def build_database(count: int, seed: int = 11) -> sqlite3.Connection:
    """An in-memory SQLite database with ``count`` customers."""
    rng = random.Random(seed)
    db = sqlite3.connect(":memory:")
    db.execute(
        'CREATE TABLE "customer" ("id" INTEGER PRIMARY KEY, "name" TEXT, "city" TEXT, '
        '"total_spent" NUMERIC, "orders" INTEGER, "active" INTEGER, "birthday" TEXT, '
        '"last_order_at" TEXT, "tags" TEXT)'
    )
    db.execute('CREATE INDEX "customer_city" ON "customer" ("city")')
    start = datetime(2023, 1, 1, tzinfo=UTC)

    def row(i: int) -> tuple[Any, ...]:
        ordered = start + timedelta(seconds=rng.randrange(500 * 86400))
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(60 * 365))
        return (
            i,
            f"customer{i}",
            rng.choice(CITIES),
            f"{rng.randrange(2_000_000) / 100:.2f}",
            rng.randrange(40),
            int(rng.random() < 0.8),
            born.isoformat(),
            format_sqlite_datetime(ordered) if rng.random() < 0.9 else None,
            json.dumps(rng.sample(TAGS, rng.randrange(4))),
        )

    batch = 50_000
    for offset in range(0, count, batch):
        rows = [row(i) for i in range(offset, min(count, offset + batch))]
        db.executemany('INSERT INTO "customer" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', rows)
    db.commit()
    return db


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row as the API hands it to rules."""
    _, name, city, spent, orders, active, born, ordered, tags = row
    return {
        "name": name,
        "city": city,
        "total_spent": None if spent is None else Decimal(str(spent)),
        "orders": orders,
        "active": None if active is None else bool(active),
        "birthday": None if born is None else date.fromisoformat(born),
        "last_order_at": None if ordered is None else datetime.fromisoformat(ordered),
        "tags": None if tags is None else json.loads(tags),
    }


def python_filter(db: sqlite3.Connection, rule: Any) -> set[int]:
    """Load every row and evaluate the compiled rule."""
    matches = REGISTRY.compile(rule).matches
    return {row[0] for row in db.execute('SELECT * FROM "customer"') if matches(_record(row))}


def sql_filter(db: sqlite3.Connection, rule: Any) -> set[int]:
    """Select the matching ids with the compiled SQL condition."""
    fragment = REGISTRY.compile_sql(rule, Scope(), "sqlite")
    sql, params = QueryString(fragment.sql, *fragment.params).compile_string("sqlite")
    return {row[0] for row in db.execute(f'SELECT "id" FROM "customer" WHERE {sql}', params)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "rules_sql", argv)
    count = scaled(1_000_000, args.scale, minimum=1000)
    db = build_database(count)

    total_python = total_sql = 0.0
    print(f"{count} rows in SQLite")
    for name, rule in RULES:
        expected = python_filter(db, rule)
        assert sql_filter(db, rule) == expected, name
        run_python: Callable[[], object] = lambda rule=rule: python_filter(db, rule)  # noqa: E731
        run_sql: Callable[[], object] = lambda rule=rule: sql_filter(db, rule)  # noqa: E731
        python_time = best_of(2, run_python)
        sql_time = best_of(3, run_sql)
        total_python += python_time
        total_sql += sql_time
        print(
            f"  {name:30s} {len(expected):8d} rows  python {python_time:7.3f} s  "
            f"sql {sql_time:7.3f} s  ({python_time / sql_time:5.1f}x)"
        )
    report = Report()
    report.figure("rules_sql_vs_python_speedup", total_python / total_sql, "ratio", ">=", 5)
    report.print()


if __name__ == "__main__":
    main()
