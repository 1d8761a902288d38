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
