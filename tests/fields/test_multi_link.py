"""multi_link: many-to-many links kept in a junction table the kernel manages."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jimu.fields.relations import junction_table
from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.fields.helpers import accept, assert_bad_definition, assert_refused, fmt, parse, reason

JUNCTION = junction_table("sales_order", "tags")


@pytest.fixture
def client(new_site: Callable[..., Site]) -> Iterator[Any]:
    """Tags with a name and a weight; orders with a multi-link to tags and rollups over it."""
    site = new_site()
    with site_client(site) as client:
        for body in (
            {
                "name": "tag",
                "title_field": "name",
                "fields": [{"name": "name", "type": "text"}, {"name": "weight", "type": "integer"}],
            },
            {
                "name": "sales_order",
                "fields": [
                    {"name": "no", "type": "text"},
                    {"name": "tags", "type": "multi_link", "options": {"target": "tag"}},
                    {"name": "tag_count", "type": "rollup", "options": {"link": "tags"}},
                    {
                        "name": "tag_weight",
                        "type": "rollup",
                        "options": {"link": "tags", "op": "sum", "field": "weight"},
                    },
                    {
                        "name": "heaviest",
                        "type": "rollup",
                        "options": {"link": "tags", "op": "max", "field": "weight"},
                    },
                ],
            },
        ):
            response = client.post("/api/v1/meta/entities", json=body)
            assert response.status_code == 201, response.text
        yield client


def _tag(client: Any, name: str, weight: int = 1) -> int:
    response = client.post("/api/v1/records/tag", json={"name": name, "weight": weight})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def _order(client: Any, no: str, tags: Any) -> dict[str, Any]:
    response = client.post("/api/v1/records/sales_order", json={"no": no, "tags": tags})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _site(client: Any) -> Site:
    site: Site = client.app.state.site
    return site


def _junction_rows(client: Any) -> list[tuple[int, int]]:
    site = _site(client)
    rows = client.blocking_portal.call(
        site.db.fetch, f'SELECT source_id, target_id FROM "{JUNCTION}" ORDER BY 1, 2'
    )
    return [(int(row["source_id"]), int(row["target_id"])) for row in rows]


def test_values_collapse_and_sort() -> None:
    assert accept("multi_link", [7, 3, 7], target="tag") == [3, 7]
    assert accept("multi_link", ["vip", 2, " vip "], target="tag") == [2, "vip"]
    assert accept("multi_link", [], target="tag") == []
    assert "Expected `int` >= 1" in reason("multi_link", [0], target="tag")
    assert "Expected `array`" in reason("multi_link", 3, target="tag")
    assert "Expected `int | str`" in reason("multi_link", [1.5], target="tag")
    assert reason("multi_link", [" "], target="tag").startswith("holds a blank name")
    assert "length <= 2" in reason("multi_link", [1, 2, 3], target="tag", max_count=2)


def test_write_replaces_the_set_and_reads_the_sorted_ids(client: Any) -> None:
    vip, new, old = _tag(client, "vip", 3), _tag(client, "new", 4), _tag(client, "老客", 5)
    order = _order(client, "A1", [old, vip, old])
    assert order["tags"] == [vip, old]  # returned by the write itself, repeats collapsed
    assert client.get(f"/api/v1/records/sales_order/{order['id']}").json()["tags"] == [vip, old]
    assert _junction_rows(client) == [(order["id"], vip), (order["id"], old)]
    # a write replaces the set; names are looked up by the target's title field
    patched = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"tags": ["new"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == [new]
    assert _junction_rows(client) == [(order["id"], new)]
    # the same set again changes nothing: no new updated_at
    again = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"tags": [new]})
    assert again.json()["updated_at"] == patched.json()["updated_at"]
    # an empty list (or null) clears the links: no links read null
    cleared = client.patch(f"/api/v1/records/sales_order/{order['id']}", json={"tags": []})
    assert cleared.json()["tags"] is None
    assert _junction_rows(client) == []
    # the outbox says what changed
    events = client.blocking_portal.call(
        _site(client).db.fetch,
        "SELECT kind, payload FROM jimu_event WHERE entity = 'sales_order' ORDER BY id",
    )
    payloads = [(row["kind"], json.loads(row["payload"])) for row in events]
    assert payloads[0][1]["tags"] == [vip, old]
    assert payloads[1] == ("updated", {"before": {"tags": [vip, old]}, "after": {"tags": [new]}})
    assert payloads[-1][1]["after"] == {"tags": None}


def test_bad_links_are_a_422_naming_the_field_and_nothing_is_written(client: Any) -> None:
    vip = _tag(client, "vip")
    _tag(client, "twin")
    _tag(client, "twin")
    assert_refused(client, {"tags": [vip, 999]}, "tags", "no tag record with id 999", "sales_order")
    assert_refused(
        client, {"tags": ["gold"]}, "tags", "no tag record has name 'gold'", "sales_order"
    )
    assert_refused(
        client,
        {"tags": ["twin"]},
        "tags",
        "2 tag records have name 'twin'; give the id of the one you mean",
        "sales_order",
    )
    assert_refused(client, {"tags": [0]}, "tags[0]", "Expected `int` >= 1", "sales_order")
    assert_refused(client, {"tags": "vip"}, "tags", "Expected `array | null`", "sales_order")
    bulk = client.post(
        "/api/v1/records/sales_order/bulk",
        json={"create": [{"no": "ok", "tags": [vip]}, {"no": "bad", "tags": [vip, 998]}]},
    )
    assert bulk.status_code == 422, bulk.text
    assert bulk.json()["errors"] == [
        {"field": "create[1].tags", "reason": "no tag record with id 998"}
    ]
    assert client.get("/api/v1/records/sales_order").json()["data"] == []
    assert _junction_rows(client) == []


def test_required_needs_a_link(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        client.post("/api/v1/meta/entities", json={"name": "tag", "fields": []})
        response = client.post(
            "/api/v1/meta/entities",
            json={
                "name": "post",
                "fields": [
                    {
                        "name": "tags",
                        "type": "multi_link",
                        "required": True,
                        "options": {"target": "tag"},
                    }
                ],
            },
        )
        assert response.status_code == 201, response.text
        assert_refused(client, {}, "tags", "is required", "post")
        assert_refused(client, {"tags": []}, "tags", "needs at least one linked record", "post")


def test_filters_in_and_missing_agree_with_the_python_engine(client: Any) -> None:
    vip, new, old = _tag(client, "vip"), _tag(client, "new"), _tag(client, "old")
    _order(client, "A", [vip, new])
    _order(client, "B", [new])
    _order(client, "C", None)
    _order(client, "D", [old, vip])
    records = client.get("/api/v1/records/sales_order", params={"limit": 100}).json()["data"]
    site = _site(client)
    rules = [
        {"in": [vip, {"var": "tags"}]},
        {"in": [new, {"var": "tags"}]},
        {"in": [999, {"var": "tags"}]},
        {"in": [float(vip), {"var": "tags"}]},
        {"in": [str(vip), {"var": "tags"}]},  # text is never === a number
        {"!": {"in": [vip, {"var": "tags"}]}},
        {"missing": ["tags"]},
        {"!": {"missing": ["tags"]}},
        {"and": [{"in": [vip, {"var": "tags"}]}, {"in": [old, {"var": "tags"}]}]},
        {">=": [{"var": "tag_count"}, 2]},
    ]
    for rule in rules:
        response = client.get(
            "/api/v1/records/sales_order", params={"filter": json.dumps(rule), "fields": "no"}
        )
        assert response.status_code == 200, (rule, response.text)
        in_sql = [record["no"] for record in response.json()["data"]]
        in_python = [record["no"] for record in records if site.rules.apply(rule, record)]
        assert in_sql == in_python, rule
    assert [
        r["no"]
        for r in client.get(
            "/api/v1/records/sales_order",
            params={"filter": json.dumps({"in": [vip, {"var": "tags"}]}), "fields": "no"},
        ).json()["data"]
    ] == ["A", "D"]
    refused = client.get(
        "/api/v1/records/sales_order",
        params={"filter": json.dumps({"in": [[vip], {"var": "tags"}]})},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "filter"
    sort = client.get("/api/v1/records/sales_order", params={"sort": "tags"})
    assert sort.status_code == 422


def test_rollups_over_the_links(client: Any) -> None:
    light, heavy = _tag(client, "light", 2), _tag(client, "heavy", 9)
    order = _order(client, "A", [light, heavy])
    none = _order(client, "B", None)
    assert (order["tag_count"], order["tag_weight"], order["heaviest"]) == (2, 11, 9)
    assert (none["tag_count"], none["tag_weight"], none["heaviest"]) == (0, 0, None)
    client.patch(f"/api/v1/records/tag/{heavy}", json={"weight": 4})
    assert client.get(f"/api/v1/records/sales_order/{order['id']}").json()["tag_weight"] == 6


def test_deleting_a_record_removes_its_links_and_the_links_to_it(client: Any) -> None:
    vip, new = _tag(client, "vip"), _tag(client, "new")
    first = _order(client, "A", [vip, new])
    second = _order(client, "B", [vip])
    assert client.delete(f"/api/v1/records/sales_order/{first['id']}").status_code == 200
    assert _junction_rows(client) == [(second["id"], vip)]
    assert client.delete(f"/api/v1/records/tag/{vip}").status_code == 200
    assert _junction_rows(client) == []
    assert client.get(f"/api/v1/records/sales_order/{second['id']}").json()["tags"] is None


def test_import_cells_and_export_cells() -> None:
    assert parse("multi_link", "3, 7", target="tag") == [3, 7]
    assert parse("multi_link", "vip、老客; 12", target="tag") == ["vip", "老客", 12]
    assert parse("multi_link", 5.0, target="tag") == [5]
    assert parse("multi_link", "[1, 2]", target="tag") == [1, 2]
    assert parse("multi_link", "  ", target="tag") is None
    assert fmt("multi_link", [3, 7], target="tag") == "3, 7"
    assert fmt("multi_link", None, target="tag") is None


def test_import_by_names_and_export_the_ids(client: Any) -> None:
    vip, new = _tag(client, "vip"), _tag(client, "new")
    data = f'no,tags\r\nA,"vip, new"\r\nB,{new}\r\nC,\r\n'
    response = client.post(
        "/api/v1/records/sales_order/import", params={"filename": "o.csv"}, content=data.encode()
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 3
    records = client.get("/api/v1/records/sales_order", params={"fields": "no,tags"}).json()
    assert [(r["no"], r["tags"]) for r in records["data"]] == [
        ("A", [vip, new]),
        ("B", [new]),
        ("C", None),
    ]
    bad = client.post(
        "/api/v1/records/sales_order/import",
        params={"filename": "o.csv"},
        content=b"no,tags\r\nD,gold\r\n",
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"] == [
        {
            "row": 2,
            "column": "tags",
            "field": "tags",
            "value": "gold",
            "reason": "no tag record has name 'gold'",
        }
    ]
    exported = client.get(
        "/api/v1/records/sales_order/export", params={"fields": "no,tags", "header": "name"}
    )
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows == [["no", "tags"], ["A", f"{vip}, {new}"], ["B", str(new)], ["C", ""]]


def test_the_junction_table_follows_the_field(client: Any) -> None:
    site = _site(client)
    tables = client.blocking_portal.call(site.db.table_names)
    assert JUNCTION in tables
    vip = _tag(client, "vip")
    _order(client, "A", [vip])
    entity = client.get("/api/v1/meta/entities/sales_order").json()
    kept = [f for f in entity["fields"] if f["name"] in ("no",)]
    response = client.patch("/api/v1/meta/entities/sales_order", json={"fields": kept})
    assert response.status_code == 200, response.text
    pending = client.get("/api/v1/meta/migrations").json()
    drops = [c for c in pending["data"] if c["kind"] == "drop junction"]
    assert drops and drops[0]["destructive"] and drops[0]["values_at_risk"] == 1
    assert JUNCTION in client.blocking_portal.call(
        site.db.table_names
    )  # nothing dropped on its own
    client.blocking_portal.call(site.apply_pending)
    assert JUNCTION not in client.blocking_portal.call(site.db.table_names)


def test_bad_definitions(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "f", "type": "multi_link"},
        "fields[0].options.target",
        "needs the name of its target entity",
    )
    assert_bad_definition(
        new_site,
        {"name": "f", "type": "multi_link", "options": {"target": "ghost"}},
        "fields[0].options.target",
        "unknown entity 'ghost'",
    )
    assert_bad_definition(
        new_site,
        {"name": "f", "type": "multi_link", "unique": True, "options": {"target": "bad"}},
        "fields[0].unique",
        "has no column to index",
    )


def test_openapi_shows_ids(client: Any) -> None:
    schemas = client.get("/schema").json()["components"]["schemas"]
    read = schemas["SalesOrderRecord"]["properties"]["tags"]
    assert {"type": "array", "items": {"type": "integer"}} in read["anyOf"]
    created = json.dumps(schemas["SalesOrderCreate"]["properties"]["tags"])
    assert '"integer"' in created and '"string"' in created


def test_in_over_any_json_field_agrees_with_the_python_engine(
    new_site: Callable[..., Site],
) -> None:
    """The SQL form of ``in`` over JSON (which multi-links filter with) for every kind of value."""
    values: list[Any] = [
        [1, 2.5, "a", True, None],
        ["b", False, {"x": 1}, [1]],
        [],
        "abc true 1",
        5,
        {"a": 1},
        True,
        None,
    ]
    site = new_site()
    with site_client(site) as client:
        response = client.post(
            "/api/v1/meta/entities",
            json={"name": "doc", "fields": [{"name": "data", "type": "json"}]},
        )
        assert response.status_code == 201, response.text
        for value in values:
            assert client.post("/api/v1/records/doc", json={"data": value}).status_code == 201
        records = client.get("/api/v1/records/doc").json()["data"]
        for needle in [1, 1.0, 2.5, "a", "b", "bc", True, False, None, 7, "true", "1"]:
            rule = {"in": [needle, {"var": "data"}]}
            response = client.get("/api/v1/records/doc", params={"filter": json.dumps(rule)})
            assert response.status_code == 200, (rule, response.text)
            in_sql = [record["id"] for record in response.json()["data"]]
            assert in_sql == [r["id"] for r in records if site.rules.apply(rule, r)], rule
