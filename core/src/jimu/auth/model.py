"""The metadata of identity and permissions: users, roles and what a role may do.

A role is data a person can read and diff::

    {"name": "sales_rep", "label": "Sales rep",
     "grants": {"customer": {"actions": ["read", "create", "update"],
                             "fields": {"credit_limit": "read", "id_number": "none"},
                             "rows": {"or": [{"==": [{"var": "owner"}, {"var": "$user.id"}]},
                                             {"in": [{"var": "region"}, {"var": "$user.regions"}]}]}}},
     "admin": []}

``grants`` maps an entity (or ``"*"`` for every entity without a grant of its
own) to the actions the role may take on it, the level of each field
(``write``, ``read`` or ``none``; fields not named get ``default_field``), and
a row condition in JsonLogic with the current user in scope as ``$user``
(``$user.id``, ``$user.login``, ``$user.roles`` and the user's own
attributes, such as ``$user.regions``). ``admin`` lists the administrative
rights the role holds (manage users, roles, the schema, plugins, read the
audit log, ...).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec

from jimu.meta import Translatable

__all__ = [
    "ACTIONS",
    "ADMIN_RIGHTS",
    "Action",
    "AdminRight",
    "EntityGrant",
    "FieldLevel",
    "RoleDef",
    "User",
]

Action = Literal["read", "create", "update", "delete", "import", "export", "report"]
ACTIONS: tuple[str, ...] = get_args(Action)

FieldLevel = Literal["write", "read", "none"]

AdminRight = Literal["users", "roles", "schema", "plugins", "audit", "automations", "reports"]
ADMIN_RIGHTS: tuple[str, ...] = get_args(AdminRight)


class EntityGrant(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What one role may do with the records of one entity."""

    #: The actions allowed; everything else is refused.
    actions: list[Action] = msgspec.field(default_factory=list)
    #: Level of named fields; the rest get ``default_field``.
    fields: dict[str, FieldLevel] = msgspec.field(default_factory=dict)
    default_field: FieldLevel = "write"
    #: JsonLogic the rows must match (with ``$user`` in scope); ``None``: every row.
    rows: Any = None


class RoleDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A named set of permissions that users hold."""

    name: str
    label: Translatable | None = None
    description: str = ""
    grants: dict[str, EntityGrant] = msgspec.field(default_factory=dict)
    admin: list[AdminRight] = msgspec.field(default_factory=list)


class User(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A person who signs in (never carries the password hash)."""

    id: int
    login: str
    display_name: str = ""
    email: str | None = None
    phone: str | None = None
    active: bool = True
    locale: str = "zh-CN"
    #: Explicit super-user: bypasses permission checks; setting it is audited.
    super_user: bool = False
    roles: list[str] = msgspec.field(default_factory=list)
    #: Free attributes row conditions can read as ``$user.<name>`` (e.g. regions).
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
