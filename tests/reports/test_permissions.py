"""Reports respect the permission engine: a role with a row condition and a hidden field
gets numbers computed only over its rows, and cannot group, measure or filter by the
hidden field."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from jimu.auth import EntityGrant, RoleDef
from jimu.site import Site
from jimu_sdk.testing import site_client

from .helpers import generate, load, run

CUSTOMERS, ORDERS = generate(seed=11, customers=8, orders=150)

BY_CHANNEL = {
    "name": "by_channel",
    "entity": "shop_order",
    "measures": [
        {"name": "orders", "agg": "count"},
        {"name": "revenue", "agg": "sum", "field": "amount"},
    ],
    "dimensions": [{"field": "channel"}],
}


def test_row_condition_and_hidden_field(new_site: Callable[..., Site]) -> None:
    site = new_site()

    async def setup(site: Site) -> None:
        await load(site, CUSTOMERS, ORDERS)
        await site.auth.save_role(
            RoleDef(
                name="web_analyst",
                grants={
                    "shop_order": EntityGrant(
                        actions=["read", "report"],
                        default_field="read",
                        fields={"status": "none"},
                        rows={"in": [{"var": "channel"}, ["web", "app"]]},
                    ),
                    "customer": EntityGrant(actions=["read"], default_field="read"),
                },
            )
        )
        await site.auth.save_role(
            RoleDef(name="clerk", grants={"shop_order": EntityGrant(actions=["read"])})
        )
        await site.auth.add_user("wendy", roles=["web_analyst"])
        await site.auth.add_user("carl", roles=["clerk"])

    run(site, setup)
    with site_client(site, user="wendy") as client:
        response = client.post("/api/v1/reports/run", json={"report": BY_CHANNEL})
        assert response.status_code == 200, response.text
        rows = {row["channel"]: row for row in response.json()["rows"]}
        assert set(rows) == {"web", "app"}
        for channel in ("web", "app"):
            mine = [o for o in ORDERS if o["channel"] == channel]
            assert rows[channel]["orders"] == len(mine)
            expected = sum(Decimal(o["amount"]) for o in mine if o["amount"] is not None)
            assert Decimal(rows[channel]["revenue"]) == expected
        # one number over everything: still only the role's rows
        total = client.post(
            "/api/v1/reports/run",
            json={"report": {**BY_CHANNEL, "dimensions": []}},
        ).json()["rows"][0]
        assert total["orders"] == sum(1 for o in ORDERS if o["channel"] in ("web", "app"))
        # the kinds apply the row condition too
        rfm = client.post(
            "/api/v1/reports/run",
            json={
                "report": {
                    "name": "rfm",
                    "entity": "shop_order",
                    "kind": "rfm",
                    "options": {
                        "customer": "customer",
                        "time": "placed_at",
                        "amount": "amount",
                        "as_of": "2024-06-30",
                    },
                }
            },
        ).json()
        scored = sum(row["orders"] for row in rfm["rows"])
        assert scored == sum(
            1 for o in ORDERS if o["channel"] in ("web", "app") and o["customer"] is not None
        )
        # the hidden field cannot be grouped by, measured or filtered on
        for report, use in (
            ({**BY_CHANNEL, "dimensions": [{"field": "status"}]}, "group by"),
            (
                {
                    **BY_CHANNEL,
                    "measures": [{"name": "n", "agg": "count_distinct", "field": "status"}],
                },
                "measure",
            ),
            ({**BY_CHANNEL, "filter": {"==": [{"var": "status"}, "paid"]}}, "filter"),
        ):
            refused = client.post("/api/v1/reports/run", json={"report": report})
            assert refused.status_code == 403, refused.text
            assert (
                refused.json()["detail"] == f"{use}: you may not read field 'status' of shop_order"
            )
    with site_client(site, user="carl") as client:
        refused = client.post("/api/v1/reports/run", json={"report": BY_CHANNEL})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "you may not report shop_order records"
