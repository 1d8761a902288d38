"""The same seed journeys on Celery: an embedded worker (SQLite, a queue of files, no server)
and two `jimu worker` processes on PostgreSQL with Redis and with RabbitMQ."""

from __future__ import annotations

import datetime as dt
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
from tests.automation.helpers import new_store, open_engine, run
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


def test_two_workers_shared_the_work(distributed: Workers) -> None:
    """Both worker processes executed steps of this module's journeys (the run log names them)."""

    async def workers_seen() -> set[str]:
        site = Site.load(distributed.folder)
        await site.open()
        try:
            rows = await site.db.fetch(
                "SELECT DISTINCT worker FROM jimu_automation_step WHERE worker IS NOT NULL"
            )
        finally:
            await site.close()
        return {str(row["worker"]).split(":")[1] for row in rows}

    pids = {str(process.pid) for process in distributed.processes}
    assert run(workers_seen()) == pids
