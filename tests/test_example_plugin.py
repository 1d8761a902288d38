"""The example third-party plugin, installed into a site like any plugin from PyPI."""

from __future__ import annotations

from collections.abc import Callable

from jimu.site import Site
from jimu_sdk.testing import site_client


def test_example_plugin_entity_hooks_and_demo_data(new_site: Callable[..., Site]) -> None:
    site = new_site(plugins=["example_vip"])
    with site_client(site) as client:
        plugins = {p["name"]: p for p in client.get("/api/v1/meta/plugins").json()["data"]}
        assert plugins["example_vip"]["hooks"] == [
            "jimu_before_create",
            "jimu_before_update",
            "jimu_entities",
            "jimu_fixtures",
        ]
        entity = client.get("/api/v1/meta/entities/vip_card").json()
        assert entity["plugin"] == "example_vip"
        assert [f["name"] for f in entity["fields"]] == [
            "card_no",
            "holder",
            "level",
            "points",
            "issued_on",
        ]
        card = client.post(
            "/api/v1/records/vip_card", json={"card_no": " vip-000777 ", "holder": "赵敏"}
        ).json()
        assert card["card_no"] == "VIP-000777" and card["level"] == "silver" and card["points"] == 0
        refused = client.patch(
            f"/api/v1/records/vip_card/{card['id']}", json={"card_no": "VIP-000778"}
        )
        assert refused.status_code == 422
        assert refused.json()["errors"] == [
            {"field": "card_no", "reason": "a card number cannot be changed; issue a new card"}
        ]
        assert (
            client.patch(f"/api/v1/records/vip_card/{card['id']}", json={"points": 50}).json()[
                "points"
            ]
            == 50
        )
        # the site can add its own field to the plugin's entity (an overlay, not an edit)
        added = client.post(
            "/api/v1/meta/entities/vip_card/fields", json={"name": "store", "type": "text"}
        )
        assert added.status_code == 201
        clash = client.patch(
            "/api/v1/meta/entities/vip_card",
            json={"fields": [{"name": "holder", "type": "integer"}]},
        )
        assert clash.status_code == 422
        assert "is declared by plugin 'example_vip'" in clash.json()["errors"][0]["reason"]

    async def demo() -> dict[str, int]:
        async with Site.load(site.folder) as fresh:
            return await fresh.load_fixtures("demo")

    import asyncio

    assert asyncio.run(demo()) == {"vip_card": 3}
    with site_client(Site.load(site.folder)) as client:
        cards = client.get(
            "/api/v1/records/vip_card", params={"sort": "card_no", "fields": "card_no,store"}
        ).json()
        assert [c["card_no"] for c in cards["data"]] == [
            "VIP-000001",
            "VIP-000002",
            "VIP-000003",
            "VIP-000777",
        ]
        assert all("store" in c for c in cards["data"])  # the overlay survives a restart
