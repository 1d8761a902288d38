"""Import modes, dry runs, valid rows, saved mappings, hooks and the bulk insert under it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import pytest

from jimu.errors import Conflict, NotFound, ValidationFailed
from jimu.io import ImportOptions, ImportOutcome, MappingStore, Source, import_file
from jimu.meta import EntityDef, FieldDef, PluginInfo
from jimu.site import Site
from jimu_sdk import hookimpl
from tests.io.helpers import MEMBER, csv_bytes, events_of, records_of, run, with_member


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    return with_member(new_site())


def do_import(site: Site, rows: list[list[Any]], **options: Any) -> ImportOutcome:
    data = csv_bytes(rows)
    return run(
        site,
        lambda opened: import_file(
            opened, "member", Source(data, "members.csv"), ImportOptions(**options)
        ),
    )


SEED = [
    ["姓名", "手机号码", "积分", "城市"],
    ["王芳", "13800138000", "10", "上海"],
    ["李娜", "13900000000", "20", "杭州"],
]


def test_insert_refuses_values_that_records_already_hold(site: Site) -> None:
    assert do_import(site, SEED).created == 2
    again = do_import(site, [SEED[0], ["周杰", "13700000000", "1", ""], SEED[2]])
    assert again.status == "failed"
    assert again.errors == [
        {
            "row": 3,
            "column": "手机号码",
            "field": "phone",
            "value": "13900000000",
            "reason": "another member record already has this value",
        }
    ]
    assert len(records_of(site)) == 2


def test_update_by_key_changes_only_the_given_cells(site: Site) -> None:
    do_import(site, SEED)
    before = {r["phone"]: r for r in records_of(site)}
    outcome = do_import(
        site,
        [["手机号码", "积分", "城市"], ["13800138000", "15", ""], ["13900000000", "20", "杭州"]],
        mode="update",
        key="phone",
    )
    assert outcome.status == "succeeded", outcome.errors
    assert (outcome.updated, outcome.unchanged, outcome.created) == (1, 1, 0)
    after = {r["phone"]: r for r in records_of(site)}
    assert after["13800138000"]["points"] == 15
    assert after["13800138000"]["city"] == "上海"  # a blank cell leaves the field as it was
    assert after["13900000000"]["updated_at"] == before["13900000000"]["updated_at"]
    cleared = do_import(
        site,
        [["手机号码", "城市"], ["13800138000", ""]],
        mode="update",
        key="phone",
        clear_blanks=True,
    )
    assert cleared.updated == 1
    assert {r["phone"]: r["city"] for r in records_of(site)}["13800138000"] is None
    kinds = [e["kind"] for e in events_of(site)]
    assert kinds == ["created", "created", "updated", "updated"]


def test_update_reports_keys_it_cannot_find(site: Site) -> None:
    do_import(site, SEED)
    outcome = do_import(
        site,
        [
            ["手机号码", "积分"],
            ["13800138000", "1"],
            ["13000000000", "2"],
            ["", "3"],
            ["13800138000", "4"],
        ],
        mode="update",
        key="phone",
    )
    assert outcome.status == "failed"
    assert [(e["row"], e["reason"]) for e in outcome.errors] == [
        (3, "no member record with this phone"),
        (4, "the key phone is empty"),
        (5, "the same phone as row 2: each row needs its own"),
    ]
    assert {r["points"] for r in records_of(site)} == {10, 20}


def test_upsert_updates_found_records_and_creates_the_others(site: Site) -> None:
    do_import(site, SEED)
    outcome = do_import(
        site,
        [["姓名", "手机号码", "积分"], ["王芳", "13800138000", "99"], ["张伟", "13600000000", "5"]],
        mode="upsert",
        key="phone",
    )
    assert (outcome.status, outcome.updated, outcome.created) == ("succeeded", 1, 1)
    assert {r["name"]: r["points"] for r in records_of(site)} == {"王芳": 99, "李娜": 20, "张伟": 5}


def test_update_by_id(site: Site) -> None:
    do_import(site, SEED)
    ids = [r["id"] for r in records_of(site)]
    outcome = do_import(
        site,
        [["ID", "姓名"], [str(ids[1]), "李娜娜"], ["999", "x"]],
        mode="update",
        valid_rows=True,
    )
    assert outcome.key == "id"
    assert (outcome.status, outcome.updated, outcome.failed) == ("partial", 1, 1)
    assert outcome.errors[0]["reason"] == "no member record with this id"
    assert [r["name"] for r in records_of(site)] == ["王芳", "李娜娜"]


def test_mode_and_key_mistakes(site: Site) -> None:
    cases = [
        ({"mode": "update"}, "key", "needs a key"),
        ({"mode": "update", "key": "colour"}, "key", "has no field 'colour'"),
        ({"mode": "update", "key": "email"}, "key", "no column of the file"),
        ({"key": "phone"}, "key", "leave it out to insert"),
        ({"mode": "merge"}, "mode", "is not one of insert, update, upsert"),
    ]
    for options, field, reason in cases:
        with pytest.raises(ValidationFailed) as caught:
            do_import(site, SEED, **options)
        assert caught.value.errors[0]["field"] == field
        assert reason in caught.value.errors[0]["reason"]


def test_dry_run_reports_what_would_happen_and_writes_nothing(site: Site) -> None:
    outcome = do_import(site, SEED, dry_run=True)
    assert (outcome.status, outcome.created, outcome.options.dry_run) == ("succeeded", 2, True)
    assert outcome.detail == "2 rows would be imported (2 created)"
    assert records_of(site) == [] and events_of(site) == []
    bad = do_import(site, [*SEED, ["张伟", "13600000000", "many", "北京"]], dry_run=True)
    assert (bad.status, bad.failed, bad.errors[0]["row"]) == ("failed", 1, 4)
    assert "nothing would be imported" in bad.detail
    partial = do_import(site, [*SEED, ["张伟", "1", "many", ""]], dry_run=True, valid_rows=True)
    assert (partial.status, partial.created) == ("partial", 2)
    assert records_of(site) == []
    assert outcome.id is not None and bad.id is not None  # dry runs keep their reports too


def test_saved_mappings_are_reused_by_name(site: Site) -> None:
    rows = [["客户名称", "联系电话", "内部编号"], ["王芳", "13800138000", "A-1"]]
    with pytest.raises(ValidationFailed):
        do_import(site, rows)  # nothing matches by name or label
    outcome = do_import(
        site,
        rows,
        mapping={"客户名称": "name", "联系电话": "phone", "内部编号": None},
        save_mapping="crm-export",
    )
    assert outcome.status == "succeeded"
    assert [c.as_dict()["field"] for c in outcome.columns] == ["name", "phone", None]
    again = do_import(site, [rows[0], ["李娜", "13900000000", "A-2"]], mapping_name="crm-export")
    assert again.status == "succeeded" and again.created == 1

    async def saved(opened: Site) -> list[dict[str, Any]]:
        return await MappingStore(opened.db).saved("member")

    assert [(m["name"], m["columns"]) for m in run(site, saved)] == [
        ("crm-export", {"客户名称": "name", "联系电话": "phone", "内部编号": None})
    ]
    with pytest.raises(NotFound):
        do_import(site, rows, mapping_name="nope")
    with pytest.raises(ValidationFailed) as caught:
        do_import(site, rows, mapping={"客户名称": "colour"})
    assert caught.value.errors[0]["field"] == "mapping.客户名称"


def test_options_from_text_parameters() -> None:
    options = ImportOptions.from_params(
        {
            "mode": "upsert",
            "key": "phone",
            "dry_run": "true",
            "valid_rows": "0",
            "mapping": "saved",
            "header_row": "2",
        }
    )
    assert (options.mode, options.key, options.dry_run, options.valid_rows) == (
        "upsert",
        "phone",
        True,
        False,
    )
    assert (options.mapping_name, options.header_row) == ("saved", 2)
    assert ImportOptions.from_params({"mapping": '{"A": "name", "B": null}'}).mapping == {
        "A": "name",
        "B": None,
    }
    for params, field in [
        ({"colour": "red"}, "colour"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"header_row": "x"}, "header_row"),
        ({"mapping": "{bad"}, "mapping"),
        ({"mapping": '{"A": 1}'}, "mapping.A"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            ImportOptions.from_params(params)
        assert caught.value.errors[0]["field"] == field


# -- hooks, events and the bulk insert ------------------------------------------------------


def guard_plugin(calls: list[tuple[str, Any]]) -> ModuleType:
    """Refuses members named 'blocked', upper-cases notes, logs every created record."""
    module = ModuleType("guard_plugin")
    module.PLUGIN = PluginInfo(name="guard", version="1.0.0")  # type: ignore[attr-defined]

    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [MEMBER, EntityDef(name="member_log", fields=[FieldDef(name="text", type="text")])]

    @hookimpl
    def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
        if entity.name != "member":
            return
        calls.append(("before", values["name"]))
        if values["name"] == "blocked":
            raise ValidationFailed.field("name", "this member is blocked")
        if values.get("note"):
            values["note"] = values["note"].upper()

    @hookimpl
    async def jimu_after_create(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
        if entity.name == "member":
            calls.append(("after", record["id"]))
            await site.records.create("member_log", {"text": f"joined: {record['name']}"})

    module.jimu_entities = jimu_entities  # type: ignore[attr-defined]
    module.jimu_before_create = jimu_before_create  # type: ignore[attr-defined]
    module.jimu_after_create = jimu_after_create  # type: ignore[attr-defined]
    return module


@pytest.fixture
def guarded(new_site: Callable[..., Site]) -> tuple[Site, list[tuple[str, Any]]]:
    calls: list[tuple[str, Any]] = []
    return new_site(plugins=["guard"], extra_plugins={"guard": guard_plugin(calls)}), calls


def test_imports_run_the_hooks_and_write_the_outbox(guarded: tuple[Site, list[Any]]) -> None:
    site, calls = guarded
    rows = [["姓名", "备注"], ["王芳", "vip"], ["blocked", ""], ["李娜", ""]]
    refused = do_import(site, rows)
    assert refused.status == "failed"
    assert refused.errors == [
        {
            "row": 3,
            "column": "姓名",
            "field": "name",
            "value": "blocked",
            "reason": "this member is blocked",
        }
    ]
    assert records_of(site) == [] and records_of(site, "member_log") == []
    calls.clear()
    partial = do_import(site, rows, valid_rows=True)
    assert (partial.status, partial.created, partial.failed) == ("partial", 2, 1)
    members = records_of(site)
    assert [(m["name"], m["note"]) for m in members] == [("王芳", "VIP"), ("李娜", None)]
    assert [r["text"] for r in records_of(site, "member_log")] == ["joined: 王芳", "joined: 李娜"]
    assert ("after", members[0]["id"]) in calls and ("after", members[1]["id"]) in calls
    created = [e for e in events_of(site) if e["entity"] == "member"]
    assert [e["record_id"] for e in created] == [m["id"] for m in members]
    payload = created[0]["payload"]
    assert (
        payload["note"] == "VIP"
        and payload["balance"] is None
        and payload["id"] == members[0]["id"]
    )


def test_create_many_matches_single_creates(site: Site) -> None:
    row = {
        "name": "王芳",
        "phone": "13800138000",
        "balance": "12.5",
        "joined_at": "2024-11-11T20:00:00+08:00",
        "birthday": "1990-05-01",
        "vip": True,
    }

    async def work(opened: Site) -> tuple[dict[str, Any], list[int], dict[str, Any]]:
        single = await opened.records.create("member", row)
        ids = await opened.records.create_many(
            "member", [{**row, "phone": "1"}, {**row, "phone": "2"}, {**row, "phone": "3"}]
        )
        return single, ids, await opened.records.get("member", ids[0])

    single, ids, first = run(site, work)
    assert ids == [single["id"] + 1, single["id"] + 2, single["id"] + 3]
    for name in ("name", "balance", "joined_at", "birthday", "vip"):
        assert first[name] == single[name]
    events = events_of(site)
    assert [e["record_id"] for e in events] == [single["id"], *ids]
    one, many = events[0]["payload"], events[1]["payload"]
    assert list(one) == list(many)  # same keys in the same order
    assert {
        k: v for k, v in one.items() if k not in {"id", "phone", "created_at", "updated_at"}
    } == {k: v for k, v in many.items() if k not in {"id", "phone", "created_at", "updated_at"}}
    assert many["balance"] == "12.50" and many["joined_at"] == "2024-11-11T12:00:00Z"


def test_create_many_reports_every_bad_row_and_writes_nothing(site: Site) -> None:
    rows = [
        {"name": "a", "points": 1},
        {"name": "b", "points": "x"},
        {"points": 2},
        {"name": "d", "city": "深圳", "email": "nope"},
    ]

    async def work(opened: Site) -> None:
        await opened.records.create_many("member", rows)

    with pytest.raises(ValidationFailed) as caught:
        run(site, work)
    assert caught.value.errors == [
        {"field": "create[1].points", "reason": "Expected `int | null`, got `str`"},
        {"field": "create[2].name", "reason": "is required"},
        {"field": "create[3].city", "reason": "'深圳' is not one of '上海', '北京', '杭州'"},
        {"field": "create[3].email", "reason": "'nope' is not an e-mail address"},
    ]
    assert records_of(site) == [] and events_of(site) == []

    async def taken(opened: Site) -> None:
        await opened.records.create("member", {"name": "a", "phone": "1"})
        await opened.records.create_many(
            "member", [{"name": "b", "phone": "2"}, {"name": "c", "phone": "1"}]
        )

    with pytest.raises(Conflict):
        run(site, taken)
    assert [r["name"] for r in records_of(site)] == ["a"]


def test_create_many_ids_follow_deleted_records(site: Site) -> None:
    async def work(opened: Site) -> tuple[int, list[int]]:
        first = await opened.records.create("member", {"name": "a"})
        await opened.records.delete("member", first["id"])
        return first["id"], await opened.records.create_many(
            "member", [{"name": "b"}, {"name": "c"}]
        )

    deleted, ids = run(site, work)
    assert ids == [deleted + 1, deleted + 2]  # never reused
    assert [r["id"] for r in records_of(site)] == ids


def test_dates_before_1900_and_times_are_kept(site: Site) -> None:
    outcome = do_import(
        site, [["姓名", "生日", "入会时间"], ["老人", "1899-01-01", "2024-03-08T14:30:00Z"]]
    )
    assert outcome.status == "succeeded", outcome.errors
    record = records_of(site)[0]
    assert record["birthday"] == dt.date(1899, 1, 1)
    assert record["joined_at"] == dt.datetime(2024, 3, 8, 14, 30, tzinfo=dt.UTC)


def nul_plugin() -> ModuleType:
    """Puts a NUL character into the note of members named 'nul' (PostgreSQL refuses it)."""
    module = ModuleType("nul_plugin")
    module.PLUGIN = PluginInfo(name="nul", version="1.0.0")  # type: ignore[attr-defined]

    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [MEMBER]

    @hookimpl
    def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
        if values["name"] == "nul":
            values["note"] = "a\x00b"

    module.jimu_entities = jimu_entities  # type: ignore[attr-defined]
    module.jimu_before_create = jimu_before_create  # type: ignore[attr-defined]
    return module


def test_a_row_a_hook_spoils_is_a_problem_not_a_crash(
    new_site: Callable[..., Site], database_url: str | None
) -> None:
    # the plugin's hook writes a NUL character, which PostgreSQL would refuse;
    # the kernel re-checks what hooks set and refuses it on both databases
    site = new_site(plugins=["nul"], extra_plugins={"nul": nul_plugin()})
    outcome = do_import(site, [["姓名"], ["王芳"], ["nul"], ["李娜"]], valid_rows=True)
    assert (outcome.status, outcome.created, outcome.failed) == ("partial", 2, 1)
    assert outcome.errors[0]["row"] == 3
    assert "contains a NUL character" in outcome.errors[0]["reason"]
    assert [r["name"] for r in records_of(site)] == ["王芳", "李娜"]
