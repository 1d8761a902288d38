"""The audit log: every kind of event lands with the right actor, and nothing can change it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.auth import shop


@pytest.fixture
def app(new_site: Callable[..., Site]) -> Iterator[tuple[TestClient[Any], Site, dict[str, Any]]]:
    site = new_site(plugins=["auth_shop"], extra_plugins={"auth_shop": shop})
    with site_client(site) as admin:
        seeded = shop.seed(admin)
        yield admin, site, seeded


def _rep_session(admin: TestClient[Any]) -> tuple[TestClient[Any], dict[str, str]]:
    client = TestClient(admin.app)
    client.blocking_portal = admin.blocking_portal
    signed = client.post("/api/v1/auth/login", json={"login": "rep", "password": "rep-password-1"})
    assert signed.status_code == 200
    return client, {"X-CSRF-Token": signed.json()["csrf_token"]}


def test_record_changes_carry_their_actor_and_before_after(
    app: tuple[TestClient[Any], Site, dict[str, Any]],
) -> None:
    admin, _, seeded = app
    rep, csrf = _rep_session(admin)
    mine = seeded["visible"][0]
    headers = {**csrf, "X-Request-ID": "req-42"}
    assert (
        rep.patch(
            f"/api/v1/records/customer/{mine}", json={"name": "Renamed"}, headers=headers
        ).status_code
        == 200
    )
    changes = admin.get(
        "/api/v1/audit/records", params={"entity": "customer", "record_id": mine}
    ).json()["data"]
    update = changes[0]
    assert update["kind"] == "updated"
    assert (update["actor_kind"], update["actor_name"], update["actor_id"]) == (
        "user",
        "rep",
        seeded["rep_id"],
    )
    assert update["request_id"] == "req-42" and update["ip"]
    assert update["changes"] == {"before": {"name": "East A"}, "after": {"name": "Renamed"}}
    created = changes[-1]
    assert created["kind"] == "created" and created["actor_kind"] == "token"  # the admin's token
    assert created["actor_name"] == "test-admin"
    deleted = admin.delete(f"/api/v1/records/customer/{seeded['hidden'][0]}")
    assert deleted.status_code == 200
    gone = admin.get(
        "/api/v1/audit/records", params={"record_id": seeded["hidden"][0], "entity": "customer"}
    ).json()["data"][0]
    assert gone["kind"] == "deleted" and gone["changes"]["name"] == "West other"


def test_sign_ins_permission_changes_and_exports_are_audited(
    app: tuple[TestClient[Any], Site, dict[str, Any]],
) -> None:
    admin, _, seeded = app
    bad = admin.post("/api/v1/auth/login", json={"login": "rep", "password": "nope-nope"})
    assert bad.status_code == 401
    _rep_session(admin)
    role = {**shop.SALES_REP, "grants": {"customer": {"actions": ["read"]}}}
    assert admin.put("/api/v1/meta/roles/sales_rep", json=role).status_code == 200
    assert (
        admin.patch(f"/api/v1/meta/users/{seeded['rep_id']}", json={"super_user": True}).status_code
        == 200
    )
    exported = admin.get(
        "/api/v1/records/customer/export",
        params={"format": "csv", "filter": '{"==": [{"var": "region"}, "east"]}'},
    )
    assert exported.status_code == 200
    log = admin.get("/api/v1/audit").json()["data"]
    actions = [entry["action"] for entry in log]
    for expected in ("login.failed", "login", "role.saved", "user.updated", "export"):
        assert expected in actions, expected
    failed = next(e for e in log if e["action"] == "login.failed")
    assert failed["detail"] == {"login": "rep", "reason": "wrong password"}
    assert failed["actor_id"] == seeded["rep_id"] and failed["ip"]
    saved = next(e for e in log if e["action"] == "role.saved" and e["detail"]["before"])
    assert saved["detail"]["before"]["grants"]["customer"]["fields"] == {
        "phone": "none",
        "level": "read",
    }
    assert saved["detail"]["after"]["grants"]["customer"] == {"actions": ["read"]}
    assert saved["actor_name"] == "test-admin"
    flag = next(e for e in log if e["action"] == "user.updated")
    assert flag["detail"]["super_user"] == {"before": False, "after": True}
    export = next(e for e in log if e["action"] == "export")
    assert export["entity"] == "customer"
    assert export["detail"]["rows"] == 2 and export["detail"]["completed"] is True
    assert export["detail"]["filter"] == {"==": [{"var": "region"}, "east"]}


def test_secrets_never_reach_the_audit_log(
    app: tuple[TestClient[Any], Site, dict[str, Any]],
) -> None:
    admin, site, seeded = app
    assert (
        admin.patch(
            f"/api/v1/meta/users/{seeded['rep_id']}", json={"password": "brand-new-secret"}
        ).status_code
        == 200
    )
    field = {"name": "pin", "type": "password"}
    assert admin.post("/api/v1/meta/entities/customer/fields", json=field).status_code == 201
    mine = seeded["visible"][0]
    assert (
        admin.patch(
            f"/api/v1/records/customer/{mine}", json={"pin": "pin-secret-123", "name": "With pin"}
        ).status_code
        == 200
    )

    async def everything() -> str:
        rows = await site.db.fetch("SELECT detail FROM jimu_audit")
        events = await site.db.fetch("SELECT payload FROM jimu_event")
        return " ".join(str(r["detail"]) for r in rows) + " ".join(
            str(e["payload"]) for e in events
        )

    text = admin.blocking_portal.call(everything)
    assert "brand-new-secret" not in text and "pin-secret-123" not in text
    assert "$argon2" not in text  # not even the hashes
    assert "With pin" in text


def test_the_audit_log_cannot_be_changed(
    app: tuple[TestClient[Any], Site, dict[str, Any]],
) -> None:
    admin, site, _ = app
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        response = admin.request(method, "/api/v1/audit", json={})
        assert response.status_code == 405, method
    first = admin.get("/api/v1/audit").json()["data"][-1]
    assert admin.request("DELETE", f"/api/v1/audit/{first['id']}").status_code in {404, 405}

    async def tamper(sql: str) -> str:
        try:
            await site.db.execute(sql)
        except Exception as exc:
            return str(exc)
        return "changed"

    for sql in (
        "UPDATE jimu_audit SET actor_name = 'nobody'",
        "DELETE FROM jimu_audit",
        "UPDATE jimu_event SET kind = 'forged'",
        "DELETE FROM jimu_event",
    ):
        outcome = admin.blocking_portal.call(tamper, sql)
        assert "append-only" in outcome, sql
    assert admin.get("/api/v1/audit").json()["data"][-1] == first


def test_reading_the_audit_log_needs_the_audit_right(
    app: tuple[TestClient[Any], Site, dict[str, Any]],
) -> None:
    admin, _, _ = app
    rep, _ = _rep_session(admin)
    assert rep.get("/api/v1/audit").status_code == 403
    assert rep.get("/api/v1/audit/records").status_code == 403
    auditor = {
        "name": "auditor",
        "admin": ["audit"],
        "grants": {"customer": {"actions": ["read"], "fields": {"phone": "none"}}},
    }
    assert admin.post("/api/v1/meta/roles", json=auditor).status_code == 201
    made = admin.post(
        "/api/v1/meta/users",
        json={"login": "aud", "password": "audit-pass-1", "roles": ["auditor"]},
    )
    assert made.status_code == 201
    client = TestClient(admin.app)
    client.blocking_portal = admin.blocking_portal
    client.post("/api/v1/auth/login", json={"login": "aud", "password": "audit-pass-1"})
    changes = client.get("/api/v1/audit/records", params={"entity": "customer"})
    assert changes.status_code == 200
    assert all("phone" not in (c["changes"] or {}) for c in changes.json()["data"])
