"""What permission checks cost the record list: an admin against a restricted user.

Run from the repository root::

    python -m tests.perf.permissions [--scale S]

``--scale 1.0`` builds a ``customer`` entity with 100,000 rows (``0.1``:
10,000) on SQLite and on PostgreSQL (a fresh database on the server of
``JIMU_TEST_POSTGRES_URL``, default ``postgres@127.0.0.1:5432``, dropped
afterwards). Two principals list it through the same generated API, in one
process, over the app's ASGI interface (no network, so the figure is the
server's own cost):

* **admin** - a super-user's API token: no permission applies;
* **restricted** - a user whose role hides two fields (``phone``, ``email``)
  and whose row condition is the usual "mine or my regions"
  (``owner == $user.id or region in $user.regions``, about a third of the
  rows), through an API token of their own.

The request mix is what a list screen sends: the first page (50 rows, capped
count) in id order, then the next page by cursor, then the first page sorted
by ``name``. Before timing, the restricted pages are checked: no hidden
field, no row outside the condition. Rounds alternate the two principals
(and which goes first); the figure is the median of the per-round ratios
restricted / admin requests per second. Target: permission checks cost at
most 25% of throughput (ratio >= 0.75).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec

from jimu.http import create_app
from jimu.site import Site
from jimu_sdk import EntityDef, FieldDef, PluginInfo, RoleDef, hookimpl
from jimu_sdk.testing import make_site, postgres_database
from tests.perf._bench import Report, parse_args, scaled

ROWS = 100_000  # the size at --scale 1.0
PAGE = 50
CONCURRENCY = 8
ROUNDS = 6
REQUESTS = 300  # per principal per round
WARMUP = 60
TARGET = 0.75
REGIONS = ["east", "west", "north", "south", "central", "northeast"]

ROLE = {
    "name": "sales_rep",
    "grants": {
        "customer": {
            "actions": ["read"],
            "fields": {"phone": "none", "email": "none"},
            "rows": {
                "or": [
                    {"==": [{"var": "owner"}, {"var": "$user.id"}]},
                    {"in": [{"var": "region"}, {"var": "$user.regions"}]},
                ]
            },
        }
    },
}


def _plugin() -> ModuleType:
    module = ModuleType("bench_permissions")

    @hookimpl
    def jimu_entities() -> Sequence[EntityDef]:
        return [
            EntityDef(
                name="customer",
                fields=[
                    FieldDef(name="name", type="text", required=True, indexed=True),
                    FieldDef(name="phone", type="text"),
                    FieldDef(name="email", type="email"),
                    FieldDef(name="region", type="text", indexed=True),
                    FieldDef(name="owner", type="user", indexed=True),
                    FieldDef(name="level", type="integer"),
                    FieldDef(name="spent", type="decimal"),
                ],
            )
        ]

    module.PLUGIN = PluginInfo(name="bench_permissions", version="1.0.0")  # type: ignore[attr-defined]
    module.jimu_entities = jimu_entities  # type: ignore[attr-defined]
    return module


async def _seed(site: Site, rows: int) -> tuple[str, str, int]:
    """Users, the role and ``rows`` customers; return (admin token, rep token, rep id)."""
    admin = await site.auth.add_user("bench-admin", super_user=True)
    await site.auth.save_role(msgspec.convert(ROLE, RoleDef))
    rep = await site.auth.add_user(
        "rep", roles=["sales_rep"], attributes={"regions": ["east", "west"]}
    )
    others = [(await site.auth.add_user(f"rep{i}")).id for i in range(20)]
    owners = [rep.id, *others]
    rng = random.Random(7)
    batch: list[dict[str, Any]] = []
    for n in range(rows):
        batch.append(
            {
                "name": f"customer {rng.randrange(10**9):09d}",
                "phone": f"138{n:08d}",
                "email": f"c{n}@example.com",
                "region": rng.choice(REGIONS),
                "owner": rng.choice(owners),
                "level": rng.randrange(5),
                "spent": f"{rng.randrange(100000) / 100:.2f}",
            }
        )
        if len(batch) == 5000:
            await site.records.create_many("customer", batch)
            batch = []
    if batch:
        await site.records.create_many("customer", batch)
    admin_token, _ = await site.auth.create_token(admin.id, "bench")
    rep_token, _ = await site.auth.create_token(rep.id, "bench")
    return admin_token, rep_token, rep.id


def _paths(client: httpx.AsyncClient) -> Callable[[int], Awaitable[None]]:
    """One request of the mix per call (``n`` picks which)."""
    cursors: list[str] = []

    async def one(n: int) -> None:
        kind = n % 3
        if kind == 0:
            response = await client.get("/api/v1/records/customer", params={"limit": PAGE})
            cursor = response.json()["page"]["next_cursor"]
            if cursor and len(cursors) < 50:
                cursors.append(cursor)
        elif kind == 1 and cursors:
            response = await client.get(
                "/api/v1/records/customer",
                params={"limit": PAGE, "cursor": cursors[n % len(cursors)]},
            )
        else:
            response = await client.get(
                "/api/v1/records/customer", params={"limit": PAGE, "sort": "name"}
            )
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    return one


async def _rate(one: Callable[[int], Awaitable[None]], requests: int) -> float:
    """Requests per second for ``requests`` calls of ``one`` at a fixed concurrency."""
    counter = iter(range(requests))

    async def worker() -> None:
        for n in counter:
            await one(n)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return requests / (time.perf_counter() - start)


async def _check(rep: httpx.AsyncClient, rep_id: int) -> None:
    """The restricted pages hide the two fields and every row outside the condition."""
    for params in ({"limit": 200}, {"limit": 200, "sort": "name"}):
        page = (await rep.get("/api/v1/records/customer", params=params)).json()["data"]
        assert page, "the restricted user sees no rows"
        for record in page:
            assert "phone" not in record and "email" not in record, record
            assert record["region"] in {"east", "west"} or record["owner"] == rep_id, record


async def _measure(database_url: str | None, rows: int, folder: Path) -> float:
    site = make_site(
        folder,
        plugins=["bench_permissions"],
        extra_plugins={"bench_permissions": _plugin()},
        database_url=database_url,
    )
    async with site:
        started = time.perf_counter()
        admin_token, rep_token, rep_id = await _seed(site, rows)
        print(f"  seeded {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        # the app's own ASGI interface in this event loop, on the site opened above
        transport = httpx.ASGITransport(app=create_app(site))
        base = "http://bench"
        async with (
            httpx.AsyncClient(transport=transport, base_url=base) as admin,
            httpx.AsyncClient(transport=transport, base_url=base) as rep,
        ):
            admin.headers["Authorization"] = f"Bearer {admin_token}"
            rep.headers["Authorization"] = f"Bearer {rep_token}"
            return await _compare(admin, rep, rep_id)


async def _compare(admin: httpx.AsyncClient, rep: httpx.AsyncClient, rep_id: int) -> float:
    """Median ratio restricted / admin over alternating rounds (after checks and warm-up)."""
    await _check(rep, rep_id)
    sides = {"admin": _paths(admin), "restricted": _paths(rep)}
    for one in sides.values():
        await _rate(one, WARMUP)
    ratios = []
    for round_no in range(ROUNDS):
        order = ["admin", "restricted"] if round_no % 2 == 0 else ["restricted", "admin"]
        rates = {name: await _rate(sides[name], REQUESTS) for name in order}
        ratio = rates["restricted"] / rates["admin"]
        ratios.append(ratio)
        print(
            f"  round {round_no + 1}: admin {rates['admin']:.0f} req/s, "
            f"restricted {rates['restricted']:.0f} req/s, ratio {ratio:.3f}",
            flush=True,
        )
    return statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "", argv)
    logging.disable(logging.INFO)
    rows = scaled(ROWS, args.scale, minimum=1_000)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="jimu-bench-perm-") as tmp:
        print(f"SQLite, {rows:,} customers", flush=True)
        sqlite_ratio = asyncio.run(_measure(None, rows, Path(tmp) / "sqlite"))
        print(f"PostgreSQL, {rows:,} customers", flush=True)
        os.environ.setdefault(
            "JIMU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        with postgres_database() as url:
            pg_ratio = asyncio.run(_measure(url, rows, Path(tmp) / "postgres"))
    report.figure("permissions_list_ratio_sqlite", sqlite_ratio, "ratio", ">=", TARGET)
    report.figure("permissions_list_ratio_postgres", pg_ratio, "ratio", ">=", TARGET)
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
