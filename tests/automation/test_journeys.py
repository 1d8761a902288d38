"""The seed journeys, inline (the engine called directly) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jimu.automation.clock import ManualClock
from tests.automation.gateway import gateway
from tests.automation.helpers import new_store, open_engine, run
from tests.automation.journeys import SCENARIOS, Driver


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_seed_journey(tmp_path: Path, database_url: str | None, name: str) -> None:
    with gateway() as sms:
        site = new_store(
            tmp_path / "shop",
            database_url,
            settings={"channels": {"sms": {"type": "http", "url": sms.url + "/sms"}}},
        )

        async def scenario() -> None:
            clock = ManualClock(dt.datetime.now(dt.UTC))
            engine = await open_engine(site, clock)
            try:
                await SCENARIOS[name](Driver(site=site, engine=engine, clock=clock, sms=sms))
            finally:
                await site.close()

        run(scenario())
