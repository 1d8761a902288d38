"""Schema changes: additive ones apply on their own, destructive ones wait for `jimu migrate`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from click.testing import CliRunner

from jimu.site import Site
from jimu_cli.main import cli
from jimu_sdk.testing import site_client

ENTITY = {
    "name": "lead",
    "fields": [
        {"name": "name", "type": "text", "required": True},
        {"name": "score", "type": "text"},
        {"name": "note", "type": "long_text"},
        {"name": "source", "type": "text", "indexed": True},
    ],
}


def columns(site: Site, table: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        async with Site.load(site.folder) as fresh:
            return await fresh.db.table_columns(table)

    return asyncio.run(read())


def migrate(site: Site, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["migrate", "--site", str(site.folder), *args])
    assert result.exit_code == 0, result.output
    return result


def test_destructive_changes_wait_for_migrate(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        assert client.post("/api/v1/meta/entities", json=ENTITY).status_code == 201
        for i in range(3):
            body = {"name": f"lead {i}", "score": str(10 * i), "note": f"note {i}", "source": "web"}
            assert client.post("/api/v1/records/lead", json=body).status_code == 201
        # remove `note`, narrow `score` text -> integer, rename `source` -> `channel`
        fields = [
            {"name": "name", "type": "text", "required": True},
            {"name": "score", "type": "integer"},
            {"name": "channel", "type": "text", "indexed": True, "renamed_from": "source"},
        ]
        response = client.patch("/api/v1/meta/entities/lead", json={"fields": fields})
        assert response.status_code == 200, response.text
        view = response.json()
        assert sorted(view["pending_fields"]) == ["channel", "score"]
        kinds = sorted((c["kind"], c["field"]) for c in view["pending_changes"])
        assert kinds == [
            ("change type", "score"),
            ("drop column", "note"),
            ("rename column", "channel"),
        ]
        # the record API leaves pending fields out rather than serving them wrongly
        record = client.get("/api/v1/records/lead/1").json()
        assert set(record) == {"id", "created_at", "updated_at", "name"}
        bad = client.post("/api/v1/records/lead", json={"name": "x", "score": 5})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "score"

    # the data is still there: nothing was dropped silently
    live = columns(site, "lead")
    assert {"note", "score", "source"} <= set(live)

    plan = migrate(site, "--plan")
    assert "Pending changes (3):" in plan.output
    assert (
        "drop column    lead.note: no field uses this column any more — 3 stored value(s) affected"
        in plan.output
    )
    assert "rename column  lead.channel: rename 'source' to 'channel'" in plan.output
    assert "change type    lead.score" in plan.output
    assert "Nothing was changed. Apply with: jimu migrate --apply" in plan.output
    assert columns(site, "lead") == live  # --plan applied nothing

    as_json = json.loads(migrate(site, "--plan", "--json").output)
    assert as_json["mode"] == "plan"
    assert all(change["destructive"] for change in as_json["changes"])

    applied = migrate(site, "--apply")
    assert "Applied changes (3):" in applied.output
    after = columns(site, "lead")
    assert "note" not in after and "source" not in after and "channel" in after

    assert "Nothing to migrate" in migrate(site, "--plan").output

    async def indexes() -> set[str]:
        async with Site.load(site.folder) as fresh:
            return {name for name in await fresh.db.index_names("lead") if name.startswith("ix_")}

    assert asyncio.run(indexes()) == {"ix_lead_channel"}  # the old index went with the rename

    with site_client(Site.load(site.folder)) as client:
        record = client.get("/api/v1/records/lead/3").json()
        assert record["score"] == 20 and record["channel"] == "web"
        entity = client.get("/api/v1/meta/entities/lead").json()
        assert entity["pending_fields"] == [] and entity["pending_changes"] == []
        assert [f.get("renamed_from") for f in entity["fields"]] == [None, None, None]
        created = client.post(
            "/api/v1/records/lead", json={"name": "new", "score": 7, "channel": "shop"}
        )
        assert created.status_code == 201, created.text


def test_narrowing_that_cannot_convert_applies_nothing(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={"name": "item", "fields": [{"name": "code", "type": "text", "indexed": True}]},
        )
        for code in ["12", "ABC", None, "7"]:
            client.post("/api/v1/records/item", json={"code": code})
        client.patch(
            "/api/v1/meta/entities/item",
            json={"fields": [{"name": "code", "type": "integer", "indexed": True}]},
        )
    result = CliRunner().invoke(cli, ["migrate", "--site", str(site.folder), "--apply"])
    assert result.exit_code == 1
    assert "cannot change" in result.output and "item" in result.output and "ABC" in result.output
    assert columns(site, "item")["code"] == "TEXT"  # nothing changed, nothing lost

    with site_client(Site.load(site.folder)) as client:
        # pending: the field is out of the record API until the migration is applied
        assert set(client.get("/api/v1/records/item/2").json()) == {
            "id",
            "created_at",
            "updated_at",
        }

    # clear the bad value straight in the database (the API cannot reach a pending field)
    async def clear() -> None:
        async with Site.load(site.folder) as fresh:
            await fresh.db.execute("UPDATE item SET code = NULL WHERE code = 'ABC'")

    asyncio.run(clear())
    applied = migrate(site, "--apply")
    assert "change type" in applied.output
    with site_client(Site.load(site.folder)) as client:
        values = [
            r["code"]
            for r in client.get("/api/v1/records/item", params={"sort": "id"}).json()["data"]
        ]
        assert values == [12, None, None, 7]
        assert client.post("/api/v1/records/item", json={"code": 5}).status_code == 201
        ordered = client.get(
            "/api/v1/records/item", params={"sort": "code", "fields": "code"}
        ).json()
        assert [r["code"] for r in ordered["data"]] == [5, 7, 12, None, None]


def test_deleted_entity_table_waits_for_migrate(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={"name": "temp", "fields": [{"name": "a", "type": "text"}]},
        )
        client.post("/api/v1/records/temp", json={"a": "keep me"})
        response = client.delete("/api/v1/meta/entities/temp")
        assert response.status_code == 200
        assert response.json()["pending_changes"][0]["kind"] == "drop table"
        assert client.get("/api/v1/records/temp").status_code == 404
    assert "a" in columns(site, "temp")
    assert (
        "drop table     temp: the entity was deleted — 1 stored value(s) affected"
        in migrate(site).output
    )
    migrate(site, "--apply")
    assert columns(site, "temp") == {}


def test_additive_changes_apply_on_their_own(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={"name": "thing", "fields": [{"name": "a", "type": "integer"}]},
        )
        response = client.patch(
            "/api/v1/meta/entities/thing",
            json={
                "fields": [
                    {"name": "a", "type": "decimal"},
                    {"name": "b", "type": "date", "indexed": True},
                ],
                "label": {"en": "Thing", "zh-CN": "东西"},
            },
        )
        assert response.status_code == 200
        assert response.json()["pending_changes"] == []  # widening integer -> decimal is safe
        assert (
            client.post("/api/v1/records/thing", json={"a": "1.25", "b": "2024-01-01"}).status_code
            == 201
        )
    assert "Nothing to migrate" in migrate(site).output


def test_entity_history_records_every_version(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post("/api/v1/meta/entities", json={"name": "thing", "fields": []})
        client.post("/api/v1/meta/entities/thing/fields", json={"name": "a", "type": "text"})
        client.patch("/api/v1/meta/entities/thing", json={"label": "Thing"})

    async def history() -> list[dict[str, Any]]:
        async with Site.load(site.folder) as fresh:
            return await fresh.meta.history("thing")

    versions = asyncio.run(history())
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["summary"] for v in versions] == ["created", "added field a", "updated: label"]


def test_indexed_field_added_to_live_entity_gets_its_index(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post("/api/v1/meta/entities", json={"name": "thing", "fields": []})
        client.post(
            "/api/v1/meta/entities/thing/fields",
            json={"name": "code", "type": "text", "unique": True},
        )
        assert client.post("/api/v1/records/thing", json={"code": "A"}).status_code == 201
        clash = client.post("/api/v1/records/thing", json={"code": "A"})
        assert clash.status_code == 409 and clash.json()["errors"] == [
            {"field": "code", "reason": "must be unique"}
        ]


def test_refused_safe_change_rolls_back_metadata(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={"name": "tag", "fields": [{"name": "label", "type": "text"}]},
        )
        client.post(
            "/api/v1/records/tag/bulk", json={"create": [{"label": "vip"}, {"label": "vip"}]}
        )
        response = client.patch(
            "/api/v1/meta/entities/tag",
            json={"fields": [{"name": "label", "type": "text", "unique": True}]},
        )
        assert response.status_code == 409, response.text
        assert "ux_tag_label" in response.json()["detail"]
        assert client.get("/api/v1/meta/entities/tag").json()["fields"] == [
            {"name": "label", "type": "text"}
        ]
    with site_client(Site.load(site.folder)) as client:  # the site still opens
        assert (
            client.get("/api/v1/records/tag", params={"count": "exact"}).json()["page"]["total"]
            == 2
        )


def test_site_opens_with_a_blocked_safe_change(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={"name": "tag", "fields": [{"name": "label", "type": "text", "unique": True}]},
        )

    async def break_index() -> None:
        async with Site.load(site.folder) as fresh:
            await fresh.db.execute("DROP INDEX ux_tag_label")
            await fresh.db.execute("INSERT INTO tag (label) VALUES ('x'), ('x')")

    asyncio.run(break_index())
    with site_client(Site.load(site.folder)) as client:
        pending = client.get("/api/v1/meta/migrations").json()["data"]
        assert [c["kind"] for c in pending] == ["create index"]
        assert pending[0]["blocked"].startswith(
            "cannot create index tag (unique index ux_tag_label): "
        )
        assert (
            client.get("/api/v1/records/tag", params={"count": "exact"}).json()["page"]["total"]
            == 2
        )
        # the blocked change does not stop other changes to the model
        other = client.post("/api/v1/meta/entities", json={"name": "note", "fields": []})
        assert other.status_code == 201, other.text
        added = client.post(
            "/api/v1/meta/entities/tag/fields", json={"name": "colour", "type": "text"}
        )
        assert added.status_code == 201, added.text
    result = CliRunner().invoke(cli, ["migrate", "--site", str(site.folder), "--apply"])
    assert result.exit_code == 1
    assert "Error: cannot create index tag (unique index ux_tag_label): " in result.output
    assert "blocked" not in result.output  # the reason is said once, not repeated


def test_defaults_are_checked_and_typed(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        bad = client.post(
            "/api/v1/meta/entities",
            json={"name": "t", "fields": [{"name": "n", "type": "integer", "default": "abc"}]},
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "fields[0].default"
        good = client.post(
            "/api/v1/meta/entities",
            json={
                "name": "t",
                "fields": [
                    {"name": "on", "type": "date", "default": "2024-02-29"},
                    {"name": "tags", "type": "json", "default": ["new"]},
                    {
                        "name": "level",
                        "type": "select",
                        "options": {"choices": ["a", "b"]},
                        "default": "b",
                    },
                ],
            },
        )
        assert good.status_code == 201, good.text
        first = client.post("/api/v1/records/t", json={}).json()
        assert (first["on"], first["tags"], first["level"]) == ("2024-02-29", ["new"], "b")
        client.patch(f"/api/v1/records/t/{first['id']}", json={"tags": ["new", "x"]})
        second = client.post("/api/v1/records/t", json={}).json()
        assert second["tags"] == ["new"]  # defaults are not shared between records
