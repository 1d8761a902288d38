"""Faults: a worker killed with SIGKILL while its message is in flight, tasks delivered twice.

Two `jimu worker` processes on PostgreSQL and Redis run a journey that writes
(a task, a field), sends an SMS over HTTP, an in-app inbox message and an
email over SMTP, waits an hour and sends a second SMS. Every run's advance
task is sent twice (a redelivery). The SMS gateway kills the worker that is
sending it the 9th message, from inside the request, before answering: the
message has reached the gateway, the worker never learns it did.

What is guaranteed, and asserted without tolerance:

* every write is applied once (one task per order, one update per order);
* every inbox message and every email arrives once;
* no run sends while another attempt holds the claim on that message; the
  one message whose worker died mid-request is sent again, once, under the
  same Idempotency-Key, and the gateway (which, like a real SMS gateway,
  drops a key it has delivered) delivers every SMS exactly once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from jimu.automation.celery_app import make_celery
from jimu.automation.engine import AutomationEngine
from jimu.site import Site
from jimu_sdk.testing import postgres_database
from tests.automation.celery_modes import Workers, set_broker, worker_processes
from tests.automation.gateway import IDEMPOTENCY, Gateway, Mailbox, gateway, smtp_server
from tests.automation.helpers import automation, new_store, open_engine, run
from tests.automation.journeys import Driver

ORDERS = 30
#: The SMS request during which its sender is killed.
KILL_AT = 9


def _sms(step: str, word: str) -> dict[str, Any]:
    return {
        "id": step,
        "kind": "action",
        "action": "send_message",
        "params": {
            "channel": "sms",
            "to": "{{ record.customer }}",
            "body": word + " {{ record.id }}",
        },
    }


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
        _sms("first", "one"),
        {
            "id": "note",
            "kind": "action",
            "action": "send_message",
            "params": {"channel": "inbox", "to": "AGENT", "body": "inbox {{ record.id }}"},
        },
        {
            "id": "mail",
            "kind": "action",
            "action": "send_message",
            "params": {
                "channel": "email",
                "to": "customer{{ record.customer }}@example.com",
                "subject": "Your order",
                "body": "mail {{ record.id }}",
            },
        },
        {"id": "hour", "kind": "wait", "duration": "1h"},
        _sms("second", "two"),
        {
            "id": "tag",
            "kind": "action",
            "action": "set_fields",
            "params": {"fields": {"total": "1"}},
        },
    ],
}
STEPS_WITH_EFFECTS = ("task", "first", "note", "mail", "second", "tag")


@dataclass
class Setup:
    workers: Workers
    database_url: str
    sms: Gateway
    mailbox: Mailbox


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with gateway() as sms, smtp_server() as mailbox, postgres_database() as url:
        channels = {
            "sms": {"type": "http", "url": sms.url + "/sms"},
            "email": {
                "type": "email",
                "host": "127.0.0.1",
                "port": mailbox.port,
                "sender": "store@example.com",
            },
        }
        site = new_store(tmp_path / "shop", url, settings={"channels": channels})
        set_broker(site, "redis://127.0.0.1:6379/0")

        async def prepare() -> None:
            await open_engine(site)
            await site.close()

        run(prepare())
        with worker_processes(site.folder, site.config.broker_url, count=2) as started:
            yield Setup(workers=started, database_url=url, sms=sms, mailbox=mailbox)


async def _claim_holder(database_url: str, effect_key: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        holder = await connection.fetchval(
            "SELECT claimed_by FROM jimu_automation_effect WHERE key = $1 AND status = 'sending'",
            effect_key,
        )
    finally:
        await connection.close()
    assert holder is not None, f"a message went out without a claim on {effect_key}"
    return str(holder)


def test_killed_worker_and_duplicate_tasks_apply_everything_once(setup: Setup) -> None:
    workers, sms, mailbox = setup.workers, setup.sms, setup.mailbox
    producer = make_celery(workers.folder, workers.broker_url)
    killed: dict[str, Any] = {}
    seen = Counter[str]()
    hook_lock = threading.Lock()

    def kill_the_sender(request: dict[str, Any]) -> None:
        """The 9th SMS: find the worker holding its claim and SIGKILL it before answering."""
        with hook_lock:
            seen["sms"] += 1
            if seen["sms"] != KILL_AT:
                return
            key = request["headers"][IDEMPOTENCY]
            effect_key = key.split(":", 1)[1]  # "<site>:<run>:<step>" -> "<run>:<step>"
            holder = asyncio.run(_claim_holder(setup.database_url, effect_key))
            pid = int(holder.split(":")[1])
            index = [process.pid for process in workers.processes].index(pid)
            workers.kill(index)
            killed.update(key=key, pid=pid, run_id=int(effect_key.split(":")[0]))

    sms.on_request = kill_the_sender

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
            agent = await driver.user("agent", ["agent"])
            data = dict(JOURNEY)
            data["steps"] = [
                {**step, "params": {**step["params"], "to": str(agent)}}
                if step["id"] == "note"
                else step
                for step in JOURNEY["steps"]
            ]
            await engine.save(automation(data))
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
            while not killed:
                assert time.monotonic() < deadline, "the workers did not send 9 messages"
                await asyncio.sleep(0.01)
            survivor = next(p for p in workers.processes if p.pid != killed["pid"])
            assert survivor.poll() is None
            workers.clock.advance(minutes=3)  # the dead worker's lease and claim run out
            await driver.settle()
            workers.clock.advance(hours=1)
            await driver.settle()

            runs = await engine.runs(automation="order_follow_up", limit=ORDERS)
            assert sorted(r["status"] for r in runs) == ["done"] * ORDERS, [
                r.get("error") for r in runs
            ]
            # every write once
            tasks = await site.db.fetch("SELECT about_id FROM task ORDER BY about_id")
            assert [row["about_id"] for row in tasks] == orders
            updates = await site.db.fetch(
                "SELECT record_id FROM jimu_event WHERE entity = 'shop_order' "
                "AND kind = 'updated' ORDER BY record_id"
            )
            assert [row["record_id"] for row in updates] == orders
            # every message recorded once, in order
            recorded = await site.db.fetch(
                "SELECT record_id, body FROM jimu_message ORDER BY record_id, id"
            )
            assert [(r["record_id"], r["body"]) for r in recorded] == [
                (order, f"{word} {order}")
                for order in orders
                for word in ("one", "inbox", "mail", "two")
            ]
            inbox = await site.db.fetch("SELECT user_id, body FROM jimu_inbox ORDER BY record_id")
            assert [(r["user_id"], r["body"]) for r in inbox] == [
                (agent, f"inbox {order}") for order in orders
            ]
            assert sorted(str(email.get_payload()).strip() for email in mailbox.emails) == sorted(
                f"mail {order}" for order in orders
            )
            assert len(set(mailbox.message_ids())) == ORDERS
            # the gateway delivered every SMS once; the engine repeated exactly one request:
            # the one its dead worker never heard back about, under the same key
            assert Counter(sms.keys()) == {
                f"{site.config.name}:{run_id}:{step}": 1
                for run_id in ready
                for step in ("first", "second")
            }
            assert sorted(b["text"] for b in sms.bodies()) == sorted(
                f"{word} {order}" for order in orders for word in ("one", "two")
            )
            assert sms.repeated_keys() == [killed["key"]]
            effects = await site.db.fetch(
                "SELECT key, status, attempts FROM jimu_automation_effect"
            )
            assert sorted(e["key"] for e in effects) == sorted(
                f"{run_id}:{step}" for run_id in ready for step in STEPS_WITH_EFFECTS
            )
            assert {e["status"] for e in effects} == {"done"}
            resent = {e["key"]: e["attempts"] for e in effects if e["attempts"] not in (0, 1)}
            assert resent == {killed["key"].split(":", 1)[1]: 2}
            # the killed worker had done its share before it died
            workers_seen = await site.db.fetch(
                "SELECT DISTINCT worker FROM jimu_automation_step WHERE worker IS NOT NULL"
            )
            assert str(killed["pid"]) in {str(r["worker"]).split(":")[1] for r in workers_seen}
        finally:
            await site.close()

    run(scenario())
