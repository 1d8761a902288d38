"""Every bad request gets problem details with the right status, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jimu.site import Site
from jimu_sdk.testing import site_client

PROBLEM = "application/problem+json"


@pytest.fixture
def client(new_site: Callable[..., Site]) -> Iterator[Any]:
    """A client of a site with a ``customer`` entity and one record."""
    site = new_site()
    with site_client(site) as client:
        response = client.post(
            "/api/v1/meta/entities",
            json={
                "name": "customer",
                "fields": [
                    {
                        "name": "name",
                        "type": "text",
                        "required": True,
                        "options": {"max_length": 20},
                    },
                    {"name": "age", "type": "integer", "options": {"min": 0, "max": 150}},
                    {"name": "email", "type": "email", "unique": True},
                    {"name": "birthday", "type": "date"},
                    {"name": "level", "type": "select", "options": {"choices": ["a", "b"]}},
                    {"name": "balance", "type": "decimal", "options": {"precision": 8, "scale": 2}},
                ],
            },
        )
        assert response.status_code == 201, response.text
        assert (
            client.post(
                "/api/v1/records/customer", json={"name": "Ann", "email": "ann@x.cn"}
            ).status_code
            == 201
        )
        yield client
        # the one record written above is all there is: no failed request wrote anything
        listing = client.get("/api/v1/records/customer", params={"count": "exact"}).json()
        assert listing["page"]["total"] == 1
        assert [r["name"] for r in listing["data"]] == ["Ann"]


def assert_problem(
    response: Any, status: int, field: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    """The response is problem details with ``status``; its errors name ``field``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://jimu.dev/problems/")
    assert body["title"] and body["detail"]
    if field is not None:
        fields = [error["field"] for error in body["errors"]]
        assert field in fields, body
        if reason is not None:
            assert any(
                reason in error["reason"] for error in body["errors"] if error["field"] == field
            ), body
    return body


def test_unknown_entity_is_404(client: Any) -> None:
    for method, url in [
        ("GET", "/api/v1/records/nope"),
        ("POST", "/api/v1/records/nope"),
        ("GET", "/api/v1/records/nope/1"),
        ("PATCH", "/api/v1/records/nope/1"),
        ("DELETE", "/api/v1/records/nope/1"),
        ("POST", "/api/v1/records/nope/bulk"),
        ("POST", "/api/v1/records/nope/query"),
        ("GET", "/api/v1/meta/entities/nope"),
        ("PATCH", "/api/v1/meta/entities/nope"),
        ("POST", "/api/v1/meta/entities/nope/fields"),
    ]:
        response = client.request(method, url, json={"name": "x"})
        body = assert_problem(response, 404)
        assert "nope" in body["detail"], (method, url)


def test_unknown_record_is_404(client: Any) -> None:
    body = assert_problem(client.get("/api/v1/records/customer/999"), 404)
    assert body["detail"] == "no customer record with id 999"
    assert_problem(client.patch("/api/v1/records/customer/999", json={"age": 3}), 404)
    assert_problem(client.delete("/api/v1/records/customer/999"), 404)


def test_unknown_field_is_422_naming_it(client: Any) -> None:
    assert_problem(
        client.post("/api/v1/records/customer", json={"name": "Bo", "colour": "red"}),
        422,
        "colour",
        "unknown field",
    )
    assert_problem(
        client.patch("/api/v1/records/customer/1", json={"colour": "red"}),
        422,
        "colour",
        "unknown field",
    )
    assert_problem(
        client.get("/api/v1/records/customer", params={"sort": "colour"}), 422, "sort", "colour"
    )
    assert_problem(
        client.get("/api/v1/records/customer", params={"fields": "name,colour"}),
        422,
        "fields",
        "colour",
    )
    assert_problem(
        client.get("/api/v1/records/customer/1", params={"fields": "colour"}),
        422,
        "fields",
        "colour",
    )


def test_filter_on_unknown_field_is_422_naming_it(client: Any) -> None:
    rule = {"==": [{"var": "colour"}, "red"]}
    body = assert_problem(
        client.get("/api/v1/records/customer", params={"filter": json.dumps(rule)}), 422, "filter"
    )
    assert "colour" in body["errors"][0]["reason"]
    assert_problem(
        client.post("/api/v1/records/customer/query", json={"filter": rule}), 422, "filter"
    )


def test_wrongly_typed_field_is_422_naming_it(client: Any) -> None:
    cases = [
        ({"name": "Bo", "age": "old"}, "age", "Expected `int | null`, got `str`"),
        ({"name": "Bo", "age": -1}, "age", ">= 0"),
        ({"name": 12}, "name", "Expected `str`, got `int`"),
        ({"name": "x" * 21}, "name", "length <= 20"),
        ({"name": "Bo", "email": "not-an-email"}, "email", "is not an e-mail address"),
        ({"name": "Bo", "birthday": "1990-13-45"}, "birthday", "Invalid"),
        ({"name": "Bo", "level": "z"}, "level", "is not one of 'a', 'b'"),
        ({"name": "Bo", "balance": "1.234"}, "balance", "more than 2 digits"),
        ({"name": "Bo", "balance": "1000000.00"}, "balance", "too large"),
        ({"age": 3}, "name", "is required"),
        ({"name": None}, "name", "got `null`"),
    ]
    for payload, field, reason in cases:
        assert_problem(client.post("/api/v1/records/customer", json=payload), 422, field, reason)
    assert_problem(
        client.patch("/api/v1/records/customer/1", json={"name": None}), 422, "name", "got `null`"
    )


def test_bulk_error_names_the_item_and_writes_nothing(client: Any) -> None:
    payload = {"create": [{"name": "ok1"}, {"name": "ok2"}, {"name": "bad", "age": "x"}]}
    assert_problem(client.post("/api/v1/records/customer/bulk", json=payload), 422, "create[2].age")
    # a failure discovered while writing (unique email of item 1 clashes with Ann) rolls everything back
    payload = {"create": [{"name": "ok1"}, {"name": "dup", "email": "ann@x.cn"}]}
    assert_problem(
        client.post("/api/v1/records/customer/bulk", json=payload),
        409,
        "create[1].email",
        "must be unique",
    )
    assert_problem(client.post("/api/v1/records/customer/bulk", json={}), 422, "$", "nothing to do")
    assert_problem(
        client.post("/api/v1/records/customer/bulk", json={"create": [], "upsert": []}),
        422,
        "upsert",
    )
    assert_problem(
        client.post("/api/v1/records/customer/bulk", json={"update": [{"name": "no id"}]}),
        422,
        "update[0].id",
    )
    assert_problem(client.post("/api/v1/records/customer/bulk", json={"delete": [1, 999]}), 404)


def test_nul_characters_are_422_not_a_database_error(client: Any) -> None:
    response = client.post("/api/v1/records/customer", json={"name": "Bo\u0000b"})
    assert_problem(response, 422, "name", "contains a NUL character")


def test_unique_violation_is_409_naming_the_field(client: Any) -> None:
    assert_problem(
        client.post("/api/v1/records/customer", json={"name": "Bo", "email": "ann@x.cn"}),
        409,
        "email",
        "must be unique",
    )


def test_malformed_json_is_400(client: Any) -> None:
    for body in [b"{bad", b"", b'{"name": "Bo"', b"\xff\xfe"]:
        response = client.post(
            "/api/v1/records/customer", content=body, headers={"content-type": "application/json"}
        )
        problem = assert_problem(response, 400)
        assert "not valid JSON" in problem["detail"]
    assert_problem(client.post("/api/v1/records/customer/bulk", content=b"[1,"), 400)
    assert_problem(client.patch("/api/v1/records/customer/1", content=b"nope"), 400)
    assert_problem(client.post("/api/v1/meta/entities", content=b"{"), 400)
    response = client.get("/api/v1/records/customer", params={"filter": "{not json"})
    assert_problem(response, 422, "filter", "is not JSON")


def test_body_of_wrong_shape_is_422(client: Any) -> None:
    assert_problem(
        client.post("/api/v1/records/customer", json=[1, 2]), 422, "$", "Expected `object`"
    )
    assert_problem(
        client.post("/api/v1/records/customer/bulk", json={"create": "x"}), 422, "create"
    )


def test_oversized_body_is_413(client: Any) -> None:
    limit = client.app.state.site.config.max_body_bytes
    big = json.dumps({"name": "Bo", "padding": "x" * (limit + 10)}).encode()
    response = client.post(
        "/api/v1/records/customer", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
    response = client.post(
        "/api/v1/records/customer/bulk", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


def test_bad_list_parameters_are_422(client: Any) -> None:
    assert_problem(client.get("/api/v1/records/customer", params={"limit": "ten"}), 422, "limit")
    assert_problem(client.get("/api/v1/records/customer", params={"limit": "0"}), 422, "limit")
    assert_problem(client.get("/api/v1/records/customer", params={"limit": "100000"}), 422, "limit")
    assert_problem(
        client.get("/api/v1/records/customer", params={"cursor": "garbage!"}), 422, "cursor"
    )
    assert_problem(client.get("/api/v1/records/customer", params={"count": "all"}), 422, "count")
    other_sort = client.get("/api/v1/records/customer", params={"limit": 1, "sort": "name"})
    assert other_sort.status_code == 200
    # a cursor of one sort order is refused by another
    extra = client.post("/api/v1/records/customer", json={"name": "Cy"}).json()["id"]
    cursor = client.get("/api/v1/records/customer", params={"limit": 1, "sort": "name"}).json()[
        "page"
    ]["next_cursor"]
    assert cursor
    assert_problem(
        client.get("/api/v1/records/customer", params={"cursor": cursor, "sort": "-age"}),
        422,
        "cursor",
    )
    assert client.delete(f"/api/v1/records/customer/{extra}").status_code == 200


def test_bad_metadata_is_422_naming_the_part(client: Any) -> None:
    def create(entity: dict[str, Any]) -> Any:
        return client.post("/api/v1/meta/entities", json=entity)

    assert_problem(create({"name": "Bad Name"}), 422, "name", "not a valid entity name")
    assert_problem(create({"name": "jimu_users"}), 422, "name", "reserved")
    assert_problem(
        create({"name": "t", "fields": [{"name": "a", "type": "colour"}]}),
        422,
        "fields[0].type",
        "unknown field type 'colour'",
    )
    assert_problem(
        create({"name": "t", "fields": [{"name": "id", "type": "text"}]}),
        422,
        "fields[0].name",
        "reserved",
    )
    assert_problem(
        create(
            {"name": "t", "fields": [{"name": "a", "type": "text"}, {"name": "a", "type": "text"}]}
        ),
        422,
        "fields[1].name",
        "defined twice",
    )
    assert_problem(
        create({"name": "t", "fields": [{"name": "a", "type": "select"}]}),
        422,
        "fields[0].options.choices",
    )
    assert_problem(
        create(
            {"name": "t", "fields": [{"name": "a", "type": "link", "options": {"target": "ghost"}}]}
        ),
        422,
        "fields[0].options.target",
        "unknown entity 'ghost'",
    )
    assert_problem(
        create({"name": "t", "fields": [{"name": "a", "type": "text", "options": {"colour": 1}}]}),
        422,
        "fields[0].options",
        "unknown option 'colour'",
    )
    assert_problem(
        create({"name": "t", "fields": [{"name": "a", "type": "text", "colour": 1}]}), 422
    )
    assert_problem(create({"name": "customer"}), 409)
    assert_problem(
        client.post(
            "/api/v1/meta/entities/customer/fields", json={"name": "age", "type": "integer"}
        ),
        409,
    )
    assert_problem(
        client.post("/api/v1/meta/entities/customer/fields", json={"name": "x", "type": "nope"}),
        422,
        "fields[6].type",
    )
    assert_problem(
        client.patch("/api/v1/meta/entities/customer", json={"name": "renamed"}), 422, "name"
    )
    entities = [e["name"] for e in client.get("/api/v1/meta/entities").json()["data"]]
    assert entities == ["customer"]
    fields = [f["name"] for f in client.get("/api/v1/meta/entities/customer").json()["fields"]]
    assert fields == ["name", "age", "email", "birthday", "level", "balance"]


def test_link_to_missing_record_is_422(new_site: Callable[..., Site]) -> None:
    site = new_site(plugins=["demo_store"])
    with site_client(site) as client:
        response = client.post(
            "/api/v1/records/sales_order", json={"order_no": "A1", "customer": 77}
        )
        assert_problem(response, 422, "customer", "no customer record with id 77")
        assert (
            client.get("/api/v1/records/sales_order", params={"count": "exact"}).json()["page"][
                "total"
            ]
            == 0
        )


def test_plugin_hook_rejection_is_422_and_writes_nothing(new_site: Callable[..., Site]) -> None:
    site = new_site(plugins=["example_vip"])
    with site_client(site) as client:
        response = client.post("/api/v1/records/vip_card", json={"card_no": "12", "holder": "Li"})
        body = assert_problem(response, 422, "card_no", "is not a card number like VIP-000123")
        assert body["errors"] == [
            {"field": "card_no", "reason": "'12' is not a card number like VIP-000123"}
        ]
        assert (
            client.get("/api/v1/records/vip_card", params={"count": "exact"}).json()["page"][
                "total"
            ]
            == 0
        )
