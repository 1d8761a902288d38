"""child_table: records of another entity written, read and deleted with their parent."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import pytest

from jimu.meta import EntityDef, FieldDef, PluginInfo
from jimu.site import Site
from jimu_sdk import ValidationFailed, hookimpl
from jimu_sdk.testing import site_client
from tests.fields.helpers import fmt, parse

LINES = {"entity": "order_line", "parent_field": "order", "order_field": "line_no"}


def shop_plugin(calls: list[tuple[str, Any]]) -> ModuleType:
    """Orders with lines (a formula per line, rollups over the lines) and hooks on lines."""
    module = ModuleType("shop_plugin")
    module.PLUGIN = PluginInfo(name="shop", version="1.0.0")  # type: ignore[attr-defined]

    @hookimpl
    def jimu_entities() -> list[EntityDef]:
        return [
            EntityDef(
                name="sales_order",
                fields=[
                    FieldDef(name="no", type="text", required=True),
                    FieldDef(name="lines", type="child_table", options=LINES),
                    FieldDef(
                        name="total",
                        type="rollup",
                        options={"link": "lines", "op": "sum", "field": "amount"},
                    ),
                    FieldDef(
                        name="line_count",
                        type="rollup",
                        options={"entity": "order_line", "link": "order"},
                    ),
                ],
            ),
            EntityDef(
                name="order_line",
                fields=[
                    FieldDef(
                        name="order",
                        type="link",
                        required=True,
                        options={"target": "sales_order"},
                    ),
                    FieldDef(name="line_no", type="integer"),
                    FieldDef(name="sku", type="text", required=True),
                    FieldDef(name="qty", type="integer", options={"min": 1}),
                    FieldDef(name="price", type="decimal"),
                    FieldDef(
                        name="amount",
                        type="formula",
                        options={
                            "rule": {"*": [{"var": "qty"}, {"var": "price"}]},
                            "returns": "decimal",
                        },
                    ),
                ],
            ),
        ]

    @hookimpl
    def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
        if entity.name == "order_line":
            calls.append(("before_create", values["sku"]))
            if values["sku"] == "recalled":
                raise ValidationFailed.field("sku", "this product was recalled")
            values["sku"] = values["sku"].upper()

    @hookimpl
    def jimu_after_delete(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
        calls.append(("after_delete", (entity.name, record["id"])))

    for function in (jimu_entities, jimu_before_create, jimu_after_delete):
        setattr(module, function.__name__, function)
    return module


@pytest.fixture
def calls() -> list[tuple[str, Any]]:
    return []


@pytest.fixture
def client(new_site: Callable[..., Site], calls: list[tuple[str, Any]]) -> Iterator[Any]:
    site = new_site(plugins=["shop"], extra_plugins={"shop": shop_plugin(calls)})
    with site_client(site) as client:
        yield client


def _order(client: Any, no: str, lines: Any) -> dict[str, Any]:
    response = client.post("/api/v1/records/sales_order", json={"no": no, "lines": lines})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _mine(line: Mapping[str, Any]) -> tuple[Any, ...]:
    return (line["line_no"], line["sku"], line["qty"], line["price"], line["amount"])


def _events(client: Any) -> list[tuple[str, str, int]]:
    site: Site = client.app.state.site
    rows = client.blocking_portal.call(
        site.db.fetch, "SELECT entity, kind, record_id FROM jimu_event ORDER BY id"
    )
    return [(row["entity"], row["kind"], int(row["record_id"])) for row in rows]


def _counts(client: Any) -> tuple[int, int]:
    def total(entity: str) -> int:
        page = client.get(f"/api/v1/records/{entity}", params={"count": "exact", "limit": 1})
        return int(page.json()["page"]["total"])

    return total("sales_order"), total("order_line")


def test_rows_are_written_with_the_parent_and_read_in_order(
    client: Any, calls: list[tuple[str, Any]]
) -> None:
    order = _order(
        client,
        "A1",
        [
            {"sku": "tea", "qty": 2, "price": "10.50"},
            {"sku": "cup", "qty": 1, "price": "3"},
        ],
    )
    assert [_mine(line) for line in order["lines"]] == [
        (1, "TEA", 2, "10.50", "21.00"),  # the hook and the formula ran on each row
        (2, "CUP", 1, "3.00", "3.00"),
    ]
    assert all(line["order"] == order["id"] and line["id"] for line in order["lines"])
    assert (order["total"], order["line_count"]) == ("24.00", 2)
    again = client.get(f"/api/v1/records/sales_order/{order['id']}").json()
    assert again["lines"] == order["lines"]
    assert calls == [("before_create", "tea"), ("before_create", "cup")]
    # each child is a record like any other, with its own events, before the parent's
    assert _events(client) == [
        ("order_line", "created", order["lines"][0]["id"]),
        ("order_line", "created", order["lines"][1]["id"]),
        ("sales_order", "created", order["id"]),
    ]
    empty = _order(client, "A2", None)
    assert (empty["lines"], empty["total"], empty["line_count"]) == (None, "0.00", 0)


def test_update_changes_rows_with_ids_creates_the_others_and_deletes_the_missing(
    client: Any,
) -> None:
    order = _order(
        client,
        "A1",
        [{"sku": "a", "qty": 1, "price": "1"}, {"sku": "b", "qty": 1, "price": "2"}],
    )
    first, second = order["lines"]
    # a row as read (times, computed fields, the link back) can be sent back as it is
    response = client.patch(
        f"/api/v1/records/sales_order/{order['id']}",
        json={"lines": [{**second, "qty": 5}, {"sku": "c", "qty": 1, "price": "4"}]},
    )
    assert response.status_code == 200, response.text
    lines = response.json()["lines"]
    assert lines[0]["id"] == second["id"]  # kept its id
    assert [_mine(line) for line in lines] == [
        (1, "B", 5, "2.00", "10.00"),
        (2, "C", 1, "4.00", "4.00"),
    ]
    assert response.json()["total"] == "14.00"
    assert client.get(f"/api/v1/records/order_line/{first['id']}").status_code == 404
    events = _events(client)[3:]
    assert events == [
        ("order_line", "deleted", first["id"]),
        ("order_line", "updated", second["id"]),
        ("order_line", "created", lines[1]["id"]),
        ("sales_order", "updated", order["id"]),
    ]
    # the same rows again change nothing: no event, no new updated_at
    same = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"lines": lines})
    assert same.json()["updated_at"] == response.json()["updated_at"]
    assert len(_events(client)) == 7
    # leaving lines out of a PATCH leaves them alone; null deletes them all
    renamed = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"no": "A1b"})
    assert renamed.json()["lines"] == lines
    cleared = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"lines": None})
    assert cleared.json()["lines"] is None
    assert _counts(client) == (1, 0)


def test_bad_rows_are_a_422_naming_the_path_and_nothing_is_written(client: Any) -> None:
    order = _order(client, "A1", [{"sku": "a", "qty": 1}])
    before = _counts(client)

    def refused(body: Any, method: str = "post", url: str = "/api/v1/records/sales_order") -> Any:
        response = getattr(client, method)(url, json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        return response.json()["errors"]

    assert refused({"no": "B", "lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c", "qty": 0}]}) == [
        {"field": "lines[2].qty", "reason": "Expected `int` >= 1"}
    ]
    assert refused({"no": "B", "lines": [{"qty": 1}, {"sku": "b", "colour": "red"}]}) == [
        {"field": "lines[0].sku", "reason": "is required"},
        {"field": "lines[1].colour", "reason": "unknown field"},
    ]
    assert refused({"no": "B", "lines": [{"sku": "ok"}, {"sku": "recalled"}]}) == [
        {"field": "lines[1].sku", "reason": "this product was recalled"}
    ]
    assert refused({"no": "B", "lines": "tea"})[0]["field"] == "lines"
    other = _order(client, "C", [{"sku": "x"}])
    url = f"/api/v1/records/sales_order/{order['id']}"
    assert refused({"lines": [{"id": other["lines"][0]["id"], "sku": "y"}]}, "patch", url) == [
        {
            "field": "lines[0].id",
            "reason": f"order_line {other['lines'][0]['id']} is not a row of this sales_order",
        }
    ]
    assert refused({"lines": [{"sku": "y", "order": other["id"]}]}, "patch", url) == [
        {
            "field": "lines[0].order",
            "reason": "is the link to this sales_order; it cannot point elsewhere",
        }
    ]
    assert refused({"lines": [{"id": "one", "sku": "y"}]}, "patch", url) == [
        {"field": "lines[0].id", "reason": "must be the id of a row, or left out"}
    ]
    bulk = refused(
        {"create": [{"no": "D", "lines": [{"sku": "d"}]}, {"no": "E", "lines": [{"qty": -1}]}]},
        url="/api/v1/records/sales_order/bulk",
    )
    assert bulk == [{"field": "create[1].lines[0].qty", "reason": "Expected `int` >= 1"}]
    assert _counts(client) == (before[0] + 1, before[1] + 1)  # only order C and its line


def test_deleting_the_parent_deletes_its_children_with_events(
    client: Any, calls: list[tuple[str, Any]]
) -> None:
    order = _order(client, "A1", [{"sku": "a"}, {"sku": "b"}])
    kept = _order(client, "A2", [{"sku": "c"}])
    ids = [line["id"] for line in order["lines"]]
    deleted = client.delete(f"/api/v1/records/sales_order/{order['id']}")
    assert deleted.status_code == 200
    assert [line["id"] for line in deleted.json()["lines"]] == ids  # what was deleted
    assert _events(client)[-3:] == [
        ("order_line", "deleted", ids[0]),
        ("order_line", "deleted", ids[1]),
        ("sales_order", "deleted", order["id"]),
    ]
    assert calls[-3:] == [
        ("after_delete", ("order_line", ids[0])),
        ("after_delete", ("order_line", ids[1])),
        ("after_delete", ("sales_order", order["id"])),
    ]
    assert _counts(client) == (1, 1)
    assert client.get(f"/api/v1/records/sales_order/{kept['id']}").json()["lines"][0]["sku"] == "C"


def test_a_list_reads_the_rows_of_a_page_with_one_query(client: Any) -> None:
    for number in range(12):
        _order(client, f"N{number}", [{"sku": f"s{number}-{line}"} for line in range(3)])
    _order(client, "empty", None)
    site: Site = client.app.state.site
    statements: list[str] = []
    fetch = site.db.fetch

    async def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return await fetch(sql, *args, **kwargs)

    site.db.fetch = counting  # type: ignore[method-assign]
    try:
        page = client.get(
            "/api/v1/records/sales_order",
            params={"fields": "no,lines", "limit": 10, "count": "none"},
        )
        without = client.get(
            "/api/v1/records/sales_order", params={"fields": "no", "limit": 10, "count": "none"}
        )
    finally:
        site.db.fetch = fetch  # type: ignore[method-assign]
    assert page.status_code == 200 and without.status_code == 200
    data = page.json()["data"]
    assert [len(record["lines"]) for record in data] == [3] * 10
    assert [line["sku"] for line in data[4]["lines"]] == ["S4-0", "S4-1", "S4-2"]
    assert "lines" not in without.json()["data"][0]
    records = [sql for sql in statements if '"sales_order"' in sql or '"order_line"' in sql]
    child_reads = [sql for sql in records if 'FROM "order_line" WHERE "order" IN' in sql]
    assert len(records) == 3 and len(child_reads) == 1, records  # page, its children; the list


def test_filters_on_rows_and_rollups_agree_with_the_python_engine(client: Any) -> None:
    _order(client, "big", [{"sku": "a", "qty": 3, "price": "10"}])
    _order(client, "small", [{"sku": "b", "qty": 1, "price": "2"}, {"sku": "c", "price": "1"}])
    _order(client, "none", None)
    records = client.get("/api/v1/records/sales_order").json()["data"]
    site: Site = client.app.state.site
    for rule in [
        {"missing": ["lines"]},
        {"!": {"missing": ["lines"]}},
        {">": [{"var": "total"}, 10]},
        {">=": [{"var": "line_count"}, 2]},
        {"in": [1, {"var": "lines"}]},
    ]:
        response = client.get("/api/v1/records/sales_order", params={"filter": json.dumps(rule)})
        assert response.status_code == 200, (rule, response.text)
        in_sql = [record["no"] for record in response.json()["data"]]
        assert in_sql == [r["no"] for r in records if site.rules.apply(rule, r)], rule
    found = client.get(
        "/api/v1/records/sales_order", params={"filter": json.dumps({"missing": ["lines"]})}
    )
    assert [record["no"] for record in found.json()["data"]] == ["none"]


def test_import_cells_and_export_cells() -> None:
    rows = [{"sku": "A", "qty": 2}]
    assert parse("child_table", '[{"sku": "A", "qty": 2}]', **LINES) == rows
    assert parse("child_table", " ", **LINES) is None
    for bad in ("A x2", '{"sku": "A"}', "[1, 2]", 3):
        with pytest.raises(ValueError, match="JSON array of objects"):
            parse("child_table", bad, **LINES)
    read = [
        {
            "id": 7,
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "order": 3,
            "line_no": 1,
            "sku": "茶",
            "qty": 2,
        }
    ]
    assert fmt("child_table", read, **LINES) == '[{"sku":"茶","qty":2}]'
    assert fmt("child_table", None, **LINES) is None


def test_export_then_import_the_rows(client: Any) -> None:
    _order(client, "A1", [{"sku": "tea", "qty": 2, "price": "1.5"}, {"sku": "cup"}])
    exported = client.get(
        "/api/v1/records/sales_order/export", params={"fields": "no,lines", "header": "name"}
    )
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == ["no", "lines"]
    lines = json.loads(rows[1][1])
    assert lines == [
        {"sku": "TEA", "qty": 2, "price": "1.50", "amount": "3.00"},
        {"sku": "CUP", "qty": None, "price": None, "amount": "0.00"},  # null counts as 0
    ]
    copy = io.StringIO()
    csv.writer(copy).writerows([["no", "lines"], ["A2", rows[1][1]]])
    imported = client.post(
        "/api/v1/records/sales_order/import",
        params={"filename": "orders.csv"},
        content=copy.getvalue().encode(),
    )
    assert imported.status_code == 200, imported.text
    found = client.get(
        "/api/v1/records/sales_order", params={"filter": json.dumps({"==": [{"var": "no"}, "A2"]})}
    ).json()["data"][0]
    assert [_mine(line) for line in found["lines"]] == [
        (1, "TEA", 2, "1.50", "3.00"),
        (2, "CUP", None, None, "0.00"),
    ]
    bad = client.post(
        "/api/v1/records/sales_order/import",
        params={"filename": "orders.csv"},
        content=b"no,lines\r\nA3,tea x2\r\n",
    )
    assert bad.status_code == 422
    [error] = bad.json()["errors"]
    assert (error["row"], error["field"]) == (2, "lines")
    assert "JSON array of objects" in error["reason"]
    worse = client.post(
        "/api/v1/records/sales_order/import",
        params={"filename": "orders.csv"},
        content=b'no,lines\r\nA4,"[{""qty"": 0}]"\r\n',
    )
    assert worse.status_code == 422
    assert [(e["row"], e["field"]) for e in worse.json()["errors"]] == [(2, "lines[0].qty")]


def test_bad_definitions(new_site: Callable[..., Site]) -> None:
    line = {
        "name": "line",
        "fields": [
            {"name": "order", "type": "link", "options": {"target": "bad"}},
            {"name": "no", "type": "text"},
        ],
    }
    site = new_site()
    with site_client(site) as client:
        assert client.post("/api/v1/meta/entities", json={"name": "bad"}).status_code == 201
        assert client.post("/api/v1/meta/entities", json=line).status_code == 201
        cases = [
            ({"entity": "line"}, "options.parent_field", "needs its child entity"),
            ({"entity": "ghost", "parent_field": "order"}, "options.entity", "unknown entity"),
            ({"entity": "line", "parent_field": "no"}, "options.parent_field", "line.no is not"),
            (
                {"entity": "line", "parent_field": "order", "order_field": "no"},
                "options.order_field",
                "line.no is not an integer field",
            ),
            ({"entity": "line", "parent_field": "order", "z": 1}, "options", "unknown option 'z'"),
        ]
        for options, path, words in cases:
            response = client.post(
                "/api/v1/meta/entities/bad/fields",
                json={"name": "lines", "type": "child_table", "options": options},
            )
            assert response.status_code == 422, response.text
            errors = response.json()["errors"]
            assert any(
                e["field"] == f"fields[0].{path}" and words in e["reason"] for e in errors
            ), errors
        assert client.get("/api/v1/meta/entities/bad").json().get("fields", []) == []


def test_openapi_describes_rows_as_child_records(client: Any) -> None:
    schemas = client.get("/schema").json()["components"]["schemas"]
    read = schemas["SalesOrderRecord"]["properties"]["lines"]["anyOf"][0]
    assert read == {"type": "array", "items": {"$ref": "#/components/schemas/OrderLineRecord"}}
    write = schemas["SalesOrderCreate"]["properties"]["lines"]["anyOf"][0]
    assert write["items"]["allOf"][0] == {"$ref": "#/components/schemas/OrderLinePatch"}
