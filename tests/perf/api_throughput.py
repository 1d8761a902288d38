"""Throughput of the generated record API against a hand-written Litestar endpoint.

Run from the repository root::

    python -m tests.perf.api_throughput [--scale S]

``--scale 1.0`` builds a ``customer`` entity with 100,000 rows (``0.1``: 10,000).
Two servers run side by side on 127.0.0.1, each one ``python -m uvicorn``
process on the same SQLite file, with the same server settings:

* **generated** - ``jimu.http.create_app(site)``, the kernel's generated API:
  ``GET /api/v1/records/customer[?sort=..&cursor=..]`` and
  ``GET /api/v1/records/customer/{id}``.
* **hand-written** - what a developer would write by hand with Litestar for
  the same two endpoints (:func:`handwritten_app`): one aiosqlite connection
  opened at startup, the same SQL (same columns, ``ORDER BY``, ``LIMIT n+1``
  and, for the list, the same capped ``COUNT`` the default list request
  runs), rows turned into the same JSON (ISO dates, exact decimals, booleans)
  by a plain function and returned as a dict for Litestar to serialize.

The list figure uses the request the UI makes (``count=capped``, 50 rows) over
a mix of pages: first page in id order, the next page by cursor, first page
sorted by an indexed column (``city``) and its next page. The get figure asks
for records by random id. Before timing, both sides must return the same
records for every request, and the SQL each side runs per request is captured
in-process and compared (same number of statements, same query plans).

Load comes from this process over raw keep-alive HTTP/1.1 connections at a
fixed concurrency (the same client for both sides). Rounds alternate between
the two servers (and which goes first) so the noise of a shared machine hits
both; each figure is the median of the per-round ratios generated /
hand-written. Every loop is bounded in count and time; the servers are
stopped (by their PID) when the benchmark ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec
import tomli_w
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ValidationException

from tests.perf._bench import Report, parse_args, scaled

ROOT = Path(__file__).resolve().parents[2]
SITE_ENV = "JIMU_BENCH_API_SITE"
ENTITY = "customer"
ROWS = 100_000  # the size at --scale 1.0
PAGE = 50  # the list's default limit
COUNT_CAP = 10_000  # the generated list's capped count (jimu.store.records.COUNT_CAP)
CONCURRENCY = 8
ROUNDS = 8  # short rounds, so each generated/hand-written pair is measured close together
LIST_REQUESTS = 500  # per side per round
GET_REQUESTS = 1000
PHASE_SECONDS = 5.0  # a phase stops at this time even when its requests are not all sent
WARMUP_REQUESTS = 200
TARGET = 0.7

ENTITY_DEF: dict[str, Any] = {
    "name": ENTITY,
    "fields": [
        {"name": "name", "type": "text", "required": True},
        {"name": "email", "type": "email"},
        {"name": "phone", "type": "text"},
        {"name": "city", "type": "text", "indexed": True},
        {
            "name": "level",
            "type": "select",
            "options": {"choices": ["bronze", "silver", "gold", "vip"]},
        },
        {"name": "age", "type": "integer"},
        {"name": "spent", "type": "decimal"},
        {"name": "vip", "type": "boolean"},
        {"name": "born", "type": "date"},
    ],
}
FIELDS = [f["name"] for f in ENTITY_DEF["fields"]]
COLUMNS = ["id", "created_at", "updated_at", *FIELDS]
CITIES = [
    "Shanghai",
    "Beijing",
    "Shenzhen",
    "Guangzhou",
    "Hangzhou",
    "Chengdu",
    "Wuhan",
    "Nanjing",
    "Xi'an",
    "Suzhou",
    "Tianjin",
    "Chongqing",
]


# -- the hand-written baseline --------------------------------------------------
#
# Written the way a developer would write these two endpoints without Jimu:
# typed query parameters, one aiosqlite connection, explicit SQL, a small
# function turning a row into the JSON record, a dict returned to Litestar.

_SELECT = "SELECT id, created_at, updated_at, name, email, phone, city, level, age, spent, vip, born FROM customer"
_COUNT = "SELECT COUNT(*) AS n FROM (SELECT 1 FROM customer LIMIT 10001) AS capped"
_CENTS = Decimal("0.01")


def _customer(row: sqlite3.Row) -> dict[str, Any]:
    spent, vip, born = row["spent"], row["vip"], row["born"]
    return {
        "id": row["id"],
        "created_at": dt.datetime.fromisoformat(row["created_at"]),
        "updated_at": dt.datetime.fromisoformat(row["updated_at"]),
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "city": row["city"],
        "level": row["level"],
        "age": row["age"],
        "spent": None if spent is None else Decimal(str(spent)).quantize(_CENTS),
        "vip": None if vip is None else bool(vip),
        "born": None if born is None else dt.date.fromisoformat(born),
    }


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


@get("/customers")
async def list_customers(
    state: State, limit: int = PAGE, sort: str = "id", cursor: str | None = None
) -> dict[str, Any]:
    """A page of customers in id or city order, keyset-paginated, with a capped total."""
    if not 1 <= limit <= 1000:
        raise ValidationException("limit must be from 1 to 1000")
    db: aiosqlite.Connection = state.db
    params: list[Any]
    rows: list[Any]
    if sort == "id":
        where, params = (" WHERE id > ?", [int(cursor)]) if cursor else ("", [])
        rows = list(
            await db.execute_fetchall(
                f"{_SELECT}{where} ORDER BY id ASC LIMIT ?", [*params, limit + 1]
            )
        )
    elif sort == "city":
        # the non-NULL cities by an index range, then the NULL tail only if the page reaches it
        city, after = _decode_cursor(cursor) if cursor else (None, None)
        rows = []
        if cursor is None or city is not None:
            where, params = " WHERE city IS NOT NULL", []
            if cursor is not None:
                where += " AND city >= ? AND (city > ? OR id > ?)"
                params = [city, city, after]
            rows = list(
                await db.execute_fetchall(
                    f"{_SELECT}{where} ORDER BY city ASC, id ASC LIMIT ?", [*params, limit + 1]
                )
            )
        if len(rows) < limit + 1:
            where, params = " WHERE city IS NULL", []
            if cursor is not None and city is None:
                where, params = " WHERE city IS NULL AND id > ?", [after]
            rows.extend(
                await db.execute_fetchall(
                    f"{_SELECT}{where} ORDER BY id ASC LIMIT ?", [*params, limit + 1 - len(rows)]
                )
            )
    else:
        raise ValidationException("sort must be id or city")
    total = (await db.execute_fetchall(_COUNT))[0][0]  # type: ignore[index]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = (
            str(last["id"]) if sort == "id" else _encode_cursor([last["city"], last["id"]])
        )
    return {
        "data": [_customer(row) for row in rows],
        "page": {
            "limit": limit,
            "next_cursor": next_cursor,
            "total": min(total, COUNT_CAP),
            "total_exact": total <= COUNT_CAP,
        },
    }


@get("/customers/{customer_id:int}")
async def get_customer(state: State, customer_id: int) -> dict[str, Any]:
    """One customer by id."""
    rows = await state.db.execute_fetchall(f"{_SELECT} WHERE id = ?", [customer_id])
    if not rows:
        raise NotFoundException(f"no customer with id {customer_id}")
    return _customer(next(iter(rows)))


def handwritten_app(db_path: Path | None = None) -> Litestar:
    """The hand-written app over the site's SQLite file (``$JIMU_BENCH_API_SITE``)."""
    path = db_path or Path(os.environ[SITE_ENV]) / "site.sqlite"

    async def connect(app: Litestar) -> None:
        app.state.db = await aiosqlite.connect(path)
        app.state.db.row_factory = sqlite3.Row

    async def disconnect(app: Litestar) -> None:
        await app.state.db.close()

    return Litestar(
        route_handlers=[list_customers, get_customer],
        on_startup=[connect],
        on_shutdown=[disconnect],
        openapi_config=None,
    )


def generated_app() -> Litestar:
    """The kernel's app of the benchmark site (``$JIMU_BENCH_API_SITE``)."""
    from jimu.http import create_app

    return create_app(Path(os.environ[SITE_ENV]))


# -- the site ---------------------------------------------------------------------


def _rows(count: int, seed: int = 20240601) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    for i in range(count):
        moment = start + dt.timedelta(seconds=i * 97, microseconds=rng.randrange(1_000_000))
        stamp = moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20_000))
        yield (
            stamp,
            stamp,
            f"Customer {i:06d}",
            f"customer{i}@example.com" if rng.random() > 0.1 else None,
            f"138{rng.randrange(10**8):08d}",
            rng.choice(CITIES) if rng.random() > 0.05 else None,
            rng.choice(["bronze", "silver", "gold", "vip"]),
            rng.randrange(18, 90) if rng.random() > 0.05 else None,
            f"{rng.randrange(0, 10**7) / 100:.2f}" if rng.random() > 0.05 else None,
            rng.randrange(2),
            born.isoformat() if rng.random() > 0.05 else None,
        )


def build_site(folder: Path, rows: int) -> Path:
    """Create the site, the ``customer`` entity through the kernel, and its rows."""
    from jimu.meta import EntityDef
    from jimu.site import Site, create_site

    config = create_site(folder, name="bench-api")
    # the hand-written side counts on every request, so the generated side does too
    (folder / "site.toml").write_text(
        tomli_w.dumps(msgspec.structs.replace(config, count_reuse_seconds=0.0).to_toml()),
        encoding="utf-8",
    )

    async def create_entity() -> str:
        async with Site.load(folder) as site:
            await site.create_entity(msgspec.convert(ENTITY_DEF, EntityDef))
            admin = await site.auth.add_user("bench", super_user=True)
            secret, _ = await site.auth.create_token(admin.id, "bench")
            return secret

    # every request carries the token (the hand-written server ignores it): the
    # generated side pays for authenticating each request, as it does in production
    _AUTH[0] = f"Authorization: Bearer {asyncio.run(create_entity())}\r\n"
    db_path = folder / "site.sqlite"
    marks = ", ".join("?" for _ in COLUMNS[1:])
    with contextlib.closing(sqlite3.connect(db_path)) as connection:
        with connection:
            connection.executemany(
                f"INSERT INTO customer ({', '.join(COLUMNS[1:])}) VALUES ({marks})", _rows(rows)
            )
        connection.execute("ANALYZE")
        connection.commit()
    return db_path


# -- the requests -----------------------------------------------------------------


@dataclass
class Pair:
    """One request to both sides: the generated API's path and the hand-written one's."""

    what: str
    generated: str
    handwritten: str


def _api(path: str = "") -> str:
    return f"/api/v1/records/{ENTITY}{path}"


async def _discover_pages(gen: Any, base: Any) -> list[Pair]:
    """The list pages timed: first pages and the next page (by each side's own cursor)."""
    pairs = []
    for sort in ("id", "city"):
        g_first = _api() if sort == "id" else _api(f"?sort={sort}")
        b_first = "/customers" if sort == "id" else f"/customers?sort={sort}"
        pairs.append(Pair(f"list sort={sort} page 1", g_first, b_first))
        g_cursor = (await gen(g_first))["page"]["next_cursor"]
        b_cursor = (await base(b_first))["page"]["next_cursor"]
        assert g_cursor and b_cursor, "the first page has no next page; the table is too small"
        joiner = "&" if "?" in g_first else "?"
        pairs.append(
            Pair(
                f"list sort={sort} page 2",
                f"{g_first}{joiner}cursor={g_cursor}",
                f"{b_first}{joiner}cursor={b_cursor}",
            )
        )
    return pairs


def _get_pairs(ids: list[int]) -> list[Pair]:
    return [Pair(f"get {i}", _api(f"/{i}"), f"/customers/{i}") for i in ids]


def _same_records(what: str, generated: Any, handwritten: Any) -> None:
    if "data" in generated:
        generated = {"data": generated["data"], "page": dict(generated["page"], next_cursor=None)}
        handwritten = {
            "data": handwritten["data"],
            "page": dict(handwritten["page"], next_cursor=None),
        }
    if generated != handwritten:
        raise AssertionError(
            f"{what}: the generated API and the hand-written endpoint disagree:\n"
            f"  generated:    {json.dumps(generated)[:600]}\n  hand-written: {json.dumps(handwritten)[:600]}"
        )


async def check_in_process(folder: Path, db_path: Path, get_ids: list[int]) -> list[Pair]:
    """Check both apps in-process: same records, same SQL plans. Return the list pages."""
    from litestar.testing import AsyncTestClient

    from jimu.http import create_app
    from jimu.site import Site

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the test client logs every request
    site = Site.load(folder)
    gen_sql: list[tuple[str, list[Any]]] = []
    base_sql: list[tuple[str, list[Any]]] = []
    gen_app = create_app(site)
    base_app = handwritten_app(db_path)
    async with AsyncTestClient(gen_app) as gen_client, AsyncTestClient(base_app) as base_client:
        # Record the statements each side runs, without touching either app's code.
        gen_fetch = site.db.fetch_rendered
        base_conn = base_app.state.db
        base_fetch = base_conn.execute_fetchall

        async def spy_gen(sql: str, params: Any) -> Any:
            if '"customer"' in sql or " customer" in sql:  # not the token's and version's lookups
                gen_sql.append((sql, list(params)))
            return await gen_fetch(sql, params)

        async def spy_base(sql: str, params: Any = ()) -> Any:
            base_sql.append((sql, list(params)))
            return await base_fetch(sql, params)

        site.db.fetch_rendered = spy_gen  # type: ignore[method-assign]
        base_conn.execute_fetchall = spy_base

        async def gen(path: str) -> Any:
            response = await gen_client.get(
                path, headers={"Authorization": _AUTH[0].split(": ", 1)[1].strip()}
            )
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return response.json()

        async def base(path: str) -> Any:
            response = await base_client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return response.json()

        pages = await _discover_pages(gen, base)
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as plans:
            for pair in [*pages, *_get_pairs(get_ids)]:
                gen_sql.clear()
                base_sql.clear()
                _same_records(pair.what, await gen(pair.generated), await base(pair.handwritten))
                if len(gen_sql) != len(base_sql):
                    raise AssertionError(
                        f"{pair.what}: generated runs {len(gen_sql)} statements, hand-written {len(base_sql)}"
                    )
                for (g_sql, g_params), (b_sql, b_params) in zip(gen_sql, base_sql, strict=True):
                    g_plan = [r[3] for r in plans.execute("EXPLAIN QUERY PLAN " + g_sql, g_params)]
                    b_plan = [r[3] for r in plans.execute("EXPLAIN QUERY PLAN " + b_sql, b_params)]
                    if g_plan != b_plan:
                        raise AssertionError(
                            f"{pair.what}: different query plans\n  generated:    {g_sql} {g_plan}\n"
                            f"  hand-written: {b_sql} {b_plan}"
                        )
        missing = max(get_ids) + 10**7
        g_missing = await gen_client.get(
            _api(f"/{missing}"), headers={"Authorization": _AUTH[0].split(": ", 1)[1].strip()}
        )
        b_missing = await base_client.get(f"/customers/{missing}")
        assert g_missing.status_code == b_missing.status_code == 404, (g_missing, b_missing)
    return pages


# -- a small HTTP/1.1 client ---------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 (GET only, Content-Length bodies)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to ``127.0.0.1:port``."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def get(self, request: bytes) -> tuple[int, bytes]:
        """Send one prepared request; return the status and the body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at < 0:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        end = lowered.find(b"\r\n", at + 17)
        body = await self.reader.readexactly(int(lowered[at + 17 : end]))
        return status, body

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


_AUTH = [""]  # the Authorization header line every request sends (set by build_site)


def _request(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n{_AUTH[0]}\r\n"
    ).encode()


async def fetch_json(port: int, path: str) -> tuple[int, Any]:
    """One GET on a fresh connection (bounded by a timeout)."""
    connection = await asyncio.wait_for(Connection.open(port), 5)
    try:
        status, body = await asyncio.wait_for(connection.get(_request(path)), 15)
    finally:
        await connection.close()
    return status, json.loads(body) if body else None


CLIENT_CPU: list[float] = []  # share of one core the load generator used, per phase


async def load(port: int, requests: list[bytes], total: int, seconds: float) -> float:
    """Send ``total`` requests (cycling through ``requests``) at fixed concurrency; return req/s.

    Stops early after ``seconds``; every response must be 200.
    """
    connections = [await asyncio.wait_for(Connection.open(port), 5) for _ in range(CONCURRENCY)]
    sent = 0
    done = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    deadline = start + seconds

    async def worker(connection: Connection) -> None:
        nonlocal sent, done
        while sent < total and time.perf_counter() < deadline:
            request = requests[sent % len(requests)]
            sent += 1
            status, body = await connection.get(request)
            if status != 200:
                raise RuntimeError(f"HTTP {status} for {request[:80]!r}: {body[:300]!r}")
            done += 1

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in connections)), seconds + 30)
        elapsed = time.perf_counter() - start
        CLIENT_CPU.append((time.process_time() - cpu_start) / elapsed)
    finally:
        for connection in connections:
            await connection.close()
    return done / elapsed


# -- the servers ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One uvicorn process serving a factory of this module; stopped by its PID."""

    def __init__(
        self, name: str, factory: str, folder: Path, ready_path: str, log_dir: Path
    ) -> None:
        self.name = name
        self.factory = factory
        self.folder = folder
        self.ready_path = ready_path
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        """Start uvicorn and wait (at most 60 s) until it answers ``ready_path``."""
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            command = [
                sys.executable, "-m", "uvicorn", "--factory", f"tests.perf.api_throughput:{self.factory}",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "warning", "--no-access-log", "--lifespan", "on",
            ]  # fmt: skip
            env = dict(os.environ, **{SITE_ENV: str(self.folder)})
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            if self._wait_ready(60.0):
                return
            self.stop()
        raise RuntimeError(f"the {self.name} server did not start; its log:\n{self.log()}")

    def _wait_ready(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                status, _ = asyncio.run(fetch_json(self.port, self.ready_path))
                if status == 200:
                    return True
            time.sleep(0.2)
        return False

    def log(self) -> str:
        """The server's output so far (tail)."""
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process this object started (SIGTERM, then SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# -- the benchmark ------------------------------------------------------------------------


@dataclass
class Figure:
    """The per-round throughput of both sides for one kind of request."""

    name: str
    total: int
    generated: list[float]
    handwritten: list[float]

    def ratios(self) -> list[float]:
        """Generated / hand-written, per round (both measured back to back)."""
        return [g / h for g, h in zip(self.generated, self.handwritten, strict=True)]


async def check_over_http(gen: Server, base: Server, pairs: list[Pair]) -> None:
    """The running servers answer the timed requests with the same records."""
    for pair in pairs:
        g_status, g_body = await fetch_json(gen.port, pair.generated)
        b_status, b_body = await fetch_json(base.port, pair.handwritten)
        assert g_status == b_status == 200, (pair, g_status, b_status)
        _same_records(pair.what, g_body, b_body)


async def measure(
    gen: Server, base: Server, list_pairs: list[Pair], get_pairs: list[Pair], rounds: int
) -> list[Figure]:
    """Alternate short rounds of both sides; return the per-round req/s."""
    figures = [
        (Figure("list", LIST_REQUESTS, [], []), list_pairs),
        (Figure("get", GET_REQUESTS, [], []), get_pairs),
    ]
    servers = {"generated": gen, "handwritten": base}
    for _figure, pairs in figures:  # warm both servers up (caches, first-request costs)
        for side, server in servers.items():
            requests = [_request(getattr(p, side)) for p in pairs]
            await load(server.port, requests, WARMUP_REQUESTS, PHASE_SECONDS)
    for round_number in range(rounds):
        order = (
            ["generated", "handwritten"] if round_number % 2 == 0 else ["handwritten", "generated"]
        )
        for figure, pairs in figures:
            for side in order:
                requests = [_request(getattr(p, side)) for p in pairs]
                rate = await load(servers[side].port, requests, figure.total, PHASE_SECONDS)
                getattr(figure, side).append(rate)
        print(
            f"round {round_number + 1}/{rounds}: "
            + "  ".join(
                f"{f.name} {f.generated[-1]:.0f} vs {f.handwritten[-1]:.0f} req/s"
                for f, _ in figures
            ),
            flush=True,
        )
    return [figure for figure, _ in figures]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "", argv)
    rows = scaled(ROWS, args.scale, minimum=1_000)
    rounds = ROUNDS if args.scale >= 0.5 else ROUNDS // 2
    report = Report()
    rng = random.Random(7)
    get_ids = [rng.randrange(1, rows + 1) for _ in range(500)]
    with tempfile.TemporaryDirectory(prefix="jimu-bench-api-") as tmp:
        folder = Path(tmp) / "site"
        started = time.perf_counter()
        db_path = build_site(folder, rows)
        print(
            f"site with {rows} {ENTITY} rows built in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        list_pairs = asyncio.run(check_in_process(folder, db_path, get_ids[:25]))
        print(
            "in-process check: same records and same query plans for "
            + ", ".join(p.what for p in list_pairs)
            + " and 25 gets",
            flush=True,
        )
        gen = Server("generated", "generated_app", folder, "/healthz", Path(tmp))
        base = Server("handwritten", "handwritten_app", folder, "/customers/1", Path(tmp))
        try:
            gen.start()
            base.start()
            get_pairs = _get_pairs(get_ids)
            asyncio.run(check_over_http(gen, base, list_pairs + get_pairs[:10]))
            print(
                f"servers up (generated :{gen.port}, hand-written :{base.port}); "
                f"{rounds} alternating rounds, concurrency {CONCURRENCY}, "
                f"{LIST_REQUESTS} list / {GET_REQUESTS} get requests per side per round",
                flush=True,
            )
            CLIENT_CPU.clear()
            figures = asyncio.run(measure(gen, base, list_pairs, get_pairs, rounds))
            print(
                f"load generator used at most {max(CLIENT_CPU) * 100:.0f}% of one core "
                "(the servers' CPU is the limit, not the client)",
                flush=True,
            )
        except BaseException:
            for server in (gen, base):
                if server.process is not None and server.process.poll() is not None:
                    print(f"--- {server.name} server log ---\n{server.log()}", file=sys.stderr)
            raise
        finally:
            gen.stop()
            base.stop()
    for figure in figures:
        ratio = statistics.median(figure.ratios())
        print(
            f"{figure.name}: generated {statistics.median(figure.generated):.0f} req/s "
            f"(best {max(figure.generated):.0f}), hand-written {statistics.median(figure.handwritten):.0f} "
            f"req/s (best {max(figure.handwritten):.0f}); per-round ratios "
            + ", ".join(f"{r:.2f}" for r in figure.ratios()),
            flush=True,
        )
        report.figure(f"api_{figure.name}_vs_handwritten", ratio, "ratio", ">=", TARGET)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
