"""The automation processes as an operator starts them: `jimu beat` with a worker, and `jimu serve`.

* `jimu beat` sends the tick on its own schedule: a `jimu worker` on Redis and
  PostgreSQL fires a cron automation when its time comes, with nobody else
  queueing anything.
* `jimu serve` on a SQLite site runs automations in its own process (the
  embedded worker and ticker): a record created over HTTP with an API token
  goes through a journey with a durable wait, and the run log over HTTP shows
  it done. No other process runs.

Every process is started here and stopped by its own PID.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from jimu.automation.engine import AutomationEngine
from jimu.site import Site
from jimu_sdk.testing import postgres_database
from tests.automation.celery_modes import set_broker, worker_processes
from tests.automation.helpers import automation, new_store, open_engine, run

JIMU = [sys.executable, "-c", "from jimu_cli.main import main; main()"]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@contextmanager
def jimu_process(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``jimu ARGS`` for the block; stop it by its PID afterwards (SIGTERM, then SIGKILL)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*JIMU, *args], env={**os.environ, **(env or {})}, stdout=output, stderr=output
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _jimu(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [*JIMU, *args], env={**os.environ, **(env or {})}, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


DAILY = {
    "name": "daily_check",
    "trigger": {"kind": "schedule", "cron": "0 9 * * *"},
    "steps": [
        {
            "id": "task",
            "kind": "action",
            "action": "create_task",
            "params": {"title": "Morning check", "due_in": "1d"},
        }
    ],
}


def test_beat_ticks_a_distributed_worker_that_fires_a_schedule(tmp_path: Path) -> None:
    with postgres_database() as url:
        site = new_store(tmp_path / "shop", url)
        set_broker(site, "redis://127.0.0.1:6379/0")
        run(_close_after(open_engine(site), site))
        with worker_processes(site.folder, site.config.broker_url, count=1) as workers:

            async def scenario() -> None:
                opened = Site.load(workers.folder)
                await opened.open()
                engine = AutomationEngine(opened, clock=workers.clock)
                try:
                    await engine.save(automation(DAILY))  # its clock starts now
                    with jimu_process(
                        ["beat", "--site", str(workers.folder)], workers.folder / "beat.log"
                    ) as beat:
                        first = await engine.ticks()
                        await _until(lambda: _more_ticks(engine, first, 1), "beat sent no tick")
                        assert await engine.runs(automation="daily_check") == []  # not 09:00 yet
                        local = workers.clock().astimezone(SHANGHAI)
                        nine = local.replace(hour=9, minute=0, second=0, microsecond=0)
                        if nine <= local:
                            nine += dt.timedelta(days=1)
                        workers.clock.set(nine + dt.timedelta(minutes=1))
                        await _until(lambda: _run_done(engine), "the 09:00 run did not finish")
                        assert beat.poll() is None
                    runs = await engine.runs(automation="daily_check")
                    assert len(runs) == 1  # one occurrence, fired once
                    assert read_trigger_at(runs[0]) == nine.astimezone(dt.UTC)
                    tasks = await opened.db.fetch("SELECT title FROM task")
                    assert [row["title"] for row in tasks] == ["Morning check"]
                finally:
                    await opened.close()

            run(scenario())
            assert all(process.poll() is None for process in workers.processes)


def read_trigger_at(run_row: dict[str, Any]) -> dt.datetime:
    """When the schedule occurrence that started a run was due (from its trigger)."""
    return dt.datetime.fromisoformat(str(run_row["trigger"]["at"])).astimezone(dt.UTC)


async def _close_after(opening: Any, site: Site | None) -> None:
    engine = await opening
    await (site or engine.site).close()


async def _more_ticks(engine: AutomationEngine, before: int, count: int) -> bool:
    return await engine.ticks() >= before + count


async def _run_done(engine: AutomationEngine) -> bool:
    runs = await engine.runs(automation="daily_check")
    return bool(runs) and runs[0]["status"] == "done"


async def _until(check: Any, failure: str, patience: float = 30.0) -> None:
    deadline = time.monotonic() + patience
    while not await check():
        assert time.monotonic() < deadline, failure
        await asyncio.sleep(0.1)


FOLLOW_UP = {
    "name": "order_follow_up",
    "trigger": {"kind": "created", "entity": "shop_order"},
    "steps": [
        {
            "id": "total",
            "kind": "action",
            "action": "set_fields",
            "params": {"fields": {"total": "5"}},
        },
        {"id": "pause", "kind": "wait", "duration": "1s"},
        {
            "id": "task",
            "kind": "action",
            "action": "create_task",
            "params": {"title": "Call about order {{ shop_order.id }}", "due_in": "1d"},
        },
    ],
}


def test_serve_runs_an_automation_end_to_end_on_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    env = {"JIMU_ADMIN_PASSWORD": "a-long-test-password-1"}
    _jimu("site", "new", str(folder), env=env)
    run(_close_after(open_engine(Site.load(folder)), site=None))  # the store's entities
    token = _jimu("user", "token", "admin", "--name", "serve test", "--site", str(folder))
    token = token.strip().splitlines()[0]
    port = _free_port()
    base = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    with (
        jimu_process(
            ["serve", "--site", str(folder), "--port", str(port)], tmp_path / "serve.log"
        ) as server,
        httpx.Client(base_url=base, headers=headers, timeout=10) as client,
    ):
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if client.get("/automations/runs").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "jimu serve did not answer"
            time.sleep(0.1)
        saved = client.post("/meta/automations", json=FOLLOW_UP)
        assert saved.status_code == 201, saved.text
        customer = client.post("/records/customer", json={"nickname": "Zhao"})
        assert customer.status_code == 201, customer.text
        order = client.post("/records/shop_order", json={"customer": customer.json()["id"]})
        assert order.status_code == 201, order.text
        order_id = order.json()["id"]

        deadline = time.monotonic() + 30
        while True:
            runs = client.get("/automations/runs", params={"automation": "order_follow_up"})
            assert runs.status_code == 200, runs.text
            found = runs.json()["data"]
            if found and found[0]["status"] == "done":
                break
            assert time.monotonic() < deadline, f"the run did not finish: {found}"
            time.sleep(0.2)
        assert [(r["record_id"], r["status"]) for r in found] == [(order_id, "done")]
        detail = client.get(f"/automations/runs/{found[0]['id']}").json()
        assert [(s["step"], s["outcome"]) for s in detail["steps"]] == [
            ("total", "done"),
            ("pause", "waiting"),
            ("pause", "elapsed"),
            ("task", "done"),
        ]
        record = client.get(f"/records/shop_order/{order_id}").json()
        assert float(record["total"]) == 5
        tasks = client.get("/records/task").json()
        assert [t["title"] for t in tasks["data"]] == [f"Call about order {order_id}"]
        assert server.poll() is None
