"""The engine on its own: outbox dispatch, runs, waits, timers, exits, effects, the run log."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jimu.automation.clock import ManualClock
from jimu.automation.seeds import SEED_JOURNEYS
from jimu.automation.store import read_time, time_param
from tests.automation.gateway import Gateway, gateway
from tests.automation.helpers import automation, new_store, open_engine, run


@pytest.fixture
def sms() -> Iterator[Gateway]:
    with gateway() as receiver:
        yield receiver


def settings(sms: Gateway) -> dict[str, Any]:
    return {"channels": {"sms": {"type": "http", "url": sms.url + "/sms"}}}


def test_waits_until_a_date_field_and_exits_when_paid(
    tmp_path: Path, database_url: str | None, sms: Gateway
) -> None:
    site = new_store(tmp_path / "shop", database_url, settings=settings(sms))

    async def scenario() -> None:
        # records are stamped with the real time, so the engine's clock starts there
        clock = ManualClock(dt.datetime.now(dt.UTC))
        engine = await open_engine(site, clock)
        try:
            data = copy.deepcopy(SEED_JOURNEYS["unpaid_order_reminder"])
            # waits until moments relative to the order's own created_at field
            for step, offset in zip(data["steps"][0::2], ("15m", "2h", "24h"), strict=True):
                del step["duration"]
                step["until"], step["offset"] = "created_at", offset
            await engine.save(automation(data))
            customer = await site.records.create("customer", {"nickname": "Wang"})
            order = await site.records.create("shop_order", {"customer": customer["id"]})
            other = await site.records.create("shop_order", {"customer": customer["id"]})
            await engine.settle()
            assert sms.bodies() == []
            clock.advance(minutes=15, seconds=1)
            await engine.settle()
            assert len(sms.bodies()) == 2  # both orders at 15 minutes
            await site.records.update("shop_order", other["id"], {"paid": True})
            clock.advance(hours=1, minutes=45)
            await engine.settle()
            texts = [b["text"] for b in sms.bodies()]
            assert texts[2:] == [f"Order #{order['id']}: still unpaid, pay now to keep it."]
            clock.advance(hours=22)
            await engine.settle()
            clock.advance(days=30)
            await engine.settle()
            texts = [b["text"] for b in sms.bodies()]
            assert texts[3:] == [f"Last call: order #{order['id']} closes soon."]
            runs = {r["record_id"]: r for r in await engine.runs()}
            assert runs[order["id"]]["status"] == "done"
            assert runs[other["id"]]["status"] == "exited"
            detail = await engine.run_detail(runs[other["id"]]["id"])
            assert [(s["step"], s["outcome"]) for s in detail["steps"]][-1] == (
                "remind_2h",
                "exited",
            )
            assert len(set(sms.keys())) == 4
        finally:
            await site.close()

    run(scenario())


ONE_SMS = {
    "name": "order_sms",
    "trigger": {"kind": "created", "entity": "shop_order"},
    "steps": [
        {
            "id": "sms",
            "kind": "action",
            "action": "send_message",
            "params": {
                "channel": "sms",
                "to": "{{ record.customer }}",
                "body": "hi {{ record.id }}",
            },
        }
    ],
}


def test_a_claimed_send_is_never_repeated_and_an_abandoned_claim_is_resent_with_its_key(
    tmp_path: Path, database_url: str | None, sms: Gateway
) -> None:
    """A second attempt at a message waits while another attempt holds the claim to send it.

    Two orders' messages are claimed by another (simulated) worker as if it
    were sending them. One of those attempts records its message done: the run
    then finishes without sending anything itself. The other attempt never
    comes back (its worker died): once its claim runs out, the message goes out
    again under the same Idempotency-Key, once.
    """
    site = new_store(tmp_path / "shop", database_url, settings=settings(sms))

    async def scenario() -> None:
        clock = ManualClock(dt.datetime.now(dt.UTC))
        engine = await open_engine(site, clock)
        db = site.db
        try:
            await engine.save(automation(ONE_SMS))
            customer = await site.records.create("customer", {"nickname": "Li"})
            finished, abandoned = [
                (await site.records.create("shop_order", {"customer": customer["id"]}))["id"]
                for _ in range(2)
            ]
            await engine.dispatch()
            runs = {r["record_id"]: r["id"] for r in await engine.runs(automation="order_sms")}
            claim_until = clock() + dt.timedelta(minutes=1)
            for order in (finished, abandoned):
                await db.execute(
                    "INSERT INTO jimu_automation_effect (key, run_id, step, status, created_at, "
                    "claimed_by, claim_until, attempts) VALUES ({}, {}, 'sms', 'sending', {}, "
                    "'elsewhere:1:x', {}, 1)",
                    [
                        f"{runs[order]}:sms",
                        runs[order],
                        time_param(db, clock()),
                        time_param(db, claim_until),
                    ],
                )
            for order in (finished, abandoned):
                assert await engine.advance(runs[order]) == "running"  # held, not sent
            assert sms.received == []
            leases = await db.fetch(
                "SELECT lease_owner, lease_until FROM jimu_automation_run ORDER BY id"
            )
            assert {read_time(row["lease_until"]) for row in leases} == {claim_until}
            await engine.settle()  # nothing is due before the claims run out
            assert sms.received == []

            await db.execute(  # the other attempt at the first message got through
                "UPDATE jimu_automation_effect SET status = 'done', result = {} WHERE key = {}",
                ['{"sent_by": "elsewhere"}', f"{runs[finished]}:sms"],
            )
            clock.advance(minutes=1, seconds=1)
            await engine.settle()
            assert [r["status"] for r in await engine.runs(automation="order_sms")] == [
                "done",
                "done",
            ]
            assert sms.keys() == [f"{site.config.name}:{runs[abandoned]}:sms"]
            assert sms.bodies()[0]["text"] == f"hi {abandoned}"
            effects = await db.fetch(
                "SELECT key, status, attempts FROM jimu_automation_effect ORDER BY key"
            )
            assert sorted((e["key"], e["status"], e["attempts"]) for e in effects) == sorted(
                [(f"{runs[finished]}:sms", "done", 1), (f"{runs[abandoned]}:sms", "done", 2)]
            )
            detail = await engine.run_detail(runs[finished])
            assert detail["steps"][-1]["output"] == {"sent_by": "elsewhere"}
        finally:
            await site.close()

    run(scenario())
