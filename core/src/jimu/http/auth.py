"""Who is calling: sign-in, sessions, CSRF, API tokens, users, roles, shares, the audit log.

Every request except the few public ones (the site index, health, sign-in,
public forms) must carry credentials, checked by :func:`authenticate` before
the handler runs:

* ``Authorization: Bearer jimu_...`` — an API token (for integrations); or
* the ``jimu_session`` cookie set by ``POST /api/v1/auth/login`` (for the web
  UI). A write (POST, PUT, PATCH, DELETE) with a cookie also needs the
  session's CSRF token in the ``X-CSRF-Token`` header, which a page of
  another site cannot read.

The request then runs as that principal: :func:`jimu.auth.current_access`
answers every permission question of every data path it takes.

Routes:

* ``POST /api/v1/auth/login``, ``POST /api/v1/auth/logout``, ``GET /api/v1/auth/me``
* ``GET/POST /api/v1/auth/tokens``, ``DELETE /api/v1/auth/tokens/{id}``
* ``GET/POST /api/v1/meta/users``, ``GET/PATCH /api/v1/meta/users/{id}``
* ``GET/POST /api/v1/meta/roles``, ``GET/PUT/DELETE /api/v1/meta/roles/{name}``
* ``POST /api/v1/records/{entity}/{id}/shares``, ``DELETE .../shares/{user_id}``
* ``GET /api/v1/audit`` (sign-ins, permission changes, exports, ...) and
  ``GET /api/v1/audit/records`` (record changes with before/after values)
"""

from __future__ import annotations

import hmac
import itertools
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.params import FromPath
from litestar.response import Redirect

from jimu.auth.access import Access
from jimu.auth.context import Actor, act_for_request, current_access, current_actor
from jimu.auth.model import RoleDef, User
from jimu.auth.service import Session
from jimu.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from jimu.http.limits import RateLimiter
from jimu.http.responses import decode_body, int_query, json_response, site_of

__all__ = ["SESSION_COOKIE", "auth_router", "authenticate"]

SESSION_COOKIE = "jimu_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sign-in attempts allowed per client address and minute (in each process).
LOGIN_ATTEMPTS_PER_MINUTE = 20


def _client_ip(request: Request[Any, Any, Any]) -> str | None:
    client = request.scope.get("client")
    return str(client[0]) if client else None


def _raw_header(request: Request[Any, Any, Any], name: bytes) -> str:
    """One request header straight from the ASGI scope (building Litestar's header map
    for every request would cost more than the whole token check)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


#: Request ids made here: a random prefix per process and a counter (uuid4 per request
#: costs a system call for randomness nobody needs).
_REQUEST_PREFIX = secrets.token_hex(4)
_REQUEST_NUMBERS = itertools.count(1)


def _request_id(request: Request[Any, Any, Any]) -> str:
    """The caller's ``X-Request-ID``, else one unique within this server's lifetime."""
    given = _raw_header(request, b"x-request-id")
    return given[:100] if given else f"{_REQUEST_PREFIX}-{next(_REQUEST_NUMBERS)}"


async def authenticate(request: Request[Any, Any, Any]) -> Response[Any] | None:
    """Set the actor and access of ``request`` from its token or session (before the handler).

    Public handlers (``opt={"public": True}``) run as the anonymous
    ``public`` actor with no access unless they grant one themselves. The
    rest answer 401 without valid credentials, and 403 for a cookie write
    without the session's CSRF token.
    """
    site = site_of(request)
    ip, request_id = _client_ip(request), _request_id(request)
    handler_opt = request.route_handler.opt if request.scope.get("route_handler") else {}
    header = _raw_header(request, b"authorization")
    cookie = None if header else request.cookies.get(SESSION_COOKIE)
    if handler_opt.get("public") and not (header or cookie):
        act_for_request(
            Actor(kind="public", name="anonymous", ip=ip, request_id=request_id), Access(site)
        )
        return None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <API token>'")
        user, token = await site.auth.authenticate_token(secret.strip())
        access = await site.auth.access_for(user, token.scopes)
        actor = Actor(
            kind="token",
            id=user.id,
            name=user.login,
            token_id=token.id,
            ip=ip,
            request_id=request_id,
        )
    elif cookie:
        session = await site.auth.session(cookie)
        if request.method not in _SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER.lower(), "")
            if not hmac.compare_digest(given.encode(), session.csrf.encode()):
                raise Forbidden(
                    f"a write signed in with a cookie needs the {CSRF_HEADER} header "
                    "(GET /api/v1/auth/me gives its value)"
                )
        access = await site.auth.access_for(session.user)
        actor = Actor(
            kind="user", id=session.user.id, name=session.user.login, ip=ip, request_id=request_id
        )
        request.state.session = session
    else:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            # a person's browser: to the sign-in page, and back here afterwards
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return Redirect(f"/login?{urlencode({'next': target})}", status_code=303)
        raise Unauthorized(
            "sign in (POST /api/v1/auth/login) or send an API token as 'Authorization: Bearer ...'"
        )
    act_for_request(actor, access)
    return None


def _user_view(user: User) -> dict[str, Any]:
    return msgspec.to_builtins(user)  # type: ignore[no-any-return]


# -- sign-in -----------------------------------------------------------------


class _Login(msgspec.Struct, forbid_unknown_fields=True):
    login: str
    password: str


@post("/auth/login", opt={"public": True})
async def login(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Sign in with login and password; sets the session cookie, returns the CSRF token."""
    site = site_of(request)
    limiter: RateLimiter = request.app.state.login_limiter
    ip = _client_ip(request) or "unknown"
    wait = limiter.check(("login", ip), LOGIN_ATTEMPTS_PER_MINUTE, 60.0)
    if wait is not None:
        raise TooManyRequests(
            "too many sign-in attempts from this address: wait a minute", int(wait) + 1
        )
    body = decode_body(await request.body(), _Login)
    session = await site.auth.login(
        body.login, body.password, ip=ip, user_agent=request.headers.get("user-agent")
    )
    response = json_response(
        {
            "user": _user_view(session.user),
            "csrf_token": session.csrf,
            "expires_at": session.expires_at,
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        session.key,
        max_age=int(session.expires_at - time.time()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


_LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · 登录 — Jimu</title>
<style>
body{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:100vh;margin:0;background:#f5f6f8}
form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;width:min(20rem,90vw)}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1.2rem;width:100%;padding:.6rem}#error{color:#b00020;min-height:1.2em}
</style></head><body>
<form id="f"><h1>Jimu 积木</h1>
<label for="login">Login · 账号</label><input id="login" autocomplete="username" required>
<label for="password">Password · 密码</label>
<input id="password" type="password" autocomplete="current-password" required>
<button>Sign in · 登录</button><p id="error" role="alert"></p></form>
<script>
document.getElementById("f").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/login", {method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({login: document.getElementById("login").value,
                          password: document.getElementById("password").value})});
  if (response.ok) {
    const next = new URLSearchParams(location.search).get("next") || "/";
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } else {
    document.getElementById("error").textContent = (await response.json()).detail;
  }
});
</script></body></html>
"""


@get("/login", opt={"public": True}, include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[str]:
    """A plain sign-in page for a browser (the web UI will have its own)."""
    return Response(content=_LOGIN_PAGE, media_type="text/html; charset=utf-8")


@post("/auth/logout")
async def logout(request: Request[Any, Any, Any]) -> Response[bytes]:
    """End the current session (the cookie stops working everywhere) and clear the cookie."""
    site = site_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and getattr(request.state, "session", None) is not None:
        await site.auth.logout(cookie)
    response = json_response({"signed_out": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@get("/auth/me")
async def me(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Who the caller is, what they may do, and (for a session) the CSRF token."""
    site = site_of(request)
    access = current_access()
    actor = current_actor()
    entities = {}
    for name in sorted(site.entities):
        allowed = [
            a
            for a in ("read", "create", "update", "delete", "import", "export", "report")
            if access.allows(name, a)
        ]
        if allowed:
            readable = access.readable_fields(name)
            writable = access.writable_fields(name)
            entities[name] = {
                "actions": allowed,
                "readable": sorted(readable) if readable is not None else "*",
                "writable": sorted(writable) if writable is not None else "*",
            }
    session: Session | None = getattr(request.state, "session", None)
    body: dict[str, Any] = {
        "actor": msgspec.to_builtins(actor),
        "user": _user_view(access.user) if access.user is not None else None,
        "entities": entities,
        "admin": sorted({r for role in access.roles for r in role.admin})
        if not access.super_user
        else "*",
    }
    if session is not None:
        body["csrf_token"] = session.csrf
    return json_response(body)


# -- API tokens --------------------------------------------------------------


class _NewToken(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    scopes: list[str] = msgspec.field(default_factory=lambda: ["*"])
    expires_at: float | None = None
    user_id: int | None = None


def _me(request: Request[Any, Any, Any]) -> User:
    user = current_access().user
    if user is None:
        raise Unauthorized("sign in first")
    return user


@get("/auth/tokens")
async def list_tokens(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The caller's API tokens (all tokens for holders of the ``users`` right)."""
    site = site_of(request)
    user = _me(request)
    everyone = current_access().has_admin("users") and request.query_params.get("all") == "true"
    tokens = await site.auth.tokens(None if everyone else user.id)
    return json_response({"data": [msgspec.to_builtins(t) for t in tokens]})


@post("/auth/tokens")
async def create_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Issue an API token; the secret is in this response only."""
    site = site_of(request)
    user = _me(request)
    body = decode_body(await request.body(), _NewToken)
    owner = body.user_id if body.user_id is not None else user.id
    if owner != user.id:
        current_access().require_admin("users")
    secret, info = await site.auth.create_token(
        owner, body.name, scopes=body.scopes, expires_at=body.expires_at
    )
    return json_response({"token": secret, **msgspec.to_builtins(info)}, 201)


@delete("/auth/tokens/{token_id:int}", status_code=200)
async def revoke_token(request: Request[Any, Any, Any], token_id: FromPath[int]) -> Response[bytes]:
    """Revoke an API token (one's own, or any with the ``users`` right)."""
    site = site_of(request)
    user = _me(request)
    info = await site.auth.token(token_id)
    if info.user_id != user.id:
        current_access().require_admin("users")
    await site.auth.revoke_token(token_id)
    return json_response({"revoked": token_id})


# -- users -------------------------------------------------------------------


class _NewUser(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    login: str
    password: str | None = None
    display_name: str = ""
    email: str | None = None
    phone: str | None = None
    locale: str = "zh-CN"
    roles: list[str] = msgspec.field(default_factory=list)
    super_user: bool = False
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


@get("/meta/users")
async def list_users(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every user (``users`` right)."""
    current_access().require_admin("users")
    users = await site_of(request).auth.users()
    return json_response({"data": [_user_view(u) for u in users]})


@post("/meta/users")
async def add_user(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create a user (``users`` right; making a super-user needs being one)."""
    access = current_access()
    access.require_admin("users")
    body = decode_body(await request.body(), _NewUser)
    if body.super_user and not access.unrestricted:
        raise Forbidden("only a super-user may create a super-user")
    user = await site_of(request).auth.add_user(
        body.login,
        password=body.password,
        display_name=body.display_name,
        email=body.email,
        phone=body.phone,
        locale=body.locale,
        roles=body.roles,
        super_user=body.super_user,
        attributes=body.attributes,
    )
    return json_response(_user_view(user), 201)


@get("/meta/users/{user_id:int}")
async def get_user(request: Request[Any, Any, Any], user_id: FromPath[int]) -> Response[bytes]:
    """One user (``users`` right, or oneself)."""
    if _me(request).id != user_id:
        current_access().require_admin("users")
    return json_response(_user_view(await site_of(request).auth.get_user(user_id)))


@patch("/meta/users/{user_id:int}")
async def update_user(request: Request[Any, Any, Any], user_id: FromPath[int]) -> Response[bytes]:
    """Change a user (``users`` right; the super-user flag needs being a super-user)."""
    access = current_access()
    access.require_admin("users")
    raw = await request.body()
    changes = msgspec.json.decode(raw)
    if isinstance(changes, dict) and "super_user" in changes and not access.unrestricted:
        raise Forbidden("only a super-user may grant or take the super-user flag")
    user = await site_of(request).auth.update_user(user_id, raw)
    return json_response(_user_view(user))


# -- roles -------------------------------------------------------------------


@get("/meta/roles")
async def list_roles(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every role with its grants (``roles`` right)."""
    current_access().require_admin("roles")
    roles = await site_of(request).auth.roles()
    return json_response({"data": [msgspec.to_builtins(r) for r in roles.values()]})


@post("/meta/roles")
async def create_role(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create a role (``roles`` right); 409 if the name is taken."""
    current_access().require_admin("roles")
    site = site_of(request)
    role = decode_body(await request.body(), RoleDef)
    if role.name in await site.auth.role_names():
        raise Conflict(f"role {role.name!r} exists: PUT /api/v1/meta/roles/{role.name} changes it")
    return json_response(msgspec.to_builtins(await site.auth.save_role(role)), 201)


@get("/meta/roles/{name:str}")
async def get_role(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """One role (``roles`` right)."""
    current_access().require_admin("roles")
    return json_response(msgspec.to_builtins(await site_of(request).auth.role(name)))


@put("/meta/roles/{name:str}")
async def replace_role(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Create or replace a role (``roles`` right); the body's name must match the path."""
    current_access().require_admin("roles")
    role = decode_body(await request.body(), RoleDef)
    if role.name != name:
        raise ValidationFailed(FieldProblem("name", f"must be {name!r}, as in the path"))
    return json_response(msgspec.to_builtins(await site_of(request).auth.save_role(role)))


@delete("/meta/roles/{name:str}", status_code=200)
async def delete_role(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Remove a role and its memberships (``roles`` right)."""
    current_access().require_admin("roles")
    await site_of(request).auth.delete_role(name)
    return json_response({"deleted": name})


# -- sharing one record ------------------------------------------------------


class _Share(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    user_id: int
    write: bool = False


@post("/records/{entity:str}/{record_id:int}/shares")
async def share_record(
    request: Request[Any, Any, Any], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    """Share one record with a user (needs the right to update that record)."""
    site = site_of(request)
    body = decode_body(await request.body(), _Share)
    current_access().require(entity, "update")
    await site.records._fetch_for_update(site.runtime(entity), record_id, "update")
    await site.auth.share(entity, record_id, body.user_id, write=body.write)
    return json_response({"entity": entity, "id": record_id, **msgspec.to_builtins(body)}, 201)


@delete("/records/{entity:str}/{record_id:int}/shares/{user_id:int}", status_code=200)
async def unshare_record(
    request: Request[Any, Any, Any],
    entity: FromPath[str],
    record_id: FromPath[int],
    user_id: FromPath[int],
) -> Response[bytes]:
    """Take back a share (needs the right to update that record)."""
    site = site_of(request)
    current_access().require(entity, "update")
    await site.records._fetch_for_update(site.runtime(entity), record_id, "update")
    await site.auth.unshare(entity, record_id, user_id)
    return json_response({"unshared": user_id})


# -- the audit log -----------------------------------------------------------


def _limit(request: Request[Any, Any, Any]) -> int:
    limit = int_query(request, "limit") or 100
    if not 1 <= limit <= 1000:
        raise ValidationFailed(FieldProblem("limit", "must be from 1 to 1000"))
    return limit


@get("/audit")
async def audit_log(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Sign-ins, failed sign-ins, user/role/permission changes, shares, tokens, exports.

    Newest first; filters ``action``, ``entity``, ``record_id``, ``actor_id``;
    paging with ``before`` (the last id seen). Needs the ``audit`` right.
    """
    current_access().require_admin("audit")
    entries = await site_of(request).auth.audit_entries(
        action=request.query_params.get("action"),
        entity=request.query_params.get("entity"),
        record_id=int_query(request, "record_id"),
        actor_id=int_query(request, "actor_id"),
        before_id=int_query(request, "before"),
        limit=_limit(request),
    )
    return json_response({"data": entries})


@get("/audit/records")
async def record_changes(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Record changes (created/updated/deleted) with before/after values and their actor.

    Newest first; filters ``entity``, ``record_id``, ``actor_id``; paging with
    ``before``. Needs the ``audit`` right; fields the reader may not read are
    left out of the values.
    """
    access = current_access()
    access.require_admin("audit")
    entries = await site_of(request).auth.record_changes(
        entity=request.query_params.get("entity"),
        record_id=int_query(request, "record_id"),
        actor_id=int_query(request, "actor_id"),
        before_id=int_query(request, "before"),
        limit=_limit(request),
    )
    for entry in entries:
        entry["changes"] = _visible_changes(access, entry["entity"], entry["changes"])
    return json_response({"data": entries})


def _visible_changes(access: Access, entity: str, changes: Any) -> Any:
    if not isinstance(changes, dict):
        return changes
    if set(changes) <= {"before", "after"}:
        return {key: access.visible(entity, value) for key, value in changes.items()}
    return access.visible(entity, changes)


def auth_router() -> list[Any]:
    """The sign-in page, and the sign-in, token, user, role, share and audit routes."""
    return [
        login_page,
        Router(
            path="/api/v1",
            route_handlers=[
                login,
                logout,
                me,
                list_tokens,
                create_token,
                revoke_token,
                list_users,
                add_user,
                get_user,
                update_user,
                list_roles,
                create_role,
                get_role,
                replace_role,
                delete_role,
                share_record,
                unshare_record,
                audit_log,
                record_changes,
            ],
        ),
    ]
