"""An automation step that runs as a user goes through that user's permissions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec

from jimu.auth import RoleDef
from jimu.automation.clock import ManualClock
from tests.automation.helpers import automation, new_store, open_engine, run

CLERK = RoleDef(
    name="clerk",
    grants=msgspec.convert(
        {
            "customer": {
                "actions": ["read", "update"],
                "default_field": "read",
                "fields": {"nickname": "write"},
            }
        },
        dict[str, object],
    ),  # type: ignore[arg-type]
)


def _setter(name: str, fields: dict[str, object]) -> dict[str, object]:
    return {
        "name": name,
        "trigger": {"kind": "created", "entity": "customer"},
        "run_as": "clerk1",
        "steps": [
            {"id": "set", "kind": "action", "action": "set_fields", "params": {"fields": fields}}
        ],
    }


def test_a_step_run_as_a_user_has_exactly_their_rights(
    tmp_path: Path, database_url: str | None
) -> None:
    site = new_store(tmp_path / "shop", database_url)

    async def scenario() -> None:
        engine = await open_engine(site, ManualClock(dt.datetime.now(dt.UTC)))
        try:
            await site.auth.save_role(msgspec.convert(msgspec.to_builtins(CLERK), RoleDef))
            clerk = await site.auth.add_user("clerk1", roles=["clerk"])
            await engine.save(automation(_setter("rename", {"nickname": "Renamed"})))
            await engine.save(automation(_setter("mark_used", {"coupon_used": True})))
            customer = await site.records.create("customer", {"nickname": "Wang"})
            await engine.settle()
            stored = await site.records.get("customer", customer["id"])
            assert stored["nickname"] == "Renamed"  # the clerk may write the nickname
            assert stored["coupon_used"] is False  # ... but not coupon_used
            runs = {r["automation"]: r for r in await engine.runs()}
            assert runs["rename"]["status"] == "done"
            assert runs["mark_used"]["status"] == "failed"
            detail = await engine.run_detail(runs["mark_used"]["id"])
            assert "coupon_used" in str(detail["steps"][-1]["error"])
            changes = await site.auth.record_changes(entity="customer", record_id=customer["id"])
            update = next(c for c in changes if c["kind"] == "updated")
            assert update["actor_kind"] == "automation" and update["actor_id"] == clerk.id
            assert update["actor_name"] == "automation:rename as clerk1"
        finally:
            await site.close()

    run(scenario())
