"""The permission engine: what one principal may do on one site.

An :class:`Access` is built once per principal (a user, or a user's API token
narrowed by its scopes) from the roles the user holds, and answers every
question a data path asks: may they take this action on this entity, which
fields may they read or write, and which rows may they see (a SQL condition
compiled from the roles' JsonLogic row rules, the plugins' extra conditions
and the records shared with the user). The record repository, import, export
and reports all ask the same object, so a permission enforced in one place is
enforced in all of them.

Roles combine generously: an action is allowed if any role allows it; a
field's level is the highest any role's grant on the entity gives it; the rows of
an action are those any role allowing the action lets the user see (a role
without a row rule sees every row). Plugins' row conditions narrow that
further (they are ANDed), and records shared with the user are added.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jimu.auth.model import ACTIONS, EntityGrant, RoleDef, User
from jimu.errors import FieldProblem, Forbidden, ValidationFailed

if TYPE_CHECKING:
    from jimu.site import Site
    from jimu.store.records import EntityRuntime

__all__ = ["SCOPES", "UNRESTRICTED", "Access", "substitute_user"]

#: System columns every entity has; readable by whoever may read the entity.
_SYSTEM_COLUMNS = frozenset({"id", "created_at", "updated_at"})

_LEVEL_RANK: dict[str, int] = {"none": 0, "read": 1, "write": 2}

#: The token scope each action needs; ``admin`` covers administrative rights.
SCOPES: dict[str, str] = {
    "read": "read",
    "create": "write",
    "update": "write",
    "delete": "write",
    "import": "import",
    "export": "export",
    "report": "report",
}
_ALL_SCOPES = frozenset({*SCOPES.values(), "admin"})

#: A rule that matches no row (an action no role allows).
_NOTHING: dict[str, Any] = {"==": [1, 0]}


def user_scope(user: User) -> dict[str, Any]:
    """The values a row rule reads as ``$user.<name>``."""
    return {
        **user.attributes,
        "id": user.id,
        "login": user.login,
        "roles": list(user.roles),
        "email": user.email,
        "phone": user.phone,
    }


def substitute_user(rule: Any, values: Mapping[str, Any]) -> Any:
    """``rule`` with every ``{"var": "$user.x"}`` replaced by the user's value of ``x``.

    A ``$user`` attribute the user does not have becomes ``null`` (or the
    ``var``'s default), so a rule over a missing attribute matches nothing
    rather than failing.
    """
    if isinstance(rule, list):
        return [substitute_user(item, values) for item in rule]
    if not isinstance(rule, dict):
        return rule
    if len(rule) == 1 and "var" in rule:
        arg = rule["var"]
        path, default = (
            (arg[0], arg[1] if len(arg) > 1 else None)
            if isinstance(arg, list) and arg
            else (arg, None)
        )
        if isinstance(path, str) and (path == "$user" or path.startswith("$user.")):
            name = path[len("$user.") :] if path != "$user" else ""
            if not name:
                return dict(values)
            value: Any = values
            for part in name.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
                if value is None:
                    return default
            return list(value) if isinstance(value, tuple) else value
        return rule
    return {key: substitute_user(value, values) for key, value in rule.items()}


@dataclass(slots=True)
class _Merged:
    """The roles' grants on one entity, combined."""

    actions: set[str] = field(default_factory=set)
    grants: list[EntityGrant] = field(default_factory=list)
    #: the highest level a field may reach (super-user: write; a read-only token: read)
    cap: int = 2
    everything: bool = False
    #: action -> row rules of the roles allowing it (``None`` in the list: all rows)
    rows: dict[str, list[Any]] = field(default_factory=dict)


class Access:
    """What one principal may do on one site; see the module docstring."""

    def __init__(
        self,
        site: Site | None,
        *,
        user: User | None = None,
        roles: Sequence[RoleDef] = (),
        scopes: Iterable[str] | None = None,
        unrestricted: bool = False,
        shared_entities: Iterable[str] = (),
    ) -> None:
        self.site = site
        self.user = user
        self.roles = list(roles)
        self.super_user = bool(user is not None and user.super_user)
        self.scopes = frozenset(scopes) if scopes is not None else None
        if self.scopes is not None and "*" in self.scopes:
            self.scopes = _ALL_SCOPES
        #: No check applies (the system, or a super-user without narrowing scopes).
        self.unrestricted = unrestricted or (
            self.super_user and (self.scopes is None or self.scopes >= _ALL_SCOPES)
        )
        self._merged: dict[str, _Merged] = {}
        self._readable: dict[str, frozenset[str]] = {}
        self._writable: dict[str, frozenset[str]] = {}
        self._row_sql: dict[tuple[str, str], tuple[list[str], list[Any]]] = {}
        self._admin = {right for role in self.roles for right in role.admin}
        #: Entities with records shared with the user (only those pay for the share lookup).
        self.shared_entities = frozenset(shared_entities)

    # -- entity actions --------------------------------------------------

    def _grant(self, entity: str) -> _Merged:
        merged = self._merged.get(entity)
        if merged is not None:
            return merged
        merged = _Merged()
        for role in self.roles:
            grant: EntityGrant | None = role.grants.get(entity) or role.grants.get("*")
            if grant is None:
                continue
            merged.actions.update(grant.actions)
            merged.grants.append(grant)
            for action in grant.actions:
                merged.rows.setdefault(action, []).append(grant.rows)
        if self.scopes is not None and not self.super_user:
            merged.actions = {a for a in merged.actions if SCOPES[a] in self.scopes}
        if self.super_user:  # a super-user narrowed by token scopes: every field, every row
            merged.actions = {a for a in ACTIONS if self.scopes is None or SCOPES[a] in self.scopes}
            merged.everything = True
            merged.rows = {a: [None] for a in merged.actions}
        if self.scopes is not None and "write" not in self.scopes:
            merged.cap = 1
        self._merged[entity] = merged
        return merged

    def allows(self, entity: str, action: str) -> bool:
        """Whether the principal may take ``action`` on ``entity`` records at all."""
        return self.unrestricted or action in self._grant(entity).actions

    def require(self, entity: str, action: str) -> None:
        """Raise :class:`Forbidden` unless the principal may ``action`` ``entity`` records."""
        if not self.allows(entity, action):
            raise Forbidden(f"you may not {action} {entity} records")

    def require_admin(self, right: str) -> None:
        """Raise :class:`Forbidden` unless the principal holds the administrative ``right``."""
        if self.unrestricted:
            return
        if self.scopes is not None and "admin" not in self.scopes:
            raise Forbidden(f"this token's scopes do not include admin (needed to manage {right})")
        if not self.super_user and right not in self._admin:
            raise Forbidden(f"you may not manage {right}")

    def has_admin(self, right: str) -> bool:
        """Whether :meth:`require_admin` would pass for ``right``."""
        try:
            self.require_admin(right)
        except Forbidden:
            return False
        return True

    # -- fields ----------------------------------------------------------

    def _field_names(self, entity: str) -> list[str]:
        if self.site is None or entity not in self.site.entities:
            return []
        return [f.name for f in self.site.entities[entity].fields]

    def _level(self, merged: _Merged, name: str) -> int:
        """A field's level: the highest any role's grant gives it, within the cap."""
        if merged.everything:
            return merged.cap
        best = 0
        for grant in merged.grants:
            best = max(best, _LEVEL_RANK[grant.fields.get(name, grant.default_field)])
        return min(best, merged.cap)

    def readable_fields(self, entity: str) -> frozenset[str] | None:
        """The fields of ``entity`` the principal may read (``None``: every field)."""
        if self.unrestricted:
            return None
        cached = self._readable.get(entity)
        if cached is None:
            merged = self._grant(entity)
            if "read" not in merged.actions:
                cached = frozenset()
            else:
                cached = _SYSTEM_COLUMNS | {
                    n for n in self._field_names(entity) if self._level(merged, n) >= 1
                }
            self._readable[entity] = cached
        return cached

    def writable_fields(self, entity: str) -> frozenset[str] | None:
        """The fields of ``entity`` the principal may write (``None``: every field)."""
        if self.unrestricted:
            return None
        cached = self._writable.get(entity)
        if cached is None:
            merged = self._grant(entity)
            cached = frozenset(n for n in self._field_names(entity) if self._level(merged, n) >= 2)
            self._writable[entity] = cached
        return cached

    def can_read_field(self, entity: str, name: str) -> bool:
        """Whether the principal may read field ``name`` of ``entity``."""
        readable = self.readable_fields(entity)
        return readable is None or name in readable

    def check_readable(self, entity: str, fields: Iterable[str], what: str) -> None:
        """Refuse (403) the first of ``fields`` (``customer.city`` paths too) not readable.

        ``what`` names the use, e.g. ``filter`` or ``sort``, so the message
        says where the field was asked for: filtering or sorting on a field a
        user may not read would leak its values by bisection.
        """
        if self.unrestricted:
            return
        for path in fields:
            head, _, rest = path.partition(".")
            if not self.can_read_field(entity, head):
                raise Forbidden(
                    f"{what}: you may not read field {head!r} of {entity}",
                    errors=[FieldProblem(what, f"field {path!r} is not readable")],
                )
            if rest and self.site is not None:
                target = self._link_target(entity, head)
                if target is not None:
                    self.require(target, "read")
                    self.check_readable(target, [rest], what)

    def _link_target(self, entity: str, name: str) -> str | None:
        if self.site is None or entity not in self.site.entities:
            return None
        for definition in self.site.entities[entity].fields:
            if definition.name == name:
                target = definition.options.get("target")
                return target if isinstance(target, str) else None
        return None

    def check_writable(self, entity: str, names: Iterable[str], prefix: str = "") -> None:
        """Refuse (403) a write to the first of ``names`` the principal may not write."""
        if self.unrestricted:
            return
        writable = self.writable_fields(entity) or frozenset()
        for name in names:
            if name not in writable:
                raise Forbidden(
                    f"{prefix}{name}: you may not write this field of {entity}",
                    errors=[FieldProblem(prefix + name, "not writable for you")],
                )

    def visible(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` without the fields the principal may not read (its id stays)."""
        readable = self.readable_fields(entity)
        if readable is None:
            return dict(record)
        return {name: value for name, value in record.items() if name in readable or name == "id"}

    # -- rows ------------------------------------------------------------

    def row_rule(self, entity: str, action: str = "read") -> Any:
        """The JsonLogic rows of ``entity`` the principal may ``action`` (``None``: all).

        The ``$user`` values are already substituted. Records shared with the
        user are not part of the rule (they are added in SQL by :meth:`row_filter`).
        """
        if self.unrestricted:
            return None
        merged = self._grant(entity)
        rules = merged.rows.get(action)
        if not rules:
            return _NOTHING
        values = user_scope(self.user) if self.user is not None else {}
        combined: Any = None
        if all(rule is not None for rule in rules):
            parts = [substitute_user(rule, values) for rule in rules]
            combined = parts[0] if len(parts) == 1 else {"or": parts}
        extra = self._plugin_conditions(entity, values)
        if extra:
            combined = (
                {"and": [combined, *extra]}
                if combined is not None
                else (extra[0] if len(extra) == 1 else {"and": extra})
            )
        return combined

    def _plugin_conditions(self, entity: str, values: Mapping[str, Any]) -> list[Any]:
        site = self.site
        if site is None or entity not in site.entities:
            return []
        if not site.plugins.has_hook("jimu_row_conditions"):
            return []
        results = site.plugins.collect(
            "jimu_row_conditions", site=site, user=self.user, entity=site.entities[entity]
        )
        return [substitute_user(rule, values) for rule in results]

    def row_filter(
        self, site: Site, runtime: EntityRuntime, action: str = "read"
    ) -> tuple[list[str], list[Any]]:
        """SQL conditions (``{}`` placeholders) limiting ``runtime``'s table to allowed rows.

        ``([], [])`` when every row is allowed. Records shared with the user
        (for ``update``/``delete``: shared with write access) are allowed too.
        """
        if self.unrestricted:
            return [], []
        key = (runtime.name, action)
        cached = self._row_sql.get(key)
        if cached is not None:
            return cached
        rule = self.row_rule(runtime.name, action)
        if rule is None:
            result: tuple[list[str], list[Any]] = ([], [])
        else:
            where: list[str]
            params: list[Any]
            if rule is _NOTHING:
                where, params = ["(1 = 0)"], []
            else:
                try:
                    where, params = site.compile_filter(runtime, rule)
                except ValidationFailed as exc:
                    raise Forbidden(
                        f"the row condition of your role on {runtime.name} cannot run: {exc.detail}"
                    ) from exc
            if self.user is not None and runtime.name in self.shared_entities:
                share = (
                    f'{runtime.quoted}."id" IN (SELECT record_id FROM jimu_share '
                    "WHERE entity = {} AND user_id = {}"
                    + (" AND can_write = 1" if action in {"update", "delete"} else "")
                    + ")"
                )
                joined = " AND ".join(where) if where else "1 = 1"
                result = ([f"(({joined}) OR {share})"], [*params, runtime.name, self.user.id])
            else:
                result = (where, params)
        self._row_sql[key] = result
        return result


#: The access of the system: every check passes.
UNRESTRICTED = Access(None, unrestricted=True)
