"""Faults: a worker killed with SIGKILL in the middle of journeys, tasks delivered twice.

Two `jimu worker` processes on PostgreSQL and Redis. Every run's advance task
is sent twice (a redelivery), one worker is killed while messages are going
out, and the journeys still finish: every write applied once, every message
recorded once, and no idempotency key repeated — except that the one request
in flight when the worker died may reach the gateway again under the same
Idempotency-Key (the receiver's cue to drop it).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from jimu.automation.celery_app import make_celery
from jimu.automation.engine import AutomationEngine
from jimu.site import Site
from jimu_sdk.testing import postgres_database
from tests.automation.celery_modes import Workers, set_broker, worker_processes
from tests.automation.gateway import Gateway, gateway
from tests.automation.helpers import automation, new_store, open_engine, run
from tests.automation.journeys import Driver

ORDERS = 30

JOURNEY = {
    "name": "order_follow_up",
    "trigger": {"kind": "created", "entity": "shop_order"},
    "steps": [
        {
            "id": "task",
            "kind": "action",
            "action": "create_task",
            "params": {"title": "Check order {{ shop_order.id }}", "due_in": "1d"},
        },
        {
            "id": "first",
            "kind": "action",
            "action": "send_message",
            "params": {
                "channel": "sms",
                "to": "{{ record.customer }}",
                "body": "one {{ record.id }}",
            },
        },
        {"id": "hour", "kind": "wait", "duration": "1h"},
        {
            "id": "second",
            "kind": "action",
            "action": "send_message",
            "params": {
                "channel": "sms",
                "to": "{{ record.customer }}",
                "body": "two {{ record.id }}",
            },
        },
        {
            "id": "tag",
            "kind": "action",
            "action": "set_fields",
            "params": {"fields": {"total": "1"}},
        },
    ],
}


@pytest.fixture
def sms() -> Iterator[Gateway]:
    with gateway() as receiver:
        yield receiver


@pytest.fixture
def workers(tmp_path: Path, sms: Gateway) -> Iterator[Workers]:
    with postgres_database() as url:
        site = new_store(
            tmp_path / "shop",
            url,
            settings={"channels": {"sms": {"type": "http", "url": sms.url + "/sms"}}},
        )
        set_broker(site, "redis://127.0.0.1:6379/0")

        async def prepare() -> None:
            await open_engine(site)
            await site.close()

        run(prepare())
        with worker_processes(site.folder, site.config.broker_url, count=2) as started:
            yield started


def test_killed_worker_and_duplicate_tasks_apply_everything_once(
    workers: Workers, sms: Gateway
) -> None:
    producer = make_celery(workers.folder, workers.broker_url)
    sms.delay = 0.02  # requests stay in flight long enough to be interrupted

    async def scenario() -> None:
        site = Site.load(workers.folder)
        await site.open()
        engine = AutomationEngine(site, clock=workers.clock)
        driver = Driver(
            site=site,
            engine=engine,
            clock=workers.clock,
            sms=sms,
            send_tick=lambda: producer.send_task("jimu.tick"),
        )
        try:
            await engine.save(automation(JOURNEY))
            customer = await site.records.create("customer", {"nickname": "Han"})
            orders = [
                (await site.records.create("shop_order", {"customer": customer["id"]}))["id"]
                for _ in range(ORDERS)
            ]
            await engine.dispatch()  # the runs exist, ready; now hand each to the workers twice
            ready = await engine.claim_ready(limit=ORDERS)
            assert len(ready) == ORDERS
            for run_id in ready:
                producer.send_task("jimu.advance", args=[run_id])
                producer.send_task("jimu.advance", args=[run_id])  # a redelivery
            deadline = time.monotonic() + 30
            while len(sms.received) < 8:
                assert time.monotonic() < deadline, "the workers sent nothing"
                await asyncio.sleep(0.01)
            killed = workers.kill(0)  # mid-journey, messages in flight
            assert workers.processes[1].poll() is None
            workers.clock.advance(minutes=3)  # the dead worker's leases run out
            await driver.settle()
            workers.clock.advance(hours=1)
            await driver.settle()

            runs = await engine.runs(automation="order_follow_up", limit=ORDERS)
            assert sorted(r["status"] for r in runs) == ["done"] * ORDERS
            tasks = await site.db.fetch("SELECT about_id FROM task ORDER BY about_id")
            assert [row["about_id"] for row in tasks] == orders  # each write once
            recorded = await site.db.fetch(
                "SELECT record_id, body FROM jimu_message ORDER BY record_id, id"
            )
            assert [(r["record_id"], r["body"]) for r in recorded] == [
                (order, f"{word} {order}") for order in orders for word in ("one", "two")
            ]
            keys = Counter(sms.keys())
            assert len(keys) == 2 * ORDERS  # every message reached the gateway
            repeats = sum(count - 1 for count in keys.values())
            assert repeats <= 1, keys  # at most the request the kill interrupted, same key
            effects = await site.db.fetch(
                "SELECT COUNT(*) AS n FROM jimu_automation_effect WHERE status = 'done'"
            )
            assert effects[0]["n"] == 4 * ORDERS
            workers_seen = await site.db.fetch(
                "SELECT DISTINCT worker FROM jimu_automation_step WHERE worker IS NOT NULL"
            )
            assert str(killed) in {str(r["worker"]).split(":")[1] for r in workers_seen}
        finally:
            await site.close()

    run(scenario())
