"""The import's bulk write (``RecordRepository.create_many``) stores what single creates store.

Its fast path checks rows of Python values with ``msgspec.convert`` instead of
a JSON round trip, turns values into parameters with the storage kinds'
writers, builds each outbox payload from the validated values and writes all
events of a batch in one statement (a ``COPY`` on PostgreSQL). These tests hold it to the slow, plain
path: the same records as :meth:`RecordRepository.create` of each row, an
outbox payload per record equal to the record as read back, the same
problems for the same bad rows, whether values come as Python objects or as
their JSON text.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from jimu.auth import Access, Actor, EntityGrant, RoleDef, acting_as
from jimu.errors import Conflict, ValidationFailed
from jimu.meta import EntityDef, FieldDef
from jimu.site import Site
from jimu.store import records as R
from tests.io.helpers import run

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SYSTEM = ("id", "created_at", "updated_at")


def _fields() -> list[FieldDef]:
    return [
        FieldDef(name="name", type="text", required=True, options={"max_length": 12}),
        FieldDef(name="note", type="long_text"),
        FieldDef(name="email", type="email"),
        FieldDef(name="city", type="select", options={"choices": ["上海", "北京"]}),
        FieldDef(name="points", type="integer", options={"min": 0}),
        FieldDef(name="balance", type="decimal", options={"precision": 8, "scale": 2}),
        FieldDef(name="price", type="currency", options={"currency": "CNY"}),
        FieldDef(name="share", type="percent"),
        FieldDef(name="vip", type="boolean"),
        FieldDef(name="birthday", type="date"),
        FieldDef(name="joined_at", type="datetime"),
        FieldDef(name="mobile", type="phone"),
        FieldDef(name="colours", type="multi_select", options={"choices": ["红", "蓝"]}),
        FieldDef(name="labels", type="tags"),
        FieldDef(name="stars", type="rating"),
        FieldDef(name="opens", type="time"),
    ]


#: Every field's type converts as JSON decodes: the rows go through msgspec.convert.
PLAIN = EntityDef(name="plain_row", fields=_fields())
#: A JSON field and a map point: the rows go the JSON way.
FREE = EntityDef(
    name="free_row",
    fields=[
        *_fields(),
        FieldDef(name="extra", type="json"),
        FieldDef(name="spot", type="geolocation"),
    ],
)
#: The same fields again, for single creates to compare with.
SINGLE = {"plain_row": "plain_single", "free_row": "free_single"}

AS_JSON: list[dict[str, Any]] = [
    {
        "name": "王芳",
        "note": '喜欢\n乌龙茶 "冻顶"',
        "email": "wang@example.cn",
        "city": "上海",
        "points": 120,
        "balance": "1299.5",
        "price": "88.8",
        "share": "12.5",
        "vip": True,
        "birthday": "1990-05-01",
        "joined_at": "2024-11-11T20:00:00+08:00",
        "mobile": "13800138000",
        "colours": ["蓝", "红"],
        "labels": ["a", "b"],
        "stars": 4,
        "opens": "09:30",
    },
    {"name": "李雷", "joined_at": "2024-01-01T00:00:00.000001+00:00", "balance": "0"},
    {"name": "空"},
]


def as_python(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its decimals, dates and times as the Python values the import gives."""
    typed = dict(row)
    for name in ("balance", "price", "share"):
        if name in typed:
            typed[name] = Decimal(typed[name])
    if "birthday" in typed:
        typed["birthday"] = dt.date.fromisoformat(typed["birthday"])
    if "joined_at" in typed:
        moment = dt.datetime.fromisoformat(typed["joined_at"])
        typed["joined_at"] = moment.astimezone(SHANGHAI)  # a named zone, not an offset
    return typed


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    site = new_site()

    async def create(opened: Site) -> None:
        for entity in (PLAIN, FREE):
            await opened.create_entity(entity)
            await opened.create_entity(
                EntityDef(name=SINGLE[entity.name], fields=list(entity.fields))
            )

    run(site, create)
    return site


def _without_system(record: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if name not in SYSTEM}


async def _payloads(opened: Site, entity: str) -> dict[int, Any]:
    rows = await opened.db.fetch(
        "SELECT record_id, kind, payload FROM jimu_event WHERE entity = {} ORDER BY id", [entity]
    )
    assert {row["kind"] for row in rows} == {"created"}
    return {
        int(row["record_id"]): json.loads(row["payload"])
        if isinstance(row["payload"], str)
        else row["payload"]
        for row in rows
    }


@pytest.mark.parametrize("entity", ["plain_row", "free_row"])
@pytest.mark.parametrize("form", ["json", "python"])
def test_bulk_records_and_events_are_those_of_single_creates(
    site: Site, entity: str, form: str
) -> None:
    rows = [as_python(row) for row in AS_JSON] if form == "python" else AS_JSON
    extra = {"extra": {"k": [1, 2.5, None]}, "spot": {"lat": 31.2, "lng": 121.5}}
    if entity == "free_row":
        rows = [{**rows[0], **extra}, *rows[1:]]

    async def work(opened: Site) -> None:
        ids = await opened.records.create_many(entity, rows)
        assert ids == sorted(ids) and len(set(ids)) == len(rows)
        singles = [await opened.records.create(SINGLE[entity], row) for row in rows]
        payloads = await _payloads(opened, entity)
        assert sorted(payloads) == ids  # one created event per record
        for record_id, single in zip(ids, singles, strict=True):
            stored = await opened.records.get(entity, record_id)
            assert _without_system(stored) == _without_system(single)
            # the outbox payload is the record as the API returns it
            assert payloads[record_id] == json.loads(msgspec.json.encode(stored))
        first = await opened.records.get(entity, ids[0])
        assert first["balance"] == Decimal("1299.50")  # the column's scale, as read back
        assert first["mobile"] == "+8613800138000"  # normalised as a single create does
        assert first["joined_at"] == dt.datetime(2024, 11, 11, 12, 0, tzinfo=dt.UTC)

    run(site, work)


def test_bulk_events_carry_the_actor_and_follow_the_records(site: Site) -> None:
    """Each event of a bulk write names who wrote it, as a single create's does, in id order."""
    actor = Actor(kind="token", id=7, name="ops", token_id=3, ip="10.0.0.9", request_id="rq-1")
    columns = "entity, kind, actor_kind, actor_id, actor_name, token_id, ip, request_id"

    async def work(opened: Site) -> None:
        with acting_as(actor):
            ids = await opened.records.create_many("plain_row", AS_JSON)
            single = await opened.records.create("plain_row", AS_JSON[0])
        events = await opened.db.fetch(
            f"SELECT id, record_id, {columns} FROM jimu_event ORDER BY id", []
        )
        assert [int(event["record_id"]) for event in events] == [*ids, single["id"]]
        shared = [{name: event[name] for name in columns.split(", ")} for event in events]
        assert shared == [shared[-1]] * len(events)  # the bulk ones as the single one
        assert shared[-1]["actor_name"] == "ops" and shared[-1]["request_id"] == "rq-1"

    run(site, work)


@pytest.mark.parametrize("form", ["json", "python"])
def test_bad_rows_are_all_named_and_nothing_is_written(site: Site, form: str) -> None:
    bad = [
        AS_JSON[0],
        {"name": "名字太长了名字太长了名字太长了"},
        {"name": "x", "balance": "1.234", "city": "杭州"},
        {"name": "y", "points": -1, "joined_at": "2024-01-01T00:00:00"},
    ]
    rows = [as_python(row) for row in bad] if form == "python" else bad
    if form == "python":
        rows[3] = {**rows[3], "joined_at": dt.datetime(2024, 1, 1)}  # no time zone

    async def work(opened: Site) -> list[str]:
        with pytest.raises(ValidationFailed) as caught:
            await opened.records.create_many(
                "plain_row", rows, prefixes=[f"{n}." for n in range(len(rows))]
            )
        assert await opened.db.fetch("SELECT id FROM plain_row") == []
        return sorted(problem["field"] for problem in caught.value.errors)

    fields = run(site, work)
    assert fields[0] == "1.name"
    assert "2.balance" in fields or "2.city" in fields
    assert any(field.startswith("3.") for field in fields)
    assert not any(field.startswith("0.") for field in fields)


def test_python_and_json_rows_give_the_same_problems(site: Site) -> None:
    bad = [{"name": "x", "balance": "1.234"}, {"name": "y", "city": "杭州", "share": "1.5"}]

    async def problems(opened: Site, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with pytest.raises(ValidationFailed) as caught:
            await opened.records.create_many("plain_row", rows)
        return caught.value.errors

    async def work(opened: Site) -> None:
        assert await problems(opened, [as_python(row) for row in bad]) == await problems(
            opened, bad
        )

    run(site, work)


def test_a_value_json_input_allows_is_not_refused_as_a_python_object(site: Site) -> None:
    """A decimal given for a text field is its text, as it would be in JSON."""

    async def work(opened: Site) -> dict[str, Any]:
        [record_id] = await opened.records.create_many(
            "plain_row", [{"name": "z", "note": Decimal("1.50")}]
        )
        return await opened.records.get("plain_row", record_id)

    assert run(site, work)["note"] == "1.50"


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_import_refreshes_planner_statistics_once_not_per_chunk(
    site: Site, dry_run: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jimu.io import ImportOptions, Source, import_file
    from jimu.io.importer import CHUNK_ROWS
    from jimu.store.records import ANALYZE_AFTER_ROWS
    from tests.io.helpers import csv_bytes

    count = max(2 * CHUNK_ROWS, ANALYZE_AFTER_ROWS) + 7  # three chunks at least
    data = csv_bytes([["name", "points"], *([f"n{n}", n] for n in range(count))])

    async def work(opened: Site) -> list[str]:
        analysed: list[str] = []
        analyze = opened.db.analyze

        async def counted(table: str) -> None:
            analysed.append(table)
            await analyze(table)

        monkeypatch.setattr(opened.db, "analyze", counted)
        outcome = await import_file(
            opened, "plain_row", Source(data, "rows.csv"), ImportOptions(dry_run=dry_run)
        )
        assert outcome.status == "succeeded" and outcome.created == count
        return analysed

    # a dry run is rolled back: nothing to refresh statistics of
    assert run(site, work) == ([] if dry_run else ["plain_row"])


DEFAULTS = EntityDef(
    name="with_default",
    fields=[
        FieldDef(name="name", type="text", required=True),
        FieldDef(
            name="level", type="select", options={"choices": ["普通", "金卡"]}, default="普通"
        ),
        FieldDef(name="points", type="integer", default=10),
        FieldDef(name="note", type="text"),
    ],
)


def test_blank_cells_get_defaults_and_a_blank_required_cell_is_named(
    new_site: Callable[..., Site],
) -> None:
    from jimu.io import ImportOptions, Source, import_file
    from tests.io.helpers import csv_bytes

    site = new_site()
    data = csv_bytes(
        [["name", "level", "points", "note"], ["甲", "", "", ""], ["乙", "金卡", "3", "x"]]
    )
    bad = csv_bytes(
        [["name", "level", "points", "note"], ["", "金卡", "1", "y"], ["丙", "", "", ""]]
    )

    async def work(opened: Site) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        await opened.create_entity(DEFAULTS)
        done = await import_file(opened, "with_default", Source(data, "a.csv"), ImportOptions())
        assert done.status == "succeeded", done.errors
        page = await opened.records.query("with_default", R.ListQuery(sort=[R.SortKey("id")]))
        refused = await import_file(opened, "with_default", Source(bad, "b.csv"), ImportOptions())
        assert refused.status == "failed"
        return page.data, refused.errors

    records, errors = run(site, work)
    assert [(r["name"], r["level"], r["points"], r["note"]) for r in records] == [
        ("甲", "普通", 10, None),
        ("乙", "金卡", 3, "x"),
    ]
    assert [(e["row"], e["field"]) for e in errors] == [(2, "name")]
    assert errors[0]["reason"] == "is required"


KEYED = EntityDef(
    name="keyed_row",
    fields=[
        FieldDef(name="code", type="text", required=True, unique=True),
        FieldDef(name="amount", type="decimal"),
    ],
)


def test_a_refused_bulk_write_inside_a_transaction_leaves_nothing_and_the_transaction_goes_on(
    new_site: Callable[..., Site],
) -> None:
    """A bulk write in the caller's transaction is all or nothing by itself.

    On SQLite it runs in one trip to the connection's thread with its own
    savepoint: a unique value the last statement refuses takes its rows and
    their events back, while what the transaction wrote before stays.
    """
    site = new_site()

    async def work(opened: Site) -> tuple[list[str], list[int]]:
        await opened.create_entity(KEYED)
        async with opened.db.transaction():
            kept = await opened.records.create_many("keyed_row", [{"code": "A", "amount": "1"}])
            with pytest.raises(Conflict, match="code"):
                await opened.records.create_many(
                    "keyed_row", [{"code": "B", "amount": "2"}, {"code": "A", "amount": "3"}]
                )
            more = await opened.records.create_many("keyed_row", [{"code": "C"}])
        page = await opened.records.query("keyed_row", R.ListQuery(sort=[R.SortKey("id")]))
        events = await opened.db.fetch(
            "SELECT record_id FROM jimu_event WHERE entity = 'keyed_row' ORDER BY id", []
        )
        assert [int(event["record_id"]) for event in events] == [*kept, *more]
        return [record["code"] for record in page.data], [record["id"] for record in page.data]

    codes, ids = run(site, work)
    assert codes == ["A", "C"]
    assert ids == sorted(ids)


def test_work_in_sqlite_s_thread_is_one_savepoint_and_needs_a_transaction(
    new_site: Callable[..., Site],
) -> None:
    site = new_site()

    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO jimu_counter (key, value) VALUES ('b', 2)")
        raise ValueError("the work failed")

    async def work(opened: Site) -> list[str] | None:
        if opened.db.dialect != "sqlite":
            with pytest.raises(RuntimeError, match="only on SQLite"):
                async with opened.db.transaction():
                    await opened.db.run_in_sqlite_thread(insert_then_fail)
            return None
        with pytest.raises(RuntimeError, match="inside a transaction"):
            await opened.db.run_in_sqlite_thread(insert_then_fail)
        async with opened.db.transaction():
            await opened.db.execute("INSERT INTO jimu_counter (key, value) VALUES ('a', 1)")
            with pytest.raises(ValueError, match="the work failed"):
                await opened.db.run_in_sqlite_thread(insert_then_fail)
            assert (
                await opened.db.run_in_sqlite_thread(
                    lambda connection: connection.execute("SELECT 40 + 2").fetchone()[0]
                )
                == 42
            )
        rows = await opened.db.fetch("SELECT key FROM jimu_counter WHERE key IN ('a', 'b')", [])
        return [row["key"] for row in rows]

    kept = run(site, work)
    assert kept is None or kept == ["a"]  # None: PostgreSQL, which refuses the call


# -- rows given a column per field (an import's chunks) ---------------------------------------


def _as_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[Any]]:
    """``rows`` as a list of values per field of ``names``; a key left out is ``None``."""
    return {name: [row.get(name) for row in rows] for name in names}


def _prepared_figures(prepared: R.PreparedCreates | None) -> tuple[Any, Any, list[str]]:
    assert prepared is not None
    return prepared.batch, prepared.reads, prepared.labels


def test_rows_given_as_columns_are_prepared_as_the_rows_are(site: Site) -> None:
    """The same parameters, records and labels as ``prepare_creates`` gives for the rows;
    a missing column and a ``None`` are values left out, so defaults apply."""
    rows = [as_python(row) for row in AS_JSON]
    names = sorted({name for row in rows for name in row})

    async def work(opened: Site) -> None:
        await opened.create_entity(DEFAULTS)
        by_rows = opened.records.prepare_creates("plain_row", rows, prefixes=["a.", "b.", "c."])
        by_columns = opened.records.prepare_creates_from_columns(
            "plain_row", _as_columns(rows, names), count=len(rows), prefixes=["a.", "b.", "c."]
        )
        assert _prepared_figures(by_columns) == _prepared_figures(by_rows)
        # "level" and "points" have defaults; "note" has no column at all
        defaults: list[dict[str, Any]] = [
            {"name": "甲", "level": "金卡"},
            {"name": "乙", "points": 3},
        ]
        assert _prepared_figures(
            opened.records.prepare_creates_from_columns(
                "with_default",
                {"name": ["甲", "乙"], "level": ["金卡", None], "points": [None, 3]},
                count=2,
            )
        ) == _prepared_figures(opened.records.prepare_creates("with_default", defaults))
        written = opened.records.prepare_creates_from_columns(
            "with_default", {"name": ["丙"]}, count=1
        )
        assert written is not None
        [record_id] = await opened.records.create_prepared(written)
        stored = await opened.records.get("with_default", record_id)
        assert (stored["level"], stored["points"], stored["note"]) == ("普通", 10, None)

    run(site, work)


def test_columns_the_fast_check_cannot_take_are_left_to_the_rows(site: Site) -> None:
    """``None`` wherever the rows' own path must decide (and name the problem); the
    types' own checks raise the very problems that path raises."""
    clerk = RoleDef(
        name="clerk",
        grants={"plain_row": EntityGrant(actions=["create"], fields={"note": "read"})},
    )

    async def work(opened: Site) -> None:
        prepare = opened.records.prepare_creates_from_columns
        # a required field without a value, a value of the wrong type, an unknown field
        assert prepare("plain_row", {"name": ["x", None]}, count=2) is None
        assert prepare("plain_row", {"name": ["x"], "points": ["3"]}, count=1) is None
        assert prepare("plain_row", {"name": ["x"], "nope": [1]}, count=1) is None
        # a JSON field: the rows go the JSON way
        assert prepare("free_row", {"name": ["x"]}, count=1) is None
        # an actor with limits on the fields it may write
        with acting_as(Actor(kind="user", id=5, name="clerk"), Access(None, roles=[clerk])):
            assert prepare("plain_row", {"name": ["x"]}, count=1) is None
        with pytest.raises(ValueError, match="every column needs 2 values"):
            prepare("plain_row", {"name": ["x"]}, count=2)
        # the types' own checks: the problems the rows give
        bad: list[dict[str, Any]] = [
            {"name": "x", "balance": Decimal("1.234")},
            {"name": "y", "city": "杭州"},
        ]
        with pytest.raises(ValidationFailed) as by_rows:
            opened.records.prepare_creates("plain_row", bad)
        with pytest.raises(ValidationFailed) as by_columns:
            prepare("plain_row", _as_columns(bad, ["name", "balance", "city"]), count=2)
        assert by_columns.value.errors == by_rows.value.errors
        assert [problem["field"] for problem in by_columns.value.errors] == [
            "create[0].balance",
            "create[1].city",
        ]

    run(site, work)


def test_an_import_a_column_at_a_time_writes_what_it_writes_a_row_at_a_time(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import hands clean chunks over as columns; the records and events are those
    of the rows' own path (blank cells, defaults and every type of ``plain_row``)."""
    from jimu.io import ImportOptions, Source, import_file
    from tests.io.helpers import csv_bytes

    header = ["name", "note", "email", "city", "points", "balance", "vip", "birthday"]
    cells = [
        ["王芳", "乌龙茶", "wang@example.cn", "上海", "120", "1299.5", "是", "1990-05-01"],
        ["李雷", "", "", "", "", "0", "否", ""],
        ["空", "", "", "北京", "7", "", "", "2001-02-03"],
    ]
    defaults = [["name", "level", "points"], ["甲", "", ""], ["乙", "金卡", "3"]]

    async def imported(opened: Site, entity: str, data: bytes) -> list[Any]:
        await opened.db.execute(f"DELETE FROM {entity}")
        before = await opened.db.fetch_one("SELECT COALESCE(MAX(id), 0) AS n FROM jimu_event")
        assert before is not None
        outcome = await import_file(opened, entity, Source(data, "a.csv"), ImportOptions())
        assert outcome.status == "succeeded", outcome.errors
        page = await opened.records.query(entity, R.ListQuery(sort=[R.SortKey("id")]))
        events = await opened.db.fetch(
            "SELECT payload FROM jimu_event WHERE id > {} ORDER BY id", [before["n"]]
        )
        loaded = [
            json.loads(e["payload"]) if isinstance(e["payload"], str) else e["payload"]
            for e in events
        ]
        return [_without_system(r) for r in page.data] + [_without_system(p) for p in loaded]

    async def work(opened: Site) -> None:
        await opened.create_entity(DEFAULTS)
        files = [("plain_row", csv_bytes([header, *cells])), ("with_default", csv_bytes(defaults))]
        by_columns = [await imported(opened, entity, data) for entity, data in files]
        calls = 0
        original = R.RecordRepository.prepare_creates_from_columns

        def counted(*args: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            assert original(*args, **kwargs) is not None  # the columns were taken above
            return None  # and now the rows decide

        monkeypatch.setattr(R.RecordRepository, "prepare_creates_from_columns", counted)
        by_rows = [await imported(opened, entity, data) for entity, data in files]
        assert calls == 2
        assert by_columns == by_rows
        assert by_columns[1][:2] == [
            {"name": "甲", "level": "普通", "points": 10, "note": None},
            {"name": "乙", "level": "金卡", "points": 3, "note": None},
        ]

    run(site, work)
