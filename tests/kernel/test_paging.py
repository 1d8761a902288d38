"""Keyset paging returns every record exactly once, in the requested order, for any sort."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from jimu.site import Site
from jimu_sdk.testing import site_client

SORTS = ["city", "-city", "city,-id", "-city,id", "points,city", "-points", "id", "-id"]


def expected_order(records: list[dict[str, Any]], sort: str) -> list[int]:
    keys = [part for part in sort.split(",")]
    if not any(k.lstrip("-") == "id" for k in keys):
        keys.append("id")
    ordered = list(records)
    for key in reversed(keys):  # stable sorts, last key first
        field, descending = key.lstrip("-"), key.startswith("-")
        present = [r for r in ordered if r[field] is not None]
        missing = [r for r in ordered if r[field] is None]
        present.sort(key=lambda r: r[field], reverse=descending)
        ordered = present + missing  # NULLs last in both directions
    return [r["id"] for r in ordered]


@pytest.mark.parametrize("sort", SORTS)
def test_paging_matches_a_python_sort(new_site: Callable[..., Site], sort: str) -> None:
    rng = random.Random(sort)
    site = new_site()
    with site_client(site) as client:
        client.post(
            "/api/v1/meta/entities",
            json={
                "name": "shop",
                "fields": [
                    {"name": "city", "type": "text", "indexed": True},
                    {"name": "points", "type": "integer"},
                ],
            },
        )
        rows = [
            {
                "city": rng.choice(["北京", "上海", "杭州", None]),
                "points": rng.choice([1, 2, 3, None]),
            }
            for _ in range(120)
        ]
        created = client.post("/api/v1/records/shop/bulk", json={"create": rows}).json()["created"]
        records = [{"id": i, **row} for i, row in zip(created, rows, strict=True)]
        seen: list[int] = []
        cursor = None
        for _ in range(40):
            params: dict[str, Any] = {"sort": sort, "limit": 7, "count": "none", "fields": "id"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/records/shop", params=params).json()
            seen.extend(r["id"] for r in page["data"])
            cursor = page["page"]["next_cursor"]
            if cursor is None:
                break
        assert seen == expected_order(records, sort)
