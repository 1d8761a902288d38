"""Kernel-filled types (formula, auto-number, created/modified time) and passwords."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jimu.fields.computed import PasswordType
from jimu.site import Site
from jimu.store.database import Database
from jimu_sdk.testing import site_client

ORDER = {
    "name": "shop_order",
    "fields": [
        {
            "name": "number",
            "type": "auto_number",
            "options": {"pattern": "ORD-{YYYY}-{#####}"},
            "unique": True,
        },
        {"name": "qty", "type": "integer", "required": True},
        {"name": "price", "type": "decimal", "options": {"scale": 2}},
        {
            "name": "total",
            "type": "formula",
            "options": {"rule": {"*": [{"var": "qty"}, {"var": "price"}]}, "returns": "decimal"},
        },
        {
            "name": "big",
            "type": "formula",
            "options": {
                "rule": {">=": [{"*": [{"var": "qty"}, {"var": "price"}]}, 100]},
                "returns": "boolean",
            },
        },
        {
            "name": "summary",
            "type": "formula",
            "options": {"rule": {"cat": [{"var": "qty"}, " x ", {"var": "price"}]}},
        },
        {"name": "placed", "type": "created_time"},
        {"name": "changed", "type": "modified_time"},
        {"name": "secret", "type": "password", "options": {"min_length": 6}},
    ],
}


@pytest.fixture
def client(new_site: Callable[..., Site]) -> Iterator[Any]:
    site = new_site()
    with site_client(site) as client:
        response = client.post("/api/v1/meta/entities", json=ORDER)
        assert response.status_code == 201, response.text
        yield client


def test_formula_is_computed_on_every_write_and_filters_in_sql(client: Any) -> None:
    order = client.post("/api/v1/records/shop_order", json={"qty": 3, "price": "12.50"}).json()
    assert (order["total"], order["big"], order["summary"]) == ("37.50", False, "3 x 12.50")
    updated = client.patch(f"/api/v1/records/shop_order/{order['id']}", json={"qty": 10}).json()
    assert (updated["total"], updated["big"]) == ("125.00", True)
    client.post("/api/v1/records/shop_order", json={"qty": 1, "price": "5"})
    rule = {">": [{"var": "total"}, 100]}
    found = client.get(
        "/api/v1/records/shop_order", params={"filter": json.dumps(rule), "fields": "id"}
    )
    assert [r["id"] for r in found.json()["data"]] == [order["id"]]
    by_total = client.get(
        "/api/v1/records/shop_order", params={"sort": "-total", "fields": "total"}
    ).json()
    assert [r["total"] for r in by_total["data"]] == ["125.00", "5.00"]


def test_computed_fields_cannot_be_written(client: Any) -> None:
    for field, value in [("total", "1"), ("number", "X"), ("placed", "2024-01-01T00:00:00Z")]:
        response = client.post("/api/v1/records/shop_order", json={"qty": 1, field: value})
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {"field": field, "reason": "is computed by the kernel; it cannot be written"}
        ]
    order = client.post("/api/v1/records/shop_order", json={"qty": 1}).json()
    patched = client.patch(f"/api/v1/records/shop_order/{order['id']}", json={"total": "9"})
    assert patched.status_code == 422 and patched.json()["errors"][0]["field"] == "total"


def test_formula_problems_are_refused_when_defined(client: Any) -> None:
    def add(field: dict[str, Any]) -> Any:
        return client.post("/api/v1/meta/entities/shop_order/fields", json=field)

    unknown = add({"name": "f1", "type": "formula", "options": {"rule": {"var": "colour"}}})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["reason"] == "the rule reads unknown field 'colour'"
    chained = add({"name": "f2", "type": "formula", "options": {"rule": {"var": "total"}}})
    assert "formulas read stored fields only" in chained.json()["errors"][0]["reason"]
    bad_op = add({"name": "f3", "type": "formula", "options": {"rule": {"nope": [1]}}})
    assert bad_op.status_code == 422 and "nope" in bad_op.json()["errors"][0]["reason"]
    no_rule = add({"name": "f4", "type": "formula", "options": {"returns": "text"}})
    assert no_rule.json()["errors"][0]["field"] == "fields[9].options.rule"
    bad_pattern = add({"name": "n2", "type": "auto_number", "options": {"pattern": "A-{##}-{##}"}})
    assert "exactly one counter" in bad_pattern.json()["errors"][0]["reason"]


def test_formula_that_cannot_be_computed_is_a_clear_422(client: Any) -> None:
    client.post(
        "/api/v1/meta/entities/shop_order/fields",
        json={
            "name": "ratio",
            "type": "formula",
            "options": {"rule": {"/": [{"var": "price"}, {"var": "qty"}]}, "returns": "integer"},
        },
    )
    response = client.post("/api/v1/records/shop_order", json={"qty": 3, "price": "10"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "ratio"
    assert "not a integer value" in response.json()["errors"][0]["reason"]


def test_auto_numbers_follow_the_pattern(client: Any) -> None:
    year = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).year
    numbers = [
        client.post("/api/v1/records/shop_order", json={"qty": 1}).json()["number"]
        for _ in range(3)
    ]
    assert numbers == [f"ORD-{year}-00001", f"ORD-{year}-00002", f"ORD-{year}-00003"]
    bulk = client.post(
        "/api/v1/records/shop_order/bulk", json={"create": [{"qty": 1}, {"qty": 2}]}
    ).json()
    listed = client.get(
        "/api/v1/records/shop_order", params={"fields": "number", "sort": "number"}
    ).json()["data"]
    assert [r["number"] for r in listed][-2:] == [f"ORD-{year}-00004", f"ORD-{year}-00005"]
    assert len(bulk["created"]) == 2


def test_auto_number_is_unique_under_50_concurrent_inserts(new_site: Callable[..., Site]) -> None:
    site = new_site()

    async def run() -> list[str]:
        async with site:
            await site.create_entity(
                _entity(
                    {
                        "name": "ticket",
                        "fields": [
                            {
                                "name": "code",
                                "type": "auto_number",
                                "options": {"pattern": "T{######}"},
                                "unique": True,
                            },
                            {"name": "subject", "type": "text"},
                        ],
                    }
                )
            )
            results = await asyncio.gather(
                *(site.records.create("ticket", {"subject": f"s{i}"}) for i in range(50))
            )
            return [record["code"] for record in results]

    codes = asyncio.run(run())
    assert len(codes) == 50 and len(set(codes)) == 50
    assert sorted(codes) == [f"T{i:06d}" for i in range(1, 51)]


def _entity(data: dict[str, Any]) -> Any:
    import msgspec

    from jimu.meta import EntityDef

    return msgspec.convert(data, EntityDef)


def test_created_and_modified_times(client: Any) -> None:
    order = client.post("/api/v1/records/shop_order", json={"qty": 1}).json()
    assert order["placed"] == order["changed"] == order["created_at"]
    later = client.patch(f"/api/v1/records/shop_order/{order['id']}", json={"qty": 2}).json()
    assert later["placed"] == order["placed"]
    assert later["changed"] > order["changed"] and later["changed"] == later["updated_at"]
    same = client.patch(f"/api/v1/records/shop_order/{order['id']}", json={"qty": 2}).json()
    assert same["changed"] == later["changed"]  # no change, no new modified time


def test_password_is_hashed_and_never_leaves(client: Any, new_site: Callable[..., Site]) -> None:
    created = client.post("/api/v1/records/shop_order", json={"qty": 1, "secret": "s3cret!"})
    assert created.status_code == 201
    order = created.json()
    assert "secret" not in order
    assert "secret" not in client.get(f"/api/v1/records/shop_order/{order['id']}").json()
    assert all("secret" not in r for r in client.get("/api/v1/records/shop_order").json()["data"])
    short = client.post("/api/v1/records/shop_order", json={"qty": 1, "secret": "abc"})
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "secret"
    for params in [
        {"fields": "secret"},
        {"sort": "secret"},
        {"filter": json.dumps({"==": [{"var": "secret"}, "s3cret!"]})},
    ]:
        response = client.get("/api/v1/records/shop_order", params=params)
        assert response.status_code == 422, params
    schema = client.get("/schema").json()["components"]["schemas"]
    assert "secret" not in schema["ShopOrderRecord"]["properties"]
    assert "secret" in schema["ShopOrderCreate"]["properties"]
    site: Site = client.app.state.site

    async def stored() -> tuple[str, list[str]]:
        db = Database(site.config.database_url, base_dir=site.folder)
        await db.open()
        try:
            row = await db.fetch_one("SELECT secret FROM shop_order WHERE id = {}", [order["id"]])
            events = await db.fetch("SELECT payload FROM jimu_event")
        finally:
            await db.close()
        assert row is not None
        return row["secret"], [str(e["payload"]) for e in events]

    digest, payloads = asyncio.run(stored())
    assert digest.startswith("$argon2") and "s3cret!" not in digest
    assert PasswordType().verify(digest, "s3cret!") and not PasswordType().verify(digest, "guess")
    assert not any("s3cret!" in p or "argon2" in p for p in payloads)
