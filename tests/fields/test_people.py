"""user, created_by, modified_by: people as jimu_user ids, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient

from jimu.site import Site
from tests.fields.helpers import (
    accept,
    assert_refused,
    create,
    entity,
    fmt,
    labels,
    parse,
    read,
    reason,
)


def test_valid_and_invalid_values() -> None:
    assert accept("user", 7) == 7
    assert accept("user", " wang ") == "wang"  # a login, turned into an id when written
    assert "user id" in reason("user", 0)
    assert "not blank" in reason("user", "  ")
    assert "Expected" in reason("user", 1.5)


def test_cells() -> None:
    assert parse("user", 12) == 12
    assert parse("user", 12.0) == 12  # spreadsheets store numbers as floats
    assert parse("user", " 12 ") == 12
    assert parse("user", "wang") == "wang"
    assert parse("user", "") is None
    assert fmt("user", 12) == 12
    assert fmt("user", None) is None


def _users(client: TestClient[Any]) -> dict[str, int]:
    ids = {}
    for login in ("wang", "li"):
        made = client.post("/api/v1/meta/users", json={"login": login, "password": "pass-word-1"})
        assert made.status_code == 201, made.text
        ids[login] = made.json()["id"]
    return ids


def test_user_field_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "owner", "type": "user"}]) as client:
        ids = _users(client)
        by_id = create(client, {"label": "a", "owner": ids["wang"]})
        by_login = create(client, {"label": "b", "owner": "li"})
        assert (by_id["owner"], by_login["owner"]) == (ids["wang"], ids["li"])
        assert read(client, by_login["id"])["owner"] == ids["li"]
        assert labels(client, {"==": [{"var": "owner"}, ids["wang"]]}) == ["a"]
        assert labels(client, {"in": [{"var": "owner"}, [ids["li"]]]}) == ["b"]
        assert_refused(client, {"label": "c", "owner": 999}, "owner", "no active user with id 999")
        assert_refused(client, {"label": "c", "owner": "ghost"}, "owner", "no active user")
        disabled = client.patch(f"/api/v1/meta/users/{ids['li']}", json={"active": False})
        assert disabled.status_code == 200
        assert_refused(client, {"label": "c", "owner": "li"}, "owner", "no active user")
        imported = client.post(
            "/api/v1/records/item/import",
            files={
                "file": (
                    "items.csv",
                    f"label,owner\nd,wang\ne,{ids['wang']}\n".encode(),
                    "text/csv",
                )
            },
        )
        assert imported.status_code == 200, imported.text
        assert labels(client, {"==": [{"var": "owner"}, ids["wang"]]}) == ["a", "d", "e"]
        refused = client.post(
            "/api/v1/records/item/import",
            files={"file": ("items.csv", b"label,owner\nf,li\n", "text/csv")},
        )
        assert refused.status_code == 422 and "no active user" in refused.text
        exported = client.get(
            "/api/v1/records/item/export",
            params={"format": "csv", "header": "name", "fields": "label,owner"},
        )
        rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert {row["label"]: row["owner"] for row in rows}["a"] == str(ids["wang"])


def test_created_and_modified_by_record_the_acting_user(new_site: Callable[..., Site]) -> None:
    fields = [
        {"name": "made_by", "type": "created_by"},
        {"name": "changed_by", "type": "modified_by"},
    ]
    with entity(new_site, fields) as admin:
        ids = _users(admin)
        role = {"name": "editor", "grants": {"item": {"actions": ["read", "create", "update"]}}}
        assert admin.post("/api/v1/meta/roles", json=role).status_code == 201
        for login in ids:
            assert (
                admin.patch(
                    f"/api/v1/meta/users/{ids[login]}", json={"roles": ["editor"]}
                ).status_code
                == 200
            )

        def as_user(login: str) -> TestClient[Any]:
            client = TestClient(admin.app)
            client.blocking_portal = admin.blocking_portal
            token = admin.post(
                "/api/v1/auth/tokens", json={"name": login, "user_id": ids[login]}
            ).json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            return client

        wang, li = as_user("wang"), as_user("li")
        made = create(wang, {"label": "x"})
        assert (made["made_by"], made["changed_by"]) == (ids["wang"], ids["wang"])
        changed = li.patch(f"/api/v1/records/item/{made['id']}", json={"label": "y"}).json()
        assert (changed["made_by"], changed["changed_by"]) == (ids["wang"], ids["li"])
        assert_refused(wang, {"label": "z", "made_by": ids["li"]}, "made_by", "computed")
        assert labels(admin, {"==": [{"var": "changed_by"}, ids["li"]]}) == ["y"]
        by_system = create(admin, {"label": "s"})  # a test super-user's token is a user too
        assert by_system["made_by"] is not None
