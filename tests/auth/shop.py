"""A small store for permission tests: customers with a secret-ish phone, and purchases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar.testing import TestClient

from jimu_sdk import EntityDef, FieldDef, PluginInfo, hookimpl

PLUGIN = PluginInfo(name="auth_shop", version="1.0.0")

SALES_REP = {
    "name": "sales_rep",
    "label": {"en": "Sales rep", "zh-CN": "销售"},
    "grants": {
        "customer": {
            "actions": ["read", "create", "update", "import", "export", "report"],
            "fields": {"phone": "none", "level": "read"},
            "rows": {
                "or": [
                    {"==": [{"var": "owner"}, {"var": "$user.id"}]},
                    {"in": [{"var": "region"}, {"var": "$user.regions"}]},
                ]
            },
        },
        "purchase": {"actions": ["read"]},
    },
}


@hookimpl
def jimu_entities() -> Sequence[EntityDef]:
    """Customers (phone: hidden from reps; level: read-only for reps) and their purchases."""
    return [
        EntityDef(
            name="customer",
            fields=[
                FieldDef(name="name", type="text", required=True),
                FieldDef(name="phone", type="text"),
                FieldDef(name="region", type="text"),
                FieldDef(name="owner", type="user"),
                FieldDef(name="level", type="integer", default=1),
            ],
        ),
        EntityDef(
            name="purchase",
            fields=[
                FieldDef(name="customer", type="link", options={"target": "customer"}),
                FieldDef(name="amount", type="integer"),
            ],
        ),
    ]


def seed(admin: TestClient[Any]) -> dict[str, Any]:
    """Role, users and six customers; return the ids the tests need.

    The rep sees the two ``east`` customers (their region) and the ``west``
    customer they own: three of six.
    """
    assert admin.post("/api/v1/meta/roles", json=SALES_REP).status_code == 201
    rep = admin.post(
        "/api/v1/meta/users",
        json={
            "login": "rep",
            "password": "rep-password-1",
            "roles": ["sales_rep"],
            "attributes": {"regions": ["east"]},
        },
    )
    assert rep.status_code == 201, rep.text
    rep_id = rep.json()["id"]
    rows = [
        {"name": "East A", "phone": "13800000001", "region": "east"},
        {"name": "East B", "phone": "13800000002", "region": "east"},
        {"name": "West mine", "phone": "13800000003", "region": "west", "owner": rep_id},
        {"name": "West other", "phone": "13800000004", "region": "west"},
        {"name": "North A", "phone": "13800000005", "region": "north"},
        {"name": "North B", "phone": "13800000006", "region": "north"},
    ]
    created = admin.post("/api/v1/records/customer/bulk", json={"create": rows})
    assert created.status_code == 200, created.text
    ids = created.json()["created"]
    purchases = [{"customer": i, "amount": 10 * (n + 1)} for n, i in enumerate(ids)]
    assert (
        admin.post("/api/v1/records/purchase/bulk", json={"create": purchases}).status_code == 200
    )
    return {
        "rep_id": rep_id,
        "ids": ids,
        "visible": sorted(ids[:3]),
        "hidden": sorted(ids[3:]),
    }
