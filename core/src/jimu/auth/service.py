"""A site's identity store: users, roles, sessions, API tokens, shares, the audit log.

``site.auth`` is an :class:`Auth`. It keeps its tables in the site database,
builds the :class:`~jimu.auth.access.Access` of a principal (cached until a
role, user or share changes, in any process of the site), and writes the
audit log: sign-ins and failed sign-ins, user, role and permission changes,
shares, token creation and revocation, exports. Record changes are audited by
the record repository in the ``jimu_event`` outbox, in the same transaction
as the change.

Secrets never reach the database in the clear: passwords are argon2 hashes,
session keys and API tokens SHA-256 hashes of 256-bit random values (shown to
their owner once).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from jimu.auth.access import SCOPES, Access, substitute_user
from jimu.auth.context import Actor, current_actor
from jimu.auth.model import ADMIN_RIGHTS, RoleDef, User
from jimu.auth.passwords import hash_password, verify_password
from jimu.auth.tables import auth_ddl
from jimu.errors import (
    Conflict,
    FieldProblem,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from jimu.meta import IDENTIFIER_PATTERN
from jimu.store.database import newest_first

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["Auth", "Session", "TokenInfo"]

_LOGIN = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
_ROLE_NAME = re.compile(IDENTIFIER_PATTERN)
#: Scopes a token may carry: one per kind of action, ``admin``, or ``*`` for all.
TOKEN_SCOPES = frozenset({*SCOPES.values(), "admin", "*"})
MIN_PASSWORD_LENGTH = 8

_USER_COLUMNS = (
    "id, login, display_name, email, phone, active, locale, super_user, attributes, "
    "password_hash, failed_logins, locked_until"
)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in browser session (``key`` is only known right after sign-in)."""

    user: User
    csrf: str
    expires_at: float
    key: str = ""


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An API token as its owner sees it (never the secret, except once at creation)."""

    id: int
    user_id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None


class _UserPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    display_name: str | msgspec.UnsetType = msgspec.UNSET
    email: str | msgspec.UnsetType | None = msgspec.UNSET
    phone: str | msgspec.UnsetType | None = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    super_user: bool | msgspec.UnsetType = msgspec.UNSET
    attributes: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    roles: list[str] | msgspec.UnsetType = msgspec.UNSET
    password: str | msgspec.UnsetType = msgspec.UNSET


class Auth:
    """Identity, permissions and audit of one site; see the module docstring."""

    #: Failed sign-ins in a row that lock an account, and for how long (seconds).
    lockout_after = 5
    lockout_seconds = 15 * 60
    #: How long a session lives (seconds).
    session_seconds = 12 * 60 * 60
    #: How stale this process's view of users, roles, shares, tokens and sessions may be
    #: (seconds): another process's revocation takes effect here within this time.
    sync_seconds = 0.5

    def __init__(self, site: Site) -> None:
        self.site = site
        self._access_cache: dict[tuple[int, frozenset[str] | None], Access] = {}
        #: secret hash -> the token's user and facts, for tokens that passed their checks
        self._tokens: dict[str, tuple[User, TokenInfo]] = {}
        #: session key hash -> the live session
        self._sessions: dict[str, Session] = {}
        self._version = -1
        self._synced_at = 0.0

    @property
    def db(self) -> Any:
        """The site database."""
        return self.site.db

    async def open(self) -> None:
        """Create the auth tables if needed."""
        await self.db.ensure_tables("jimu.auth", auth_ddl(self.db))
        await self._sync_version()

    # -- cache invalidation across processes -----------------------------

    async def _sync_version(self) -> None:
        """Drop what this process keeps if any process changed users, roles, shares,
        tokens or sessions (checked at most every :attr:`sync_seconds`)."""
        now = time.monotonic()
        if now - self._synced_at < self.sync_seconds:
            return
        row = await self.db.fetch_one("SELECT value FROM jimu_counter WHERE key = 'jimu.auth'")
        version = int(row["value"]) if row else 0
        if version != self._version:
            self._forget()
            self._version = version
        self._synced_at = now

    def _forget(self) -> None:
        self._access_cache.clear()
        self._tokens.clear()
        self._sessions.clear()

    async def _bump(self) -> None:
        """Note a change of users, roles, shares, tokens or sessions: every process forgets
        what it kept of them."""
        await self.db.execute(
            "INSERT INTO jimu_counter (key, value) VALUES ('jimu.auth', 1) "
            "ON CONFLICT (key) DO UPDATE SET value = jimu_counter.value + 1"
        )
        self._forget()

    # -- audit -----------------------------------------------------------

    async def audit(
        self,
        action: str,
        *,
        entity: str | None = None,
        record_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
        actor: Actor | None = None,
    ) -> None:
        """Append one entry to the audit log, as ``actor`` (default: the current actor)."""
        who = actor or current_actor()
        await self.db.execute(
            "INSERT INTO jimu_audit (at, action, actor_kind, actor_id, actor_name, token_id, ip, "
            "request_id, entity, record_id, detail) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            [
                time.time(),
                action,
                who.kind,
                who.id,
                who.name,
                who.token_id,
                who.ip,
                who.request_id,
                entity,
                record_id,
                msgspec.json.encode(dict(detail or {})).decode(),
            ],
        )

    # -- users -----------------------------------------------------------

    def _user(self, row: Mapping[str, Any], roles: list[str]) -> User:
        return User(
            id=int(row["id"]),
            login=row["login"],
            display_name=row["display_name"],
            email=row["email"],
            phone=row["phone"],
            active=bool(row["active"]),
            locale=row["locale"],
            super_user=bool(row["super_user"]),
            roles=roles,
            attributes=msgspec.json.decode(row["attributes"]) if row["attributes"] else {},
        )

    async def _roles_of(self, user_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(user_ids)
        if not ids:
            return {}
        rows = await self.db.fetch(
            f"SELECT user_id, role FROM jimu_user_role WHERE user_id IN ({', '.join('{}' for _ in ids)}) "
            "ORDER BY role",
            ids,
        )
        found: dict[int, list[str]] = {i: [] for i in ids}
        for row in rows:
            found[int(row["user_id"])].append(row["role"])
        return found

    async def _user_row(self, *, login: str | None = None, user_id: int | None = None) -> Any:
        if login is not None:
            return await self.db.fetch_one(
                f"SELECT {_USER_COLUMNS} FROM jimu_user WHERE login = {{}}", [login]
            )
        return await self.db.fetch_one(
            f"SELECT {_USER_COLUMNS} FROM jimu_user WHERE id = {{}}", [user_id]
        )

    async def get_user(self, user_id: int) -> User:
        """One user by id; :class:`NotFound` when there is none."""
        row = await self._user_row(user_id=user_id)
        if row is None:
            raise NotFound(f"no user with id {user_id}")
        return self._user(row, (await self._roles_of([user_id]))[user_id])

    async def user_by_login(self, login: str) -> User:
        """One user by login name; :class:`NotFound` when there is none."""
        row = await self._user_row(login=login)
        if row is None:
            raise NotFound(f"no user {login!r}")
        user_id = int(row["id"])
        return self._user(row, (await self._roles_of([user_id]))[user_id])

    async def users(self) -> list[User]:
        """Every user, by login."""
        rows = await self.db.fetch(f"SELECT {_USER_COLUMNS} FROM jimu_user ORDER BY login")
        roles = await self._roles_of(int(r["id"]) for r in rows)
        return [self._user(row, roles[int(row["id"])]) for row in rows]

    async def users_with_role(self, role: str) -> list[User]:
        """The active users holding ``role``, by id."""
        rows = await self.db.fetch(
            f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))} "
            "FROM jimu_user u JOIN jimu_user_role r ON r.user_id = u.id "
            "WHERE r.role = {} AND u.active = 1 ORDER BY u.id",
            [role],
        )
        roles = await self._roles_of(int(r["id"]) for r in rows)
        return [self._user(row, roles[int(row["id"])]) for row in rows]

    @staticmethod
    def _check_password(password: str, field: str = "password") -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise ValidationFailed(
                FieldProblem(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
            )

    async def _check_roles(self, roles: Iterable[str]) -> list[str]:
        wanted = list(dict.fromkeys(roles))
        known = await self.role_names()
        for name in wanted:
            if name not in known:
                raise ValidationFailed(FieldProblem("roles", f"unknown role {name!r}"))
        return wanted

    async def add_user(
        self,
        login: str,
        *,
        password: str | None = None,
        display_name: str = "",
        email: str | None = None,
        phone: str | None = None,
        locale: str = "zh-CN",
        roles: Iterable[str] = (),
        super_user: bool = False,
        attributes: Mapping[str, Any] | None = None,
    ) -> User:
        """Create a user (``password=None``: cannot sign in until one is set)."""
        if not _LOGIN.match(login):
            raise ValidationFailed(
                FieldProblem("login", "use 1-64 letters, digits and _ . @ + - (no spaces)")
            )
        if password is not None:
            self._check_password(password)
        role_names = await self._check_roles(roles)
        now = time.time()
        async with self.db.transaction():
            if await self._user_row(login=login) is not None:
                raise Conflict(
                    f"login {login!r} is taken",
                    errors=[FieldProblem("login", "already taken")],
                )
            rows = await self.db.fetch(
                "INSERT INTO jimu_user (login, display_name, email, phone, active, locale, "
                "super_user, attributes, password_hash, created_at, updated_at) "
                "VALUES ({}, {}, {}, {}, 1, {}, {}, {}, {}, {}, {}) RETURNING id",
                [
                    login,
                    display_name or login,
                    email,
                    phone,
                    locale,
                    int(super_user),
                    msgspec.json.encode(dict(attributes or {})).decode(),
                    hash_password(password) if password is not None else None,
                    now,
                    now,
                ],
            )
            user_id = int(rows[0]["id"])
            for role in role_names:
                await self.db.execute(
                    "INSERT INTO jimu_user_role (user_id, role) VALUES ({}, {})", [user_id, role]
                )
            await self.audit(
                "user.created",
                detail={"user": login, "roles": role_names, "super_user": super_user},
            )
            await self._bump()
        return await self.get_user(user_id)

    async def update_user(self, user_id: int, changes: bytes | Mapping[str, Any]) -> User:
        """Change a user's profile, flags, roles or password (audited, without secrets)."""
        raw = changes if isinstance(changes, bytes) else msgspec.json.encode(changes)
        try:
            patch = msgspec.json.decode(raw, type=_UserPatch)
        except msgspec.ValidationError as exc:
            raise ValidationFailed(FieldProblem("body", str(exc))) from exc
        before = await self.get_user(user_id)
        sets: dict[str, Any] = {}
        detail: dict[str, Any] = {"user": before.login}
        for name in ("display_name", "email", "phone", "locale"):
            value = getattr(patch, name)
            if value is not msgspec.UNSET:
                sets[name] = value
                detail[name] = {"before": getattr(before, name), "after": value}
        if patch.active is not msgspec.UNSET:
            sets["active"] = int(patch.active)
            detail["active"] = {"before": before.active, "after": patch.active}
        if patch.super_user is not msgspec.UNSET:
            sets["super_user"] = int(patch.super_user)
            detail["super_user"] = {"before": before.super_user, "after": patch.super_user}
        if patch.attributes is not msgspec.UNSET:
            sets["attributes"] = msgspec.json.encode(patch.attributes).decode()
            detail["attributes"] = {"before": before.attributes, "after": patch.attributes}
        if patch.password is not msgspec.UNSET:
            self._check_password(patch.password)
            sets["password_hash"] = hash_password(patch.password)
            sets["failed_logins"] = 0
            sets["locked_until"] = None
            detail["password"] = "changed"
        roles = None
        if patch.roles is not msgspec.UNSET:
            roles = await self._check_roles(patch.roles)
            detail["roles"] = {"before": before.roles, "after": roles}
        async with self.db.transaction():
            if sets:
                sets["updated_at"] = time.time()
                await self.db.execute(
                    f"UPDATE jimu_user SET {', '.join(f'{n} = {{}}' for n in sets)} WHERE id = {{}}",
                    [*sets.values(), user_id],
                )
            if roles is not None:
                await self.db.execute("DELETE FROM jimu_user_role WHERE user_id = {}", [user_id])
                for role in roles:
                    await self.db.execute(
                        "INSERT INTO jimu_user_role (user_id, role) VALUES ({}, {})",
                        [user_id, role],
                    )
            if patch.active is False or patch.password is not msgspec.UNSET:
                await self._end_sessions(user_id)
            await self.audit("user.updated", detail=detail)
            await self._bump()
        return await self.get_user(user_id)

    async def _end_sessions(self, user_id: int) -> None:
        await self.db.execute(
            "UPDATE jimu_session SET revoked_at = {} WHERE user_id = {} AND revoked_at IS NULL",
            [time.time(), user_id],
        )

    # -- roles -----------------------------------------------------------

    async def role_names(self) -> set[str]:
        """Names of the site's roles."""
        return {row["name"] for row in await self.db.fetch("SELECT name FROM jimu_role")}

    async def roles(self) -> dict[str, RoleDef]:
        """Every role by name."""
        rows = await self.db.fetch("SELECT name, definition FROM jimu_role ORDER BY name")
        return {row["name"]: msgspec.json.decode(row["definition"], type=RoleDef) for row in rows}

    async def role(self, name: str) -> RoleDef:
        """One role; :class:`NotFound` when there is none."""
        row = await self.db.fetch_one("SELECT definition FROM jimu_role WHERE name = {}", [name])
        if row is None:
            raise NotFound(f"no role {name!r}")
        return msgspec.json.decode(row["definition"], type=RoleDef)

    def check_role(self, role: RoleDef) -> None:
        """Refuse (422, naming the place) a role that names unknown entities or fields,
        or whose row condition does not compile for its entity."""
        if not _ROLE_NAME.match(role.name):
            raise ValidationFailed(
                FieldProblem("name", "use lower-case letters, digits and _ (start with a letter)")
            )
        for right in role.admin:
            if right not in ADMIN_RIGHTS:  # msgspec checks too; kept for Python callers
                raise ValidationFailed(FieldProblem("admin", f"unknown right {right!r}"))
        site = self.site
        for entity, grant in role.grants.items():
            path = f"grants.{entity}"
            if entity != "*" and entity not in site.entities:
                raise ValidationFailed(FieldProblem(path, f"unknown entity {entity!r}"))
            if entity == "*":
                if grant.fields:
                    raise ValidationFailed(
                        FieldProblem(f"{path}.fields", "name fields on a grant of one entity")
                    )
                if grant.rows is not None:
                    raise ValidationFailed(
                        FieldProblem(f"{path}.rows", "give row conditions per entity")
                    )
                continue
            known = {f.name for f in site.entities[entity].fields}
            for name in grant.fields:
                if name not in known:
                    raise ValidationFailed(
                        FieldProblem(f"{path}.fields.{name}", f"unknown field of {entity}")
                    )
            if grant.rows is not None:
                probe = substitute_user(grant.rows, {"id": 0, "login": "", "roles": []})
                try:
                    site.compile_filter(site.runtime(entity), probe)
                except ValidationFailed as exc:
                    raise ValidationFailed(
                        FieldProblem(f"{path}.rows", exc.detail.removeprefix("filter: "))
                    ) from exc

    async def save_role(self, role: RoleDef) -> RoleDef:
        """Create or replace a role (checked; audited with the before and after)."""
        self.check_role(role)
        payload = msgspec.json.encode(role).decode()
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "SELECT definition, version FROM jimu_role WHERE name = {}", [role.name]
            )
            if row is None:
                await self.db.execute(
                    "INSERT INTO jimu_role (name, definition, version, updated_at) VALUES ({}, {}, 1, {})",
                    [role.name, payload, time.time()],
                )
                before = None
            else:
                await self.db.execute(
                    "UPDATE jimu_role SET definition = {}, version = {}, updated_at = {} WHERE name = {}",
                    [payload, int(row["version"]) + 1, time.time(), role.name],
                )
                before = msgspec.json.decode(row["definition"])
            await self.audit(
                "role.saved",
                detail={"role": role.name, "before": before, "after": msgspec.to_builtins(role)},
            )
            await self._bump()
        return role

    async def delete_role(self, name: str) -> None:
        """Remove a role and every membership of it (audited)."""
        async with self.db.transaction():
            before = await self.role(name)
            await self.db.execute("DELETE FROM jimu_user_role WHERE role = {}", [name])
            await self.db.execute("DELETE FROM jimu_role WHERE name = {}", [name])
            await self.audit(
                "role.deleted", detail={"role": name, "before": msgspec.to_builtins(before)}
            )
            await self._bump()

    # -- shares ----------------------------------------------------------

    async def share(
        self, entity: str, record_id: int, user_id: int, *, write: bool = False
    ) -> None:
        """Let ``user_id`` see (and with ``write``, change) one record beyond their row rules."""
        self.site.runtime(entity)  # NotFound for an unknown entity
        await self.get_user(user_id)
        async with self.db.transaction():
            await self.db.execute(
                "DELETE FROM jimu_share WHERE entity = {} AND record_id = {} AND user_id = {}",
                [entity, record_id, user_id],
            )
            await self.db.execute(
                "INSERT INTO jimu_share (entity, record_id, user_id, can_write, shared_by, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {})",
                [entity, record_id, user_id, int(write), current_actor().id, time.time()],
            )
            await self.audit(
                "record.shared",
                entity=entity,
                record_id=record_id,
                detail={"user_id": user_id, "write": write},
            )
            await self._bump()

    async def unshare(self, entity: str, record_id: int, user_id: int) -> None:
        """Take back a share (audited)."""
        async with self.db.transaction():
            await self.db.execute(
                "DELETE FROM jimu_share WHERE entity = {} AND record_id = {} AND user_id = {}",
                [entity, record_id, user_id],
            )
            await self.audit(
                "record.unshared", entity=entity, record_id=record_id, detail={"user_id": user_id}
            )
            await self._bump()

    # -- access ----------------------------------------------------------

    async def access_for(self, user: User, scopes: Iterable[str] | None = None) -> Access:
        """The permission engine for ``user`` (narrowed by a token's ``scopes``)."""
        await self._sync_version()
        key = (user.id, frozenset(scopes) if scopes is not None else None)
        access = self._access_cache.get(key)
        if access is None:
            all_roles = await self.roles()
            shares = await self.db.fetch(
                "SELECT DISTINCT entity FROM jimu_share WHERE user_id = {}", [user.id]
            )
            access = Access(
                self.site,
                user=user,
                roles=[all_roles[name] for name in user.roles if name in all_roles],
                scopes=scopes,
                shared_entities=[row["entity"] for row in shares],
            )
            if len(self._access_cache) > 10_000:
                self._access_cache.clear()
            self._access_cache[key] = access
        return access

    def forget_accesses(self) -> None:
        """Drop cached accesses (the model changed: field lists may differ)."""
        self._access_cache.clear()

    # -- sign-in and sessions --------------------------------------------

    async def login(
        self, login: str, password: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> Session:
        """Check a password and open a session; every attempt is audited.

        After :attr:`lockout_after` failures in a row the account is locked
        for :attr:`lockout_seconds` (429 with Retry-After), even for the right
        password. A wrong login or password is one 401 that does not say which.
        """
        now = time.time()
        row = await self._user_row(login=login)
        attempt = Actor(kind="user", name=login, ip=ip, id=int(row["id"]) if row else None)
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            wait = int(row["locked_until"] - now) + 1
            await self.audit("login.locked", detail={"login": login}, actor=attempt)
            raise TooManyRequests(
                f"too many failed sign-ins for {login!r}: try again in {wait} seconds", wait
            )
        if (
            row is None
            or not bool(row["active"])
            or not verify_password(row["password_hash"], password)
        ):
            if row is not None:
                failures = int(row["failed_logins"]) + 1
                locked = now + self.lockout_seconds if failures >= self.lockout_after else None
                await self.db.execute(
                    "UPDATE jimu_user SET failed_logins = {}, locked_until = {} WHERE id = {}",
                    [0 if locked else failures, locked, row["id"]],
                )
            reason = (
                "no such user"
                if row is None
                else ("inactive" if not bool(row["active"]) else "wrong password")
            )
            await self.audit(
                "login.failed", detail={"login": login, "reason": reason}, actor=attempt
            )
            raise Unauthorized("wrong login or password")
        key = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = now + self.session_seconds
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE jimu_user SET failed_logins = 0, locked_until = NULL WHERE id = {}",
                [row["id"]],
            )
            await self.db.execute(
                "INSERT INTO jimu_session (key_hash, user_id, csrf, created_at, expires_at, ip, user_agent) "
                "VALUES ({}, {}, {}, {}, {}, {}, {})",
                [_hash_secret(key), row["id"], csrf, now, expires, ip, user_agent],
            )
            await self.audit("login", detail={"login": login}, actor=attempt)
        user = await self.get_user(int(row["id"]))
        return Session(user=user, csrf=csrf, expires_at=expires, key=key)

    async def session(self, key: str) -> Session:
        """The live session behind a cookie value; :class:`Unauthorized` otherwise."""
        await self._sync_version()
        hashed = _hash_secret(key)
        kept = self._sessions.get(hashed)
        if kept is not None:
            if kept.expires_at > time.time():
                return kept
            del self._sessions[hashed]
        row = await self.db.fetch_one(
            "SELECT user_id, csrf, expires_at, revoked_at FROM jimu_session WHERE key_hash = {}",
            [hashed],
        )
        if row is None or row["revoked_at"] is not None:
            raise Unauthorized("your session has ended: sign in again")
        if row["expires_at"] <= time.time():
            raise Unauthorized("your session has expired: sign in again")
        user = await self.get_user(int(row["user_id"]))
        if not user.active:
            raise Unauthorized("this account is disabled")
        session = Session(user=user, csrf=row["csrf"], expires_at=float(row["expires_at"]))
        if len(self._sessions) > 10_000:
            self._sessions.clear()
        self._sessions[hashed] = session
        return session

    async def logout(self, key: str) -> None:
        """End a session: its cookie no longer works, wherever it was copied to."""
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE jimu_session SET revoked_at = {} WHERE key_hash = {} AND revoked_at IS NULL",
                [time.time(), _hash_secret(key)],
            )
            await self.audit("logout")
            await self._bump()

    # -- API tokens ------------------------------------------------------

    async def create_token(
        self,
        user_id: int,
        name: str,
        *,
        scopes: Iterable[str] = ("*",),
        expires_at: float | None = None,
    ) -> tuple[str, TokenInfo]:
        """Issue an API token for ``user_id``; return ``(secret, info)``.

        The secret is shown this once: only its hash is stored.
        """
        scope_list = list(dict.fromkeys(scopes))
        for scope in scope_list:
            if scope not in TOKEN_SCOPES:
                raise ValidationFailed(
                    FieldProblem(
                        "scopes",
                        f"unknown scope {scope!r}; use {', '.join(sorted(TOKEN_SCOPES))}",
                    )
                )
        if not scope_list:
            raise ValidationFailed(FieldProblem("scopes", "give at least one scope"))
        if not name.strip():
            raise ValidationFailed(FieldProblem("name", "give the token a name"))
        now = time.time()
        if expires_at is not None and expires_at <= now:
            raise ValidationFailed(FieldProblem("expires_at", "must be in the future"))
        user = await self.get_user(user_id)
        prefix = secrets.token_hex(4)
        secret = f"jimu_{prefix}_{secrets.token_urlsafe(32)}"
        async with self.db.transaction():
            rows = await self.db.fetch(
                "INSERT INTO jimu_token (user_id, name, prefix, key_hash, scopes, created_at, expires_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
                [
                    user_id,
                    name,
                    prefix,
                    _hash_secret(secret),
                    msgspec.json.encode(scope_list).decode(),
                    now,
                    expires_at,
                ],
            )
            token_id = int(rows[0]["id"])
            await self.audit(
                "token.created",
                detail={
                    "token_id": token_id,
                    "user": user.login,
                    "name": name,
                    "scopes": scope_list,
                },
            )
        info = TokenInfo(
            id=token_id,
            user_id=user_id,
            name=name,
            prefix=prefix,
            scopes=scope_list,
            created_at=now,
            expires_at=expires_at,
        )
        return secret, info

    @staticmethod
    def _token_info(row: Mapping[str, Any]) -> TokenInfo:
        return TokenInfo(
            id=int(row["id"]),
            user_id=int(row["user_id"]),
            name=row["name"],
            prefix=row["prefix"],
            scopes=msgspec.json.decode(row["scopes"]),
            created_at=float(row["created_at"]),
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
        )

    async def tokens(self, user_id: int | None = None) -> list[TokenInfo]:
        """Tokens (of one user, or all), newest first."""
        where, params = ("WHERE user_id = {}", [user_id]) if user_id is not None else ("", [])
        rows = await self.db.fetch(
            "SELECT id, user_id, name, prefix, scopes, created_at, expires_at, revoked_at, "
            f"last_used_at FROM jimu_token {where} ORDER BY id DESC",
            params,
        )
        return [self._token_info(row) for row in rows]

    async def token(self, token_id: int) -> TokenInfo:
        """One token by id; :class:`NotFound` when there is none."""
        row = await self.db.fetch_one(
            "SELECT id, user_id, name, prefix, scopes, created_at, expires_at, revoked_at, "
            "last_used_at FROM jimu_token WHERE id = {}",
            [token_id],
        )
        if row is None:
            raise NotFound(f"no token with id {token_id}")
        return self._token_info(row)

    async def revoke_token(self, token_id: int) -> None:
        """Revoke a token at once (audited)."""
        info = await self.token(token_id)
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE jimu_token SET revoked_at = {} WHERE id = {} AND revoked_at IS NULL",
                [time.time(), token_id],
            )
            await self.audit("token.revoked", detail={"token_id": token_id, "name": info.name})
            await self._bump()

    async def authenticate_token(self, secret: str) -> tuple[User, TokenInfo]:
        """The user and token behind a bearer secret; :class:`Unauthorized` otherwise."""
        await self._sync_version()
        hashed = _hash_secret(secret)
        now = time.time()
        kept = self._tokens.get(hashed)
        if kept is not None:
            user, info = kept
            if info.expires_at is None or info.expires_at > now:
                if info.last_used_at is None or now - info.last_used_at > 60:
                    await self.db.execute(
                        "UPDATE jimu_token SET last_used_at = {} WHERE id = {}", [now, info.id]
                    )
                    self._tokens[hashed] = (user, msgspec.structs.replace(info, last_used_at=now))
                return kept
            del self._tokens[hashed]
        row = await self.db.fetch_one(
            "SELECT id, user_id, name, prefix, scopes, created_at, expires_at, revoked_at, "
            "last_used_at FROM jimu_token WHERE key_hash = {}",
            [hashed],
        )
        if row is None:
            raise Unauthorized("unknown API token")
        info = self._token_info(row)
        if info.revoked_at is not None:
            raise Unauthorized("this API token was revoked")
        if info.expires_at is not None and info.expires_at <= now:
            raise Unauthorized("this API token has expired")
        user = await self.get_user(info.user_id)
        if not user.active:
            raise Unauthorized("the account of this API token is disabled")
        if info.last_used_at is None or now - info.last_used_at > 60:
            await self.db.execute(
                "UPDATE jimu_token SET last_used_at = {} WHERE id = {}", [now, info.id]
            )
            info = msgspec.structs.replace(info, last_used_at=now)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[hashed] = (user, info)
        return user, info

    # -- reading the audit log -------------------------------------------

    async def audit_entries(
        self,
        *,
        action: str | None = None,
        entity: str | None = None,
        record_id: int | None = None,
        actor_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries (newest first) other than record changes, filtered."""
        suffix, params = newest_first(
            [
                ("action", action),
                ("entity", entity),
                ("record_id", record_id),
                ("actor_id", actor_id),
            ],
            before_id=before_id,
            limit=limit,
        )
        rows = await self.db.fetch(
            "SELECT id, at, action, actor_kind, actor_id, actor_name, token_id, ip, request_id, "
            f"entity, record_id, detail FROM jimu_audit{suffix}",
            params,
        )
        entries = []
        for row in rows:
            entry = dict(row)
            entry["detail"] = msgspec.json.decode(entry["detail"])
            entries.append(entry)
        return entries

    async def record_changes(
        self,
        *,
        entity: str | None = None,
        record_id: int | None = None,
        actor_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Record changes from the outbox (newest first): who changed what, before and after."""
        suffix, params = newest_first(
            [("entity", entity), ("record_id", record_id), ("actor_id", actor_id)],
            before_id=before_id,
            limit=limit,
        )
        rows = await self.db.fetch(
            "SELECT id, occurred_at, entity, record_id, kind, payload, actor_kind, actor_id, "
            f"actor_name, token_id, ip, request_id FROM jimu_event{suffix}",
            params,
        )
        entries = []
        for row in rows:
            entry = dict(row)
            payload = entry.pop("payload")
            entry["changes"] = (
                msgspec.json.decode(payload) if isinstance(payload, str | bytes) else payload
            )
            occurred = entry["occurred_at"]
            entry["occurred_at"] = occurred if isinstance(occurred, str) else occurred.isoformat()
            entries.append(entry)
        return entries
