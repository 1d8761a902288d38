"""A site's database: piccolo's engine, pooled connections and transactions.

SQLite (a file in the site folder) is the default; PostgreSQL is chosen by a
``postgresql://`` URL. Both go through one small interface so the rest of the
kernel never branches on the database more than the SQL itself needs:

* SQL text uses piccolo's placeholder convention, ``{}`` for each parameter
  (literal braces doubled), which :func:`render` turns into ``?`` or ``$n``.
* :meth:`Database.transaction` makes every query of the current task, and
  every piccolo query a plugin runs inside it, part of one transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import sqlite3
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

import aiosqlite
import asyncpg
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from jimu.errors import SiteError
from jimu.fields import Dialect

__all__ = ["Database", "Row", "newest_first", "render"]

Row = dict[str, Any]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{\}")
_RENDERED: dict[tuple[str, Dialect], str] = {}


#: What a function run by :meth:`Database.run_in_sqlite_thread` returns.
T = TypeVar("T")


def render(sql: str, dialect: Dialect) -> str:
    """Turn ``{}`` placeholders into the dialect's (``?`` or ``$1``, ``$2``...)."""
    key = (sql, dialect)
    cached = _RENDERED.get(key)
    if cached is not None:
        return cached
    counter = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal counter
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        counter += 1
        return "?" if dialect == "sqlite" else f"${counter}"

    rendered = _PLACEHOLDER.sub(replace, sql)
    if len(_RENDERED) > 4096:
        _RENDERED.clear()
    _RENDERED[key] = rendered
    return rendered


def newest_first(
    equal: Iterable[tuple[str, Any]], *, before_id: int | None, limit: int
) -> tuple[str, list[Any]]:
    """``WHERE ... ORDER BY id DESC LIMIT n`` and its parameters for reading a log table.

    ``equal`` pairs a column with a value; pairs whose value is ``None`` are
    left out. ``before_id`` pages on: only rows older than the last one seen.
    """
    where: list[str] = []
    params: list[Any] = []
    for column, value in equal:
        if value is not None:
            where.append(f"{column} = {{}}")
            params.append(value)
    if before_id is not None:
        where.append("id < {}")
        params.append(before_id)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"{clause} ORDER BY id DESC LIMIT {int(limit)}", params


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


class _JoinedTransaction:
    """Stands in piccolo's ``current_transaction`` so piccolo queries join ours."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection


def _rows_as_dicts(rows: Sequence[sqlite3.Row]) -> list[Row]:
    """sqlite3.Row tuples into dicts, built in the event loop's thread (cheap, C-level zip)."""
    if not rows:
        return []
    if isinstance(rows[0], dict):  # a piccolo query inside our transaction set its dict factory
        return list(rows)
    keys = rows[0].keys()
    return [dict(zip(keys, row, strict=True)) for row in rows]


class Database:
    """One site's database connection pool and the dialect it speaks."""

    def __init__(self, url: str, *, base_dir: Path | None = None, pool_size: int = 4) -> None:
        self.url = url
        parts = urlsplit(url)
        self.pool_size = pool_size
        self._current: contextvars.ContextVar[Any] = contextvars.ContextVar(
            f"jimu_tx_{id(self)}", default=None
        )
        self._sqlite_pool: asyncio.Queue[aiosqlite.Connection] | None = None
        self._sqlite_all: list[aiosqlite.Connection] = []
        self.engine: Engine[Any]
        if parts.scheme == "sqlite":
            if not url.startswith("sqlite:///"):
                raise SiteError(
                    f"database URL {url!r}: write sqlite:///relative/path.sqlite "
                    "or sqlite:////absolute/path.sqlite"
                )
            path = Path(unquote(url[len("sqlite:///") :]))
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            self.path: Path | None = path
            self.dialect: Dialect = "sqlite"
            # piccolo's own queries outside a kernel transaction use piccolo's connections,
            # with its type converters; the kernel's pool reads raw values (see open()).
            self.engine = SQLiteEngine(path=str(path), timeout=30)
        elif parts.scheme in {"postgresql", "postgres"}:
            self.path = None
            self.dialect = "postgres"
            self.engine = PostgresEngine(config={"dsn": url})
        else:
            raise SiteError(
                f"database URL {url!r} is not supported: use sqlite:///site.sqlite "
                "or postgresql://user@host:5432/dbname"
            )
        self._opened = False
        self._ensured: set[str] = set()

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        """Open the connection pool (in the event loop that will use it)."""
        if self._opened:
            return
        if self.dialect == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._sqlite_pool = asyncio.Queue()
            self._sqlite_all = []
            for _ in range(self.pool_size):
                # No detect_types: the field types convert values once, in EntityRuntime;
                # piccolo's per-value converters cost more than the rest of a read.
                connection = await aiosqlite.connect(
                    str(self.path), isolation_level=None, timeout=30
                )
                connection.row_factory = sqlite3.Row
                await connection.execute("PRAGMA foreign_keys = ON")
                await connection.execute("PRAGMA journal_mode = WAL")
                await connection.execute("PRAGMA synchronous = NORMAL")
                await connection.execute("PRAGMA busy_timeout = 30000")
                self._sqlite_all.append(connection)
                self._sqlite_pool.put_nowait(connection)
        else:
            try:
                engine: Any = self.engine
                with warnings.catch_warnings():
                    # piccolo warns when it cannot read the server version; the error below says why
                    warnings.simplefilter("ignore")
                    await engine.start_connection_pool(min_size=1, max_size=self.pool_size * 2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise SiteError(
                    f"cannot connect to PostgreSQL at {_safe_url(self.url)}: {exc}"
                ) from exc
        self._opened = True

    async def close(self) -> None:
        """Close every pooled connection."""
        if not self._opened:
            return
        if self.dialect == "sqlite":
            for connection in self._sqlite_all:
                await connection.close()
            self._sqlite_all = []
            self._sqlite_pool = None
        else:
            engine: Any = self.engine
            await engine.close_connection_pool()
        self._opened = False

    # -- connections -----------------------------------------------------

    @asynccontextmanager
    async def _sqlite_connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._sqlite_pool is None:
            raise RuntimeError("the database is not open; call `await database.open()` first")
        connection = await self._sqlite_pool.get()
        try:
            yield connection
        finally:
            self._sqlite_pool.put_nowait(connection)

    # -- queries ---------------------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query written with ``{}`` placeholders; return its rows as dicts."""
        return await self.fetch_rendered(render(sql, self.dialect), params)

    async def fetch_rendered(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Run a query already in the dialect's placeholders."""
        current = self._current.get()
        if self.dialect == "sqlite":
            if current is not None:
                rows: Any = await current.execute_fetchall(sql, params)
                return _rows_as_dicts(rows)
            pool = self._sqlite_pool
            if pool is None:
                raise RuntimeError("the database is not open; call `await database.open()` first")
            connection = pool.get_nowait() if not pool.empty() else await pool.get()
            try:
                rows = await connection.execute_fetchall(sql, params)
            finally:
                pool.put_nowait(connection)
            return _rows_as_dicts(rows)
        if current is not None:
            records = await current.fetch(sql, *params)
        else:
            pool = self.engine.pool  # type: ignore[attr-defined]
            if pool is None:
                raise RuntimeError("the database is not open; call `await database.open()` first")
            records = await pool.fetch(sql, *params)
        return [dict(record) for record in records]

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of a query, or ``None``."""
        rows = await self.fetch(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose rows (if any) are not needed."""
        await self.fetch(sql, params)

    async def run_in_sqlite_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` with the current transaction's SQLite connection, in its thread.

        For a write of several statements with Python work between them (a
        bulk insert): the event loop hands the whole of it over once and
        hears back once. Run a statement at a time instead, and the task
        wakes up between statements, each time after whatever else the loop
        runs meanwhile (an import parsing its next chunk), while SQLite's
        thread waits. ``work`` writes SQL in SQLite's ``?`` placeholders.

        ``work`` runs as one savepoint: if it raises, none of its statements
        stay, and the exception propagates. SQLite only, inside
        :meth:`transaction`.
        """
        current = self._current.get()
        if self.dialect != "sqlite" or current is None:
            raise RuntimeError("run_in_sqlite_thread: only on SQLite, inside a transaction")

        def atomic(connection: sqlite3.Connection) -> T:
            name = f"sp_{id(object())}"
            connection.execute(f"SAVEPOINT {name}")
            try:
                result = work(connection)
            except BaseException:
                connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
                connection.execute(f"RELEASE SAVEPOINT {name}")
                raise
            connection.execute(f"RELEASE SAVEPOINT {name}")
            return result

        # aiosqlite has no public call that runs a function in the connection's
        # thread; _execute is what its own methods use (the version is locked)
        return cast(T, await current._execute(atomic, current._conn))

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows (inside the current transaction)."""
        rendered = render(sql, self.dialect)
        batch = list(rows)
        if not batch:
            return
        current = self._current.get()
        if current is None:
            async with self.transaction():
                await self.execute_many(sql, batch)
            return
        await current.executemany(rendered, batch)

    async def copy_rows(
        self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Append ``rows`` (values in ``columns`` order) to ``table`` inside the current transaction.

        PostgreSQL only: its ``COPY ... FROM STDIN`` in binary form, which the
        server takes in at a fraction of the cost of an ``INSERT`` per row.
        Values are encoded as for a parameter of each column's type; triggers,
        defaults and constraints apply as for an ``INSERT``.
        """
        if self.dialect != "postgres":
            raise RuntimeError("copy_rows: COPY is PostgreSQL's; use execute_many on SQLite")
        current = self._current.get()
        if current is None:
            async with self.transaction():
                await self.copy_rows(table, columns, rows)
            return
        await current.copy_records_to_table(table, records=rows, columns=list(columns))

    async def analyze(self, table: str) -> None:
        """Refresh the query planner's statistics of ``table`` (after a bulk write).

        Without them SQLite's planner cannot tell a selective index from one
        that matches a third of the table (a row rule ``region in [..] or
        owner = me`` then sorts thousands of rows for a page of 50). SQLite
        samples at most 1,000 rows per index, so this takes milliseconds.
        """
        if self.dialect == "sqlite":
            await self.execute("PRAGMA analysis_limit = 1000")
        await self.execute(f"ANALYZE {self.quote(table)}")

    async def ensure_tables(self, owner: str, statements: Sequence[str]) -> None:
        """Run ``owner``'s ``CREATE ... IF NOT EXISTS`` statements, once per database object.

        Two processes creating the same tables race; the loser runs the
        statements once more and finds them there. Inside a transaction they
        run every time, since that transaction may still roll back.
        """
        if owner in self._ensured:
            return
        for attempt in (1, 2):
            try:
                async with self.transaction():
                    for statement in statements:
                        await self.execute(statement)
                break
            except Exception:
                if attempt == 2:
                    raise
        if not self.in_transaction:
            self._ensured.add(owner)

    @property
    def in_transaction(self) -> bool:
        """Whether the current task is inside :meth:`transaction`."""
        return self._current.get() is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Run the enclosed queries in one transaction (savepoint when nested).

        Commits when the block ends normally, rolls back when it raises.
        """
        current = self._current.get()
        if current is not None:
            name = f"sp_{id(object())}"
            await self._raw(current, f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                await self._raw(current, f"ROLLBACK TO SAVEPOINT {name}")
                await self._raw(current, f"RELEASE SAVEPOINT {name}")
                raise
            await self._raw(current, f"RELEASE SAVEPOINT {name}")
            return
        if self.dialect == "sqlite":
            async with self._sqlite_connection() as connection:
                await connection.execute("BEGIN IMMEDIATE")
                async with self._bind(connection):
                    try:
                        yield
                    except BaseException:
                        await connection.execute("ROLLBACK")
                        raise
                await connection.execute("COMMIT")
        else:
            pool = self.engine.pool  # type: ignore[attr-defined]
            async with (
                pool.acquire() as connection,
                connection.transaction(),
                self._bind(connection),
            ):
                yield

    @asynccontextmanager
    async def _bind(self, connection: Any) -> AsyncIterator[None]:
        token = self._current.set(connection)
        piccolo_token = self.engine.current_transaction.set(_JoinedTransaction(connection))
        try:
            yield
        finally:
            self.engine.current_transaction.reset(piccolo_token)
            self._current.reset(token)

    @staticmethod
    async def _raw(connection: Any, sql: str) -> None:
        await connection.execute(sql)

    # -- helpers -----------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """Quote an identifier (already validated as a safe name) for SQL."""
        return '"' + identifier.replace('"', '""') + '"'

    async def table_columns(self, table: str) -> dict[str, str]:
        """The live columns of ``table`` and their declared types (upper-case); empty if absent."""
        if self.dialect == "sqlite":
            rows = await self.fetch(f"PRAGMA table_info({self.quote(table)})")
            return {row["name"]: str(row["type"]).upper() for row in rows}
        rows = await self.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = {}",
            [table],
        )
        return {row["column_name"]: str(row["data_type"]).upper() for row in rows}

    async def table_names(self) -> set[str]:
        """Every table in the database (current schema on PostgreSQL)."""
        if self.dialect == "sqlite":
            rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {row["name"] for row in rows}
        rows = await self.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {row["table_name"] for row in rows}

    async def index_names(self, table: str) -> set[str]:
        """The names of the indexes on ``table``."""
        if self.dialect == "sqlite":
            rows = await self.fetch(f"PRAGMA index_list({self.quote(table)})")
            return {row["name"] for row in rows}
        rows = await self.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = {}",
            [table],
        )
        return {row["indexname"] for row in rows}
