"""Sign-in, sessions, CSRF, lockout and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.auth import shop

PASSWORD = "rep-password-1"


@pytest.fixture
def app(new_site: Callable[..., Site]) -> Iterator[tuple[TestClient[Any], Site]]:
    """An admin client of a seeded shop (the rep's password is ``PASSWORD``)."""
    site = new_site(plugins=["auth_shop"], extra_plugins={"auth_shop": shop})
    with site_client(site) as admin:
        shop.seed(admin)
        yield admin, site


def _browser(admin: TestClient[Any]) -> TestClient[Any]:
    """Another client of the same running app, with no credentials of its own."""
    client = TestClient(admin.app)
    client.blocking_portal = admin.blocking_portal
    return client


def _sign_in(client: TestClient[Any], password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"login": "rep", "password": password})


def test_nothing_is_served_without_credentials(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    for method, path in [
        ("GET", "/api/v1/records/customer"),
        ("GET", "/api/v1/meta/entities"),
        ("GET", "/schema"),
        ("POST", "/api/v1/records/customer"),
    ]:
        response = browser.request(method, path, json={} if method == "POST" else None)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "sign in" in response.json()["detail"]
    assert browser.get("/healthz").status_code == 200  # public
    garbage = browser.get("/api/v1/records/customer", headers={"Authorization": "Basic abc"})
    assert garbage.status_code == 401 and "Bearer" in garbage.json()["detail"]
    unknown = browser.get("/api/v1/records/customer", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401


def test_a_session_cookie_needs_csrf_for_writes(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    signed_in = _sign_in(browser)
    assert signed_in.status_code == 200, signed_in.text
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    csrf = signed_in.json()["csrf_token"]
    assert browser.get("/api/v1/records/customer").status_code == 200
    refused = browser.post("/api/v1/records/customer", json={"name": "N", "region": "east"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    wrong = browser.post(
        "/api/v1/records/customer",
        json={"name": "N", "region": "east"},
        headers={"X-CSRF-Token": "not-it"},
    )
    assert wrong.status_code == 403
    ok = browser.post(
        "/api/v1/records/customer",
        json={"name": "N", "region": "east"},
        headers={"X-CSRF-Token": csrf},
    )
    assert ok.status_code == 201, ok.text
    assert browser.get("/api/v1/auth/me").json()["csrf_token"] == csrf


def test_a_stolen_session_dies_at_logout(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    signed_in = _sign_in(browser)
    csrf = signed_in.json()["csrf_token"]
    stolen = browser.cookies.get("jimu_session")
    thief = _browser(admin)
    thief.cookies.set("jimu_session", stolen)
    assert thief.get("/api/v1/records/customer").status_code == 200
    out = browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert thief.get("/api/v1/records/customer").status_code == 401
    again = _browser(admin)
    again.cookies.set("jimu_session", stolen)
    assert again.get("/api/v1/auth/me").status_code == 401


def test_lockout_after_repeated_failed_sign_ins(app: tuple[TestClient[Any], Site]) -> None:
    admin, site = app
    browser = _browser(admin)
    for _ in range(site.auth.lockout_after):
        failed = _sign_in(browser, "wrong-password")
        assert failed.status_code == 401
        assert failed.json()["detail"] == "wrong login or password"
    locked = _sign_in(browser)  # even the right password, now
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    nobody = browser.post("/api/v1/auth/login", json={"login": "ghost", "password": "x" * 8})
    assert nobody.status_code == 401
    assert nobody.json()["detail"] == "wrong login or password"  # same answer for no such user
    # an admin setting a new password lifts the lockout
    rep = next(u for u in admin.get("/api/v1/meta/users").json()["data"] if u["login"] == "rep")
    changed = admin.patch(f"/api/v1/meta/users/{rep['id']}", json={"password": "fresh-pass-2"})
    assert changed.status_code == 200
    assert _sign_in(browser, "fresh-pass-2").status_code == 200


def test_sign_in_attempts_are_rate_limited_per_address(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    statuses = [
        browser.post("/api/v1/auth/login", json={"login": f"u{i}", "password": "x" * 8}).status_code
        for i in range(25)
    ]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429] * 5


def test_disabling_a_user_ends_sessions_and_tokens(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    assert _sign_in(browser).status_code == 200
    rep = next(u for u in admin.get("/api/v1/meta/users").json()["data"] if u["login"] == "rep")
    token = admin.post("/api/v1/auth/tokens", json={"name": "t", "user_id": rep["id"]}).json()
    assert admin.patch(f"/api/v1/meta/users/{rep['id']}", json={"active": False}).status_code == 200
    assert browser.get("/api/v1/records/customer").status_code == 401
    bearer = _browser(admin)
    bearer.headers["Authorization"] = f"Bearer {token['token']}"
    assert bearer.get("/api/v1/records/customer").status_code == 401
    assert _sign_in(_browser(admin)).status_code == 401


def test_expired_and_revoked_tokens_are_refused(app: tuple[TestClient[Any], Site]) -> None:
    admin, site = app
    rep = next(u for u in admin.get("/api/v1/meta/users").json()["data"] if u["login"] == "rep")
    issued = admin.post(
        "/api/v1/auth/tokens", json={"name": "erp", "user_id": rep["id"], "scopes": ["read"]}
    )
    assert issued.status_code == 201
    body = issued.json()
    assert body["token"].startswith("jimu_") and body["scopes"] == ["read"]
    listed = admin.get("/api/v1/auth/tokens", params={"all": "true"}).json()["data"]
    assert all(
        "token" not in t and "key_hash" not in t for t in listed
    )  # the secret was shown once
    client = _browser(admin)
    client.headers["Authorization"] = f"Bearer {body['token']}"
    assert client.get("/api/v1/records/customer").status_code == 200
    # scopes narrow the user's rights: a read token cannot write what the user could
    assert client.post("/api/v1/records/customer", json={"name": "x"}).status_code == 403
    assert admin.delete(f"/api/v1/auth/tokens/{body['id']}").status_code == 200
    revoked = client.get("/api/v1/records/customer")
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]

    async def make_expired() -> str:
        secret, info = await site.auth.create_token(rep["id"], "short", expires_at=time.time() + 60)
        await site.db.execute(
            "UPDATE jimu_token SET expires_at = {} WHERE id = {}", [time.time() - 1, info.id]
        )
        return secret

    expired = admin.blocking_portal.call(make_expired)
    client.headers["Authorization"] = f"Bearer {expired}"
    response = client.get("/api/v1/records/customer")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    past = admin.post("/api/v1/auth/tokens", json={"name": "x", "expires_at": time.time() - 10})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "expires_at"
    bad_scope = admin.post("/api/v1/auth/tokens", json={"name": "x", "scopes": ["everything"]})
    assert bad_scope.status_code == 422 and "everything" in bad_scope.json()["detail"]


def test_only_super_users_make_super_users(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    manager_role = {"name": "user_admin", "admin": ["users"]}
    assert admin.post("/api/v1/meta/roles", json=manager_role).status_code == 201
    made = admin.post(
        "/api/v1/meta/users",
        json={"login": "boss", "password": "boss-pass-1", "roles": ["user_admin"]},
    )
    assert made.status_code == 201
    boss = _browser(admin)
    csrf = boss.post(
        "/api/v1/auth/login", json={"login": "boss", "password": "boss-pass-1"}
    ).json()["csrf_token"]
    headers = {"X-CSRF-Token": csrf}
    assert boss.get("/api/v1/meta/users").status_code == 200
    escalate = boss.post(
        "/api/v1/meta/users", json={"login": "evil", "super_user": True}, headers=headers
    )
    assert escalate.status_code == 403
    me = made.json()["id"]
    assert (
        boss.patch(
            f"/api/v1/meta/users/{me}", json={"super_user": True}, headers=headers
        ).status_code
        == 403
    )
    assert boss.get("/api/v1/meta/roles").status_code == 403  # users right, not roles


def test_a_browser_is_sent_to_the_sign_in_page_and_back(app: tuple[TestClient[Any], Site]) -> None:
    admin, _ = app
    browser = _browser(admin)
    page = browser.get("/login")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/api/v1/auth/login" in page.text
    sent = browser.get(
        "/api/v1/records/customer?limit=5",
        headers={"Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login?next=%2Fapi%2Fv1%2Frecords%2Fcustomer%3Flimit%3D5"
    # an API client (no text/html) gets the problem, not a page
    assert browser.get("/api/v1/records/customer").status_code == 401
    assert _sign_in(browser).status_code == 200
    assert browser.get("/api/v1/records/customer?limit=5").status_code == 200
