"""Record events: outbox rows in the write's transaction, and the record hooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from jimu.meta import EntityDef, FieldDef, PluginInfo
from jimu.site import Site
from jimu.store.database import Database
from jimu_sdk import ValidationFailed, hookimpl
from jimu_sdk.testing import site_client


def events(site: Site) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = Database(site.config.database_url, base_dir=site.folder)
        await db.open()
        try:
            rows = await db.fetch(
                "SELECT entity, record_id, kind, payload FROM jimu_event ORDER BY id"
            )
        finally:
            await db.close()
        return [
            {
                **row,
                "payload": json.loads(row["payload"])
                if isinstance(row["payload"], str)
                else row["payload"],
            }
            for row in rows
        ]

    return asyncio.run(read())


def audit_plugin(calls: list[tuple[str, Any]]) -> ModuleType:
    """A plugin that records every hook call, rejects negative stock, and fails on demand."""
    module = ModuleType("audit_plugin")
    module.PLUGIN = PluginInfo(name="audit", version="1.0.0")  # type: ignore[attr-defined]

    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [
            EntityDef(
                name="stock",
                fields=[
                    FieldDef(name="sku", type="text", required=True),
                    FieldDef(name="qty", type="integer"),
                ],
            ),
            EntityDef(name="stock_log", fields=[FieldDef(name="message", type="text")]),
        ]

    @hookimpl
    async def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
        calls.append(("before_create", dict(values)))
        if entity.name == "stock":
            if (values.get("qty") or 0) < 0:
                raise ValidationFailed.field("qty", "stock cannot be negative")
            values["sku"] = values["sku"].upper()

    @hookimpl
    async def jimu_after_create(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
        calls.append(("after_create", record["id"]))
        if entity.name == "stock":
            # work done here shares the record's transaction
            await site.records.create("stock_log", {"message": f"created {record['sku']}"})
            if record["sku"] == "BOOM":
                raise RuntimeError("after-create failure")

    @hookimpl
    def jimu_before_update(
        site: Site, entity: EntityDef, record: Mapping[str, Any], changes: dict[str, Any]
    ) -> None:
        calls.append(("before_update", dict(changes)))
        if changes.get("qty") == 13:
            changes["qty"] = "thirteen"  # a hook may not smuggle bad data in

    @hookimpl
    def jimu_after_update(
        site: Site, entity: EntityDef, before: Mapping[str, Any], record: Mapping[str, Any]
    ) -> None:
        calls.append(("after_update", (before["qty"], record["qty"])))

    @hookimpl
    def jimu_before_delete(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
        calls.append(("before_delete", record["id"]))
        if record.get("qty"):
            raise ValidationFailed.field("qty", "only empty stock can be deleted")

    @hookimpl
    def jimu_after_delete(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
        calls.append(("after_delete", record["id"]))

    for function in [
        jimu_entities,
        jimu_before_create,
        jimu_after_create,
        jimu_before_update,
        jimu_after_update,
        jimu_before_delete,
        jimu_after_delete,
    ]:
        setattr(module, function.__name__, function)
    return module


def test_every_write_lands_in_the_outbox_with_hooks(new_site: Callable[..., Site]) -> None:
    calls: list[tuple[str, Any]] = []
    site = new_site(plugins=["audit"], extra_plugins={"audit": audit_plugin(calls)})
    with site_client(site) as client:
        created = client.post("/api/v1/records/stock", json={"sku": "tea-1", "qty": 5})
        assert created.status_code == 201 and created.json()["sku"] == "TEA-1"
        updated = client.patch("/api/v1/records/stock/1", json={"qty": 0})
        assert updated.status_code == 200
        unchanged = client.patch("/api/v1/records/stock/1", json={"qty": 0, "sku": "TEA-1"})
        assert unchanged.status_code == 200
        assert unchanged.json()["updated_at"] == updated.json()["updated_at"]  # no write at all
        deleted = client.delete("/api/v1/records/stock/1")
        assert deleted.status_code == 200 and deleted.json()["sku"] == "TEA-1"
    assert calls == [
        ("before_create", {"sku": "tea-1", "qty": 5}),
        ("after_create", 1),
        ("before_create", {"message": "created TEA-1"}),
        ("after_create", 1),
        ("before_update", {"qty": 0}),
        ("after_update", (5, 0)),
        ("before_update", {"qty": 0, "sku": "TEA-1"}),
        ("before_delete", 1),
        ("after_delete", 1),
    ]
    stored = events(site)
    assert [(e["entity"], e["record_id"], e["kind"]) for e in stored] == [
        ("stock", 1, "created"),
        ("stock_log", 1, "created"),
        ("stock", 1, "updated"),
        ("stock", 1, "deleted"),
    ]
    assert stored[0]["payload"]["sku"] == "TEA-1"
    assert stored[2]["payload"] == {"before": {"qty": 5}, "after": {"qty": 0}}
    assert stored[3]["payload"]["qty"] == 0


def test_rejected_or_failed_writes_leave_nothing(new_site: Callable[..., Site]) -> None:
    calls: list[tuple[str, Any]] = []
    site = new_site(plugins=["audit"], extra_plugins={"audit": audit_plugin(calls)})
    with site_client(site) as client:
        rejected = client.post("/api/v1/records/stock", json={"sku": "x", "qty": -1})
        assert rejected.status_code == 422
        assert rejected.json()["errors"] == [{"field": "qty", "reason": "stock cannot be negative"}]
        failed = client.post("/api/v1/records/stock", json={"sku": "boom", "qty": 1})
        assert failed.status_code == 500  # a plugin bug is a server error, never a half-write
        assert "Traceback" not in failed.text and "after-create failure" not in failed.text
        smuggled = client.post("/api/v1/records/stock", json={"sku": "ok", "qty": 1})
        assert smuggled.status_code == 201
        bad_hook = client.patch(
            "/api/v1/records/stock/" + str(smuggled.json()["id"]), json={"qty": 13}
        )
        assert bad_hook.status_code == 422 and bad_hook.json()["errors"][0]["field"] == "qty"
        refused = client.delete("/api/v1/records/stock/" + str(smuggled.json()["id"]))
        assert refused.status_code == 422
        bulk = client.post(
            "/api/v1/records/stock/bulk",
            json={"create": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": -5}]},
        )
        assert bulk.status_code == 422 and bulk.json()["errors"][0]["field"] == "qty"
        listing = client.get("/api/v1/records/stock", params={"count": "exact"}).json()
        assert [r["sku"] for r in listing["data"]] == ["OK"]
        assert (
            client.get("/api/v1/records/stock_log", params={"count": "exact"}).json()["page"][
                "total"
            ]
            == 1
        )
    assert [(e["entity"], e["kind"]) for e in events(site)] == [
        ("stock", "created"),
        ("stock_log", "created"),
    ]
