"""A test entity stored the way the store stores it, in SQLite and in PostgreSQL.

``customer`` rows have one column per field type; ``customer.city`` is a link
field one hop away (a correlated subquery on ``city`` of table ``company``).
Python sees a row as the API gives it to rules: a dict with ``date``, aware
UTC ``datetime``, ``Decimal``, ``bool``, parsed JSON, and the linked record
as a nested dict under ``company``.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from piccolo.querystring import QueryString

from jimu.rules import SqlColumn, SqlFragment
from jimu.rules.sqlbase import format_sqlite_datetime

FIELDS: dict[str, str] = {
    "name": "text",
    "city": "text",
    "age": "integer",
    "points": "integer",
    "score": "decimal",
    "active": "boolean",
    "birthday": "date",
    "joined_at": "datetime",
    "tags": "json",
    "company_id": "link",
}
LINKED = {"company.city": "text"}

SQLITE_COLUMNS = {
    "text": "TEXT",
    "integer": "INTEGER",
    "decimal": "NUMERIC",
    "boolean": "INTEGER",
    "date": "TEXT",
    "datetime": "TEXT",
    "json": "TEXT",
    "link": "INTEGER",
}
PG_COLUMNS = {
    "text": "text",
    "integer": "bigint",
    "decimal": "numeric",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "json": "jsonb",
    "link": "bigint",
}
COMPANIES = {1: "Hangzhou", 2: None, 3: "Beijing"}
IN_CI = os.environ.get("CI", "").lower() == "true"


class CustomerScope:
    """Resolves var paths of the ``customer`` entity to SQL columns."""

    def resolve(self, path: str) -> SqlColumn | None:
        if path in FIELDS:
            return SqlColumn(f'"customer"."{path}"', FIELDS[path])
        if path == "company.city":
            return SqlColumn(
                '(SELECT "company"."city" FROM "company" '
                'WHERE "company"."id" = "customer"."company_id")',
                "text",
            )
        return None


def python_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the API hands it to the Python engine."""
    record = {name: row.get(name) for name in FIELDS}
    company_id = row.get("company_id")
    record["company"] = {"city": COMPANIES[company_id]} if company_id in COMPANIES else None
    return record


def _sqlite_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        return str(value)
    if kind == "boolean":
        return int(value)
    if kind == "date":
        return value.isoformat()
    if kind == "datetime":
        return format_sqlite_datetime(value)
    if kind == "json":
        return json.dumps(value)
    return value


def _pg_value(kind: str, value: Any) -> Any:
    if value is not None and kind == "json":
        return json.dumps(value)
    return value


class SqliteCustomers:
    """An in-memory SQLite database holding the test entity."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:")
        columns = ", ".join(f'"{n}" {SQLITE_COLUMNS[t]}' for n, t in FIELDS.items())
        self.db.execute(f'CREATE TABLE "customer" ("id" INTEGER PRIMARY KEY, {columns})')
        self.db.execute('CREATE TABLE "company" ("id" INTEGER PRIMARY KEY, "city" TEXT)')
        self.db.executemany('INSERT INTO "company" VALUES (?, ?)', COMPANIES.items())

    def replace_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.db.execute('DELETE FROM "customer"')
        names = ["id", *FIELDS]
        self.db.executemany(
            f'INSERT INTO "customer" VALUES ({", ".join("?" for _ in names)})',
            [
                [row["id"], *(_sqlite_value(t, row.get(n)) for n, t in FIELDS.items())]
                for row in rows
            ],
        )

    def matching_ids(self, fragment: SqlFragment) -> set[int]:
        sql, params = QueryString(fragment.sql, *fragment.params).compile_string("sqlite")
        query = f'SELECT "id" FROM "customer" WHERE {sql}'
        return {row[0] for row in self.db.execute(query, params)}


@dataclass
class PgCustomers:
    """A throw-away PostgreSQL database holding the test entity."""

    loop: asyncio.AbstractEventLoop
    connection: Any

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def replace_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        names = ["id", *FIELDS]
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        values = [
            [row["id"], *(_pg_value(t, row.get(n)) for n, t in FIELDS.items())] for row in rows
        ]

        async def replace() -> None:
            async with self.connection.transaction():
                await self.connection.execute('DELETE FROM "customer"')
                await self.connection.executemany(
                    f'INSERT INTO "customer" VALUES ({placeholders})', values
                )

        self.run(replace())

    def matching_ids(self, fragment: SqlFragment) -> set[int]:
        sql, params = QueryString(fragment.sql, *fragment.params).compile_string("postgres")
        query = f'SELECT "id" FROM "customer" WHERE {sql}'
        rows = self.run(self.connection.fetch(query, *params))
        return {row["id"] for row in rows}


async def _connect(database: str) -> Any:
    import asyncpg

    last: Exception | None = None
    for user in ("postgres", "root"):
        try:
            return await asyncpg.connect(
                host="127.0.0.1", port=5432, user=user, database=database, timeout=5
            )
        except Exception as exc:
            last = exc
    assert last is not None
    raise last


def pg_customers() -> Iterator[PgCustomers]:
    """Create a uniquely named database with the test entity; drop it afterwards."""
    loop = asyncio.new_event_loop()
    name = f"jimu_rules_{secrets.token_hex(6)}"
    try:
        admin = loop.run_until_complete(_connect("postgres"))
    except Exception as exc:
        loop.close()
        message = f"PostgreSQL is not reachable at 127.0.0.1:5432 ({exc!r})"
        if IN_CI:
            pytest.fail(message + "; CI=true requires it")
        pytest.skip(message)
    connection = None
    try:
        loop.run_until_complete(admin.execute(f'CREATE DATABASE "{name}"'))
        connection = loop.run_until_complete(_connect(name))
        columns = ", ".join(f'"{n}" {PG_COLUMNS[t]}' for n, t in FIELDS.items())
        loop.run_until_complete(
            connection.execute(
                f'CREATE TABLE "customer" ("id" bigint PRIMARY KEY, {columns});'
                'CREATE TABLE "company" ("id" bigint PRIMARY KEY, "city" text);'
            )
        )
        loop.run_until_complete(
            connection.executemany('INSERT INTO "company" VALUES ($1, $2)', COMPANIES.items())
        )
        yield PgCustomers(loop, connection)
    finally:
        if connection is not None:
            loop.run_until_complete(connection.close())
        loop.run_until_complete(admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        loop.run_until_complete(admin.close())
        loop.close()
