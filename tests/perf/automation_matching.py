"""Trigger matching: 100,000 record events against 200 active automations.

Run: ``python -m tests.perf.automation_matching --scale 0.1`` (1.0 = 100,000 events).

A store with 10,000 customers gets 100,000 record events in its outbox (half
``created``, half ``updated`` with field changes) and 200 enabled automations
on those events, each with a condition (city and score; about one event in
ten starts a run). The outbox is dispatched:

* embedded: one process on SQLite (:meth:`AutomationEngine.dispatch` in a loop);
* with 2 workers: two processes on PostgreSQL dispatching concurrently (each
  claims its batches with ``FOR UPDATE SKIP LOCKED``).

The baseline, measured in the same run, dispatches the same outbox with no
automations (claiming and marking events only).

Target: at least 2,000 events per second matched per worker.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from jimu.automation.engine import AutomationEngine
from jimu.automation.store import dump_json, time_param
from jimu.meta import EntityDef, FieldDef
from jimu.meta.automations import AutomationDef
from jimu.site import Site
from jimu_sdk.testing import make_site, postgres_database
from tests.perf._bench import Report, parse_args, scaled

CITIES = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Suzhou", "Xian"]
CUSTOMERS = 10_000
AUTOMATIONS = 200
WORKER_ENV = "JIMU_BENCH_DISPATCH_SITE"


def automations() -> list[AutomationDef]:
    found = []
    for i in range(AUTOMATIONS):
        kind = "created" if i % 2 == 0 else "updated"
        trigger: dict[str, object] = {"kind": kind, "entity": "customer"}
        if kind == "updated":
            trigger["changes"] = [{"field": "score" if i % 4 == 1 else "tier"}]
        data = {
            "name": f"bench_{i:03d}",
            "trigger": trigger,
            "condition": {
                "and": [
                    {"==": [{"var": "city"}, CITIES[i % len(CITIES)]]},
                    {"==": [{"var": "score"}, i % 100]},
                ]
            },
            "steps": [
                {"id": "tag", "kind": "action", "action": "add_tag", "params": {"tag": "hot"}}
            ],
        }
        found.append(msgspec.convert(data, AutomationDef))
    return found


async def prepare(site: Site, events: int, with_automations: bool) -> None:
    """The customers, the outbox of ``events`` events, and (maybe) the automations."""
    await site.create_entity(
        EntityDef(
            name="customer",
            fields=[
                FieldDef(name="city", type="text"),
                FieldDef(name="score", type="integer"),
                FieldDef(name="tier", type="text"),
                FieldDef(name="tags", type="tags"),
            ],
        )
    )
    rng = random.Random(5)
    rows = [
        {"city": rng.choice(CITIES), "score": rng.randint(0, 100), "tier": "a"}
        for _ in range(CUSTOMERS)
    ]
    ids = await site.records.create_many("customer", rows)
    db = site.db
    stamp = time_param(db, site_now())
    await db.execute("UPDATE jimu_event SET dispatched_at = {}", [stamp])
    if with_automations:
        engine = AutomationEngine(site)
        for definition in automations():
            await engine.save(definition)
    batch = []
    for n in range(events):
        record_id = ids[n % len(ids)]
        if n % 2 == 0:
            kind, payload = "created", {"id": record_id, **rows[n % len(ids)]}
        else:
            field = "score" if n % 4 == 1 else "tier"
            kind, payload = "updated", {"before": {field: "a"}, "after": {field: "b"}}
        batch.append(("customer", record_id, kind, dump_json(payload), stamp))
    for start in range(0, len(batch), 20_000):
        async with db.transaction():
            await db.execute_many(
                "INSERT INTO jimu_event (entity, record_id, kind, payload, occurred_at) "
                "VALUES ({}, {}, {}, {}, {})",
                batch[start : start + 20_000],
            )


def site_now() -> object:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


async def drain(site: Site) -> int:
    """Dispatch until the outbox is empty; return how many events this process handled."""
    engine = AutomationEngine(site)
    handled = 0
    while True:
        count = await engine.dispatch(1000)
        handled += count
        if count == 0:
            return handled


async def embedded(folder: Path, events: int, with_automations: bool) -> tuple[float, int]:
    site = make_site(folder)
    await site.open()
    try:
        await prepare(site, events, with_automations)
        start = time.perf_counter()
        handled = await drain(site)
        elapsed = time.perf_counter() - start
        runs = await site.db.fetch_one("SELECT COUNT(*) AS n FROM jimu_automation_run")
        assert handled == events
        return elapsed, int(runs["n"]) if runs else 0
    finally:
        await site.close()


async def _open_prepared(folder: Path, url: str, events: int) -> None:
    site = make_site(folder, database_url=url)
    await site.open()
    try:
        await prepare(site, events, True)
    finally:
        await site.close()


def two_workers(folder: Path, events: int) -> tuple[float, list[int]]:
    with postgres_database() as url:
        asyncio.run(_open_prepared(folder, url, events))
        env = {**os.environ, WORKER_ENV: str(folder)}
        start = time.perf_counter()
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.perf.automation_matching"],
                env=env,
                stdout=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        counts = []
        spans = []
        for worker in workers:
            out, _ = worker.communicate(timeout=600)
            handled, first, last = out.decode().strip().splitlines()[-1].split()
            counts.append(int(handled))
            spans.append((float(first), float(last)))
        assert sum(counts) == events, counts
        # from the first worker starting to dispatch to the last one finishing (start-up excluded)
        elapsed = max(last for _, last in spans) - min(first for first, _ in spans)
        del start
        return elapsed, counts


async def _worker(folder: Path) -> None:
    site = Site.load(folder)
    await site.open()
    try:
        first = time.time()
        handled = await drain(site)
        print(handled, first, time.time(), flush=True)
    finally:
        await site.close()


def main(argv: list[str] | None = None) -> None:
    if os.environ.get(WORKER_ENV):
        asyncio.run(_worker(Path(os.environ[WORKER_ENV])))
        return
    args = parse_args(__doc__ or "", argv)
    events = scaled(100_000, args.scale, minimum=2_000)
    with tempfile.TemporaryDirectory() as tmp:
        base, _ = asyncio.run(embedded(Path(tmp) / "base", events, False))
        alone, runs = asyncio.run(embedded(Path(tmp) / "embedded", events, True))
        pair, counts = two_workers(Path(tmp) / "pair", events)
    print(f"{events} events, {AUTOMATIONS} automations, {runs} runs started")
    print(f"baseline (no automations): {events / base:.0f} events/s")
    print(
        f"embedded: {events / alone:.0f} events/s; 2 workers: {events / pair:.0f} events/s {counts}"
    )
    report = Report()
    report.figure("matching_embedded_events_per_s", events / alone, "events/s", ">=", 2000)
    report.figure(
        "matching_2_workers_events_per_s_per_worker", events / pair / 2, "events/s", ">=", 2000
    )
    report.print()


if __name__ == "__main__":
    main()
