"""The same seed journeys on Celery: an embedded worker (SQLite, a queue of files, no server)
and two `jimu worker` processes on PostgreSQL with Redis and with RabbitMQ."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jimu.automation.celery_app import EmbeddedWorker, make_celery
from jimu.automation.clock import ManualClock
from jimu.automation.engine import AutomationEngine
from jimu.site import Site
from jimu_sdk.testing import postgres_database
from tests.automation.celery_modes import Workers, set_broker, worker_processes
from tests.automation.gateway import Gateway, gateway
from tests.automation.helpers import automation, new_store, open_engine, run
from tests.automation.journeys import SCENARIOS, Driver

BROKERS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//",
}


@pytest.fixture(scope="module")
def sms() -> Iterator[Gateway]:
    with gateway() as receiver:
        yield receiver


def _settings(sms: Gateway) -> dict[str, Any]:
    return {"channels": {"sms": {"type": "http", "url": sms.url + "/sms"}}}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_seed_journey_embedded(tmp_path: Path, sms: Gateway, name: str) -> None:
    """Embedded mode: SQLite, the filesystem transport and a worker thread in this process."""
    site = new_store(tmp_path / "shop", settings=_settings(sms))
    assert site.config.broker_url == "filesystem://"  # the default
    clock = ManualClock(dt.datetime.now(dt.UTC))

    async def scenario() -> None:
        engine = await open_engine(site, clock)
        worker = EmbeddedWorker(site.folder, clock=clock, tick_seconds=None)
        worker.start()
        try:
            driver = Driver(site=site, engine=engine, clock=clock, sms=sms, send_tick=worker.tick)
            await SCENARIOS[name](driver)
        finally:
            worker.stop()
            await site.close()

    run(scenario())
    assert list((site.folder / ".jimu" / "queue").iterdir()) == []  # every message consumed


@pytest.fixture(scope="module", params=sorted(BROKERS))
def distributed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sms: Gateway
) -> Iterator[Workers]:
    """One PostgreSQL site per broker, served by two `jimu worker` processes."""
    broker = BROKERS[request.param]
    with postgres_database() as url:
        folder = tmp_path_factory.mktemp(request.param) / "shop"
        site = new_store(folder, url, settings=_settings(sms))
        set_broker(site, broker)

        async def prepare() -> None:
            await open_engine(site)
            await site.close()

        run(prepare())
        with worker_processes(site.folder, broker, count=2) as workers:
            yield workers


async def _open(workers: Workers) -> tuple[Site, AutomationEngine]:
    site = Site.load(workers.folder)
    await site.open()
    engine = AutomationEngine(site, clock=workers.clock)
    return site, engine


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_seed_journey_distributed(distributed: Workers, sms: Gateway, name: str) -> None:
    """Distributed mode: the same scenario, executed by two worker processes."""
    producer = make_celery(distributed.folder, distributed.broker_url)

    async def scenario() -> None:
        site, engine = await _open(distributed)
        try:
            driver = Driver(
                site=site,
                engine=engine,
                clock=distributed.clock,
                sms=sms,
                send_tick=lambda: producer.send_task("jimu.tick"),
            )
            await SCENARIOS[name](driver)
            # both workers took part in this module's work
            rows = await site.db.fetch(
                "SELECT DISTINCT lease_owner FROM jimu_automation_run WHERE lease_owner IS NOT NULL"
            )
            assert rows == []  # nothing left leased
        finally:
            await site.close()

    run(scenario())
    assert all(process.poll() is None for process in distributed.processes)


def test_two_workers_shared_the_work(distributed: Workers, sms: Gateway) -> None:
    """Both worker processes execute runs at the same time (the run log names them).

    The gateway holds the first SMS request until a second one is in flight:
    a worker sends one request at a time, so the second comes from the other
    worker, or the barrier times out and the test fails. No timing luck.
    """
    producer = make_celery(distributed.folder, distributed.broker_url)
    both_sending = threading.Barrier(2, timeout=30)
    held = [0]
    lock = threading.Lock()

    def hold_until_both_send(request: dict[str, Any]) -> None:
        with lock:
            held[0] += 1
            mine = held[0]
        if mine <= 2:
            both_sending.wait()

    async def scenario() -> set[str]:
        site, engine = await _open(distributed)
        try:
            for definition, _ in await engine.definitions():
                await engine.delete(definition.name)
            await engine.save(automation(PARALLEL_SMS))
            customer = await site.records.create("customer", {"nickname": "Qian"})
            for _ in range(2):
                await site.records.create("shop_order", {"customer": customer["id"]})
            driver = Driver(
                site=site,
                engine=engine,
                clock=distributed.clock,
                sms=sms,
                send_tick=lambda: producer.send_task("jimu.tick"),
            )
            await driver.settle()
            runs = await engine.runs(automation="parallel_sms")
            assert [r["status"] for r in runs] == ["done", "done"]
            rows = await site.db.fetch(
                "SELECT DISTINCT s.worker FROM jimu_automation_step s "
                "JOIN jimu_automation_run r ON r.id = s.run_id "
                "WHERE r.automation = 'parallel_sms' AND s.worker IS NOT NULL"
            )
            return {str(row["worker"]).split(":")[1] for row in rows}
        finally:
            await site.close()

    sms.on_request = hold_until_both_send
    try:
        seen = run(scenario())
    finally:
        sms.on_request = None
    assert not both_sending.broken
    assert seen == {str(process.pid) for process in distributed.processes}


PARALLEL_SMS = {
    "name": "parallel_sms",
    "trigger": {"kind": "created", "entity": "shop_order"},
    "steps": [
        {
            "id": "sms",
            "kind": "action",
            "action": "send_message",
            "params": {"channel": "sms", "to": "{{ record.customer }}", "body": "hi"},
        }
    ],
}
