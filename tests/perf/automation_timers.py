"""Durable timers: fire the 10,000 that are due among 1,000,000 pending.

Run: ``python -m tests.perf.automation_timers --scale 0.1`` (1.0 = 1,000,000 pending timers).

A site (SQLite, embedded mode) gets 10,000 runs waiting on timers that are due
now, and the pending timers of 1,000,000 (scaled) waits that are not due yet.
:meth:`AutomationEngine.fire_due` is called until nothing is due; every due
timer makes its run ready. The baseline, measured in the same run, fires the
same 10,000 with only them in the table: the ratio shows that the cost does
not grow with the pending ones (the due index is on ``due_at`` of unclaimed
timers).

Target: firing the 10,000 due timers takes under 10 s, at any number pending.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path

from jimu.automation.clock import ManualClock
from jimu.automation.engine import AutomationEngine
from jimu.automation.store import time_param
from jimu.meta import EntityDef, FieldDef
from jimu.site import Site
from jimu_sdk.testing import make_site
from tests.perf._bench import Report, parse_args, scaled

NOW = dt.datetime(2024, 6, 1, 2, 0, tzinfo=dt.UTC)
DUE = 10_000
JOURNEY = {
    "name": "bench_wait",
    "trigger": {"kind": "manual", "entity": "item"},
    "steps": [
        {"id": "wait", "kind": "wait", "duration": "1d"},
        {"id": "done", "kind": "stop"},
    ],
}


async def _fill(site: Site, engine: AutomationEngine, pending: int) -> None:
    import msgspec

    from jimu.meta.automations import AutomationDef

    await site.create_entity(EntityDef(name="item", fields=[FieldDef(name="n", type="integer")]))
    await engine.save(msgspec.convert(JOURNEY, AutomationDef))
    db = site.db
    stamp = time_param(db, NOW)
    async with db.transaction():
        await db.execute_many(
            "INSERT INTO jimu_automation_run (automation, version, status, step, waiting_on, "
            "trigger, context, started_at, updated_at) "
            "VALUES ('bench_wait', 1, 'waiting', 'wait', 'timer', '{}', '{}', {}, {})",
            [(stamp, stamp)] * DUE,
        )
    rows = await db.fetch("SELECT id FROM jimu_automation_run ORDER BY id")
    payload = '{"step": "wait", "to": "done", "outcome": "elapsed"}'
    due_rows = [
        (
            time_param(db, NOW - dt.timedelta(seconds=i % 3600)),
            row["id"],
            payload,
            f"run:{row['id']}",
        )
        for i, row in enumerate(rows)
    ]
    async with db.transaction():
        await db.execute_many(
            "INSERT INTO jimu_timer (due_at, kind, run_id, payload, dedupe_key) "
            "VALUES ({}, 'resume', {}, {}, {})",
            due_rows,
        )
    chunk = 50_000
    for start in range(0, pending, chunk):
        batch = [
            (time_param(db, NOW + dt.timedelta(minutes=1 + (i % 43_200))), payload, f"later:{i}")
            for i in range(start, min(pending, start + chunk))
        ]
        async with db.transaction():
            await db.execute_many(
                "INSERT INTO jimu_timer (due_at, kind, run_id, payload, dedupe_key) "
                "VALUES ({}, 'resume', NULL, {}, {})",
                batch,
            )


async def measure(folder: Path, pending: int) -> float:
    """Seconds to fire the due timers with ``pending`` more waiting."""
    site = make_site(folder)
    await site.open()
    try:
        engine = AutomationEngine(site, clock=ManualClock(NOW))
        await engine.start()
        await _fill(site, engine, pending)
        start = time.perf_counter()
        fired = 0
        while True:
            count = await engine.fire_due(1000)
            fired += count
            if count == 0:
                break
        elapsed = time.perf_counter() - start
        ready = await site.db.fetch_one(
            "SELECT COUNT(*) AS n FROM jimu_automation_run WHERE status = 'ready'"
        )
        left = await site.db.fetch_one("SELECT COUNT(*) AS n FROM jimu_timer")
        assert fired == DUE and ready and int(ready["n"]) == DUE, (fired, ready)
        assert left and int(left["n"]) == pending
        return elapsed
    finally:
        await site.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    pending = scaled(1_000_000, args.scale, minimum=10_000)
    with tempfile.TemporaryDirectory() as folder:
        baseline = asyncio.run(measure(Path(folder) / "few", 0))
        loaded = asyncio.run(measure(Path(folder) / "many", pending))
    print(f"fired {DUE} due timers: {baseline:.2f} s alone, {loaded:.2f} s among {pending} pending")
    report = Report()
    report.figure("timers_fire_10k_due_among_pending_s", loaded, "s", "<", 10)
    report.figure("timers_fire_slowdown_vs_no_pending", loaded / baseline, "x", "<", 3)
    report.print()


if __name__ == "__main__":
    main()
