"""Lookup and rollup: values read across records, computed in SQL, always current."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jimu.site import Site
from jimu_sdk.testing import site_client


@pytest.fixture
def client(new_site: Callable[..., Site]) -> Iterator[Any]:
    site = new_site(plugins=["demo_store"])
    with site_client(site) as client:
        for field in [
            {
                "name": "customer_city",
                "type": "lookup",
                "options": {"link": "customer", "field": "city"},
            },
            {
                "name": "unit_price",
                "type": "lookup",
                "options": {"link": "product", "field": "price"},
            },
        ]:
            assert (
                client.post("/api/v1/meta/entities/sales_order/fields", json=field).status_code
                == 201
            )
        for field in [
            {
                "name": "orders",
                "type": "rollup",
                "options": {"entity": "sales_order", "link": "customer", "op": "count"},
            },
            {
                "name": "spent",
                "type": "rollup",
                "options": {
                    "entity": "sales_order",
                    "link": "customer",
                    "op": "sum",
                    "field": "amount",
                },
            },
            {
                "name": "biggest",
                "type": "rollup",
                "options": {
                    "entity": "sales_order",
                    "link": "customer",
                    "op": "max",
                    "field": "amount",
                },
            },
            {
                "name": "average",
                "type": "rollup",
                "options": {
                    "entity": "sales_order",
                    "link": "customer",
                    "op": "avg",
                    "field": "quantity",
                    "scale": 1,
                },
            },
            {
                "name": "last_order",
                "type": "rollup",
                "options": {
                    "entity": "sales_order",
                    "link": "customer",
                    "op": "max",
                    "field": "ordered_at",
                },
            },
        ]:
            response = client.post("/api/v1/meta/entities/customer/fields", json=field)
            assert response.status_code == 201, response.text
        yield client


def _customer(client: Any, name: str, city: str) -> int:
    return int(
        client.post("/api/v1/records/customer", json={"name": name, "city": city}).json()["id"]
    )


def _order(
    client: Any, number: str, customer: int, amount: str, quantity: int = 1
) -> dict[str, Any]:
    body = {
        "order_no": number,
        "customer": customer,
        "amount": amount,
        "quantity": quantity,
        "ordered_at": f"2024-03-0{quantity}T10:00:00+08:00",
    }
    response = client.post("/api/v1/records/sales_order", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_lookup_follows_the_link_and_stays_current(client: Any) -> None:
    li = _customer(client, "李娜", "杭州")
    order = _order(client, "A1", li, "10.00")
    assert order["customer_city"] == "杭州"  # returned by the write itself
    client.patch(f"/api/v1/records/customer/{li}", json={"city": "上海"})
    assert (
        client.get(f"/api/v1/records/sales_order/{order['id']}").json()["customer_city"] == "上海"
    )
    rule = {"==": [{"var": "customer_city"}, "上海"]}
    found = client.get(
        "/api/v1/records/sales_order", params={"filter": json.dumps(rule), "fields": "order_no"}
    )
    assert [r["order_no"] for r in found.json()["data"]] == ["A1"]


def test_rollups_count_sum_max_avg_and_sort(client: Any) -> None:
    wang, li, zhao = (
        _customer(client, "王芳", "北京"),
        _customer(client, "李娜", "杭州"),
        _customer(client, "赵敏", "上海"),
    )
    _order(client, "W1", wang, "10.50", 1)
    _order(client, "W2", wang, "20.25", 2)
    _order(client, "L1", li, "99.00", 4)
    record = client.get(f"/api/v1/records/customer/{wang}").json()
    assert (record["orders"], record["spent"], record["biggest"], record["average"]) == (
        2,
        "30.75",
        "20.25",
        "1.5",
    )
    assert record["last_order"] == "2024-03-02T02:00:00Z"
    empty = client.get(f"/api/v1/records/customer/{zhao}").json()
    assert (empty["orders"], empty["spent"], empty["biggest"], empty["average"]) == (
        0,
        "0.00",
        None,
        None,
    )
    by_spent = client.get(
        "/api/v1/records/customer", params={"sort": "-spent", "fields": "name,spent", "limit": 2}
    )
    page = by_spent.json()
    assert [r["name"] for r in page["data"]] == ["李娜", "王芳"]
    rest = client.get(
        "/api/v1/records/customer",
        params={
            "sort": "-spent",
            "fields": "name",
            "limit": 2,
            "cursor": page["page"]["next_cursor"],
        },
    )
    assert [r["name"] for r in rest.json()["data"]] == ["赵敏"]
    rule = {">=": [{"var": "orders"}, 2]}
    found = client.get(
        "/api/v1/records/customer", params={"filter": json.dumps(rule), "fields": "name"}
    )
    assert [r["name"] for r in found.json()["data"]] == ["王芳"]


def test_virtual_fields_cannot_be_written_and_have_no_column(client: Any) -> None:
    li = _customer(client, "李娜", "杭州")
    refused = client.patch(f"/api/v1/records/customer/{li}", json={"orders": 5})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {"field": "orders", "reason": "is computed by the kernel; it cannot be written"}
    ]
    site: Site = client.app.state.site
    assert "orders" not in site.runtime("customer").stored_columns


def test_bad_lookups_and_rollups_are_refused(client: Any) -> None:
    def add(entity: str, field: dict[str, Any]) -> dict[str, str]:
        response = client.post(f"/api/v1/meta/entities/{entity}/fields", json=field)
        assert response.status_code == 422, response.text
        return {e["field"]: e["reason"] for e in response.json()["errors"]}

    # the new field comes after the entity's own: its index is their number
    new = len(client.get("/api/v1/meta/entities/customer").json()["fields"])
    assert add(
        "sales_order",
        {"name": "x", "type": "lookup", "options": {"link": "status", "field": "name"}},
    ) == {"fields[10].options.link": "sales_order has no link field 'status'"}
    assert add(
        "sales_order",
        {"name": "x", "type": "lookup", "options": {"link": "customer", "field": "colour"}},
    ) == {"fields[10].options.field": "entity 'customer' has no field 'colour'"}
    assert add(
        "customer",
        {
            "name": "x",
            "type": "rollup",
            "options": {"entity": "product", "link": "name", "op": "count"},
        },
    ) == {f"fields[{new}].options.link": "product.name is not a link to customer"}
    assert add(
        "customer",
        {
            "name": "x",
            "type": "rollup",
            "options": {"entity": "sales_order", "link": "customer", "op": "median"},
        },
    ) == {f"fields[{new}].options.op": "must be one of avg, count, max, min, sum"}
