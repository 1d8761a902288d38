"""An integrator's whole path through the generated API, on SQLite and PostgreSQL.

Create a site, enable the example plugin, create a runtime entity with several
field types, write 10,000 records, read, filter, sort and page through them,
add a field to the live entity, and read the records back with it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from openapi_spec_validator import validate as validate_openapi

from jimu.site import Site
from jimu_sdk.testing import site_client

CITIES = ["上海", "北京", "杭州", "深圳"]
RECORDS = 10_000


def member(index: int, rng: random.Random) -> dict[str, Any]:
    """One generated member record."""
    return {
        "name": f"member {index:05d}",
        "email": f"m{index}@example.cn",
        "city": rng.choice(CITIES),
        "points": rng.randrange(0, 5000),
        "balance": str(Decimal(rng.randrange(0, 10_000_00)) / 100),
        "active": rng.random() < 0.8,
        "birthday": (dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(0, 15000))).isoformat(),
        "joined_at": (
            dt.datetime(2023, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
            + dt.timedelta(minutes=rng.randrange(0, 500_000))
        ).isoformat(),
        "profile": {"source": rng.choice(["tmall", "jd"]), "n": index},
    }


MEMBER_ENTITY = {
    "name": "member",
    "label": {"en": "Member", "zh-CN": "会员"},
    "title_field": "name",
    "fields": [
        {"name": "name", "type": "text", "required": True},
        {"name": "email", "type": "email", "unique": True},
        {"name": "city", "type": "select", "options": {"choices": CITIES}, "indexed": True},
        {"name": "points", "type": "integer", "options": {"min": 0}},
        {"name": "balance", "type": "decimal", "options": {"precision": 12, "scale": 2}},
        {"name": "active", "type": "boolean"},
        {"name": "birthday", "type": "date"},
        {"name": "joined_at", "type": "datetime"},
        {"name": "profile", "type": "json"},
        {"name": "card", "type": "link", "options": {"target": "vip_card"}},
    ],
}


def _page_through(client: Any, url: str, limit: int, **params: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(RECORDS // limit + 5):
        response = client.get(
            url, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(body["data"])
        cursor = body["page"]["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


def test_integrator_path_with_10000_records(new_site: Callable[..., Site]) -> None:
    site = new_site()
    rng = random.Random(7)
    expected = [member(i, rng) for i in range(RECORDS)]
    with site_client(site) as client:
        # enable the third-party example plugin on the live site
        response = client.get("/api/v1/meta/entities")
        assert response.json()["data"] == []
        enabled = client.post("/api/v1/meta/plugins/example_vip")
        assert enabled.status_code == 201, enabled.text
        assert enabled.json() == {"enabled": ["example_vip"]}
        names = [e["name"] for e in client.get("/api/v1/meta/entities").json()["data"]]
        assert names == ["vip_card"]
        card = client.post(
            "/api/v1/records/vip_card",
            json={"card_no": "vip-123456", "holder": "王芳", "level": "gold"},
        )
        assert card.status_code == 201, card.text
        assert card.json()["card_no"] == "VIP-123456"  # normalised by the plugin's hook

        # a runtime entity with several field types
        created = client.post("/api/v1/meta/entities", json=MEMBER_ENTITY)
        assert created.status_code == 201, created.text
        assert [f["name"] for f in created.json()["fields"]][:3] == ["name", "email", "city"]

        # write 10,000 records in bulk requests
        expected[0]["card"] = card.json()["id"]
        for start in range(0, RECORDS, 2500):
            response = client.post(
                "/api/v1/records/member/bulk", json={"create": expected[start : start + 2500]}
            )
            assert response.status_code == 200, response.text
            assert len(response.json()["created"]) == min(2500, RECORDS - start)

        # read one back exactly
        first = client.get("/api/v1/records/member/1").json()
        assert first["name"] == "member 00000"
        assert first["balance"] == expected[0]["balance"] or Decimal(first["balance"]) == Decimal(
            expected[0]["balance"]
        )
        assert first["birthday"] == expected[0]["birthday"]
        assert dt.datetime.fromisoformat(first["joined_at"]) == dt.datetime.fromisoformat(
            expected[0]["joined_at"]
        )
        assert first["profile"] == expected[0]["profile"]
        assert first["card"] == card.json()["id"]

        # page through everything with a cursor: every record exactly once, in id order
        seen = _page_through(client, "/api/v1/records/member", limit=1000)
        assert [r["id"] for r in seen] == list(range(1, RECORDS + 1))

        # sort by points descending, stable by id, across pages
        by_points = _page_through(
            client, "/api/v1/records/member", limit=700, sort="-points", fields="points"
        )
        assert len(by_points) == RECORDS
        keys = [(-r["points"], r["id"]) for r in by_points]
        assert keys == sorted(keys)
        assert set(by_points[0]) == {"id", "points"}

        # sort by a nullable date, NULLs last
        client.patch("/api/v1/records/member/5", json={"birthday": None})
        by_birthday = _page_through(
            client, "/api/v1/records/member", limit=900, sort="birthday,-id", fields="birthday"
        )
        assert len(by_birthday) == RECORDS
        assert by_birthday[-1]["id"] == 5 and by_birthday[-1]["birthday"] is None
        dates = [r["birthday"] for r in by_birthday[:-1]]
        assert dates == sorted(dates)

        # JsonLogic filter compiled to SQL, checked against Python
        rule = {
            "and": [
                {"==": [{"var": "city"}, "上海"]},
                {">=": [{"var": "points"}, 2500]},
                {"var": "active"},
            ]
        }
        matching = [
            i + 1
            for i, r in enumerate(expected)
            if r["city"] == "上海" and r["points"] >= 2500 and r["active"]
        ]
        response = client.get(
            "/api/v1/records/member",
            params={"filter": json.dumps(rule), "limit": 1000, "fields": "id", "count": "exact"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["id"] for r in body["data"]] == matching[:1000]
        assert body["page"]["total"] == len(matching) and body["page"]["total_exact"] is True
        queried = client.post(
            "/api/v1/records/member/query",
            json={"filter": rule, "sort": ["-points"], "limit": 5, "fields": ["points"]},
        )
        assert queried.status_code == 200, queried.text
        top = sorted(matching, key=lambda i: (-expected[i - 1]["points"], i))[:5]
        assert [r["id"] for r in queried.json()["data"]] == top

        # capped total on the unfiltered list
        page = client.get("/api/v1/records/member", params={"limit": 1}).json()["page"]
        assert page == {
            "limit": 1,
            "next_cursor": page["next_cursor"],
            "total": 10_000,
            "total_exact": True,
        }

        # add a field to the live entity and read the records back with it
        added = client.post(
            "/api/v1/meta/entities/member/fields",
            json={"name": "nickname", "type": "text", "options": {"max_length": 30}},
        )
        assert added.status_code == 201, added.text
        record = client.get("/api/v1/records/member/42").json()
        assert record["nickname"] is None and record["name"] == "member 00041"
        updated = client.patch("/api/v1/records/member/42", json={"nickname": "小明"})
        assert updated.status_code == 200 and updated.json()["nickname"] == "小明"
        again = _page_through(client, "/api/v1/records/member", limit=1000, fields="nickname")
        assert len(again) == RECORDS
        assert [r for r in again if r["nickname"]] == [{"id": 42, "nickname": "小明"}]


def test_records_survive_restart_and_schema_shows_entities(new_site: Callable[..., Site]) -> None:
    site = new_site(plugins=["example_vip"])
    with site_client(site) as client:
        response = client.post(
            "/api/v1/records/vip_card", json={"card_no": "VIP-000001", "holder": "Li"}
        )
        assert response.status_code == 201
        schema = client.get("/schema").json()
        validate_openapi(schema)
        assert "/api/v1/records/vip_card" in schema["paths"]
        assert "VipCardCreate" in schema["components"]["schemas"]
        assert "extra" not in schema["components"]["schemas"]["VipCardCreate"]["properties"]
        client.post(
            "/api/v1/meta/entities/vip_card/fields", json={"name": "extra", "type": "integer"}
        )
        schema = client.get("/schema").json()
        validate_openapi(schema)
        assert (
            schema["components"]["schemas"]["VipCardCreate"]["properties"]["extra"]["anyOf"][0][
                "type"
            ]
            == "integer"
        )
    reopened = Site.load(site.folder)
    with site_client(reopened) as client:
        record = client.get("/api/v1/records/vip_card/1").json()
        assert record["card_no"] == "VIP-000001" and record["extra"] is None
