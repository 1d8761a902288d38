"""Users, roles, permissions, sessions, API tokens and the audit log.

One permission engine (:class:`~jimu.auth.access.Access`) answers for every
path that reads or writes data; :func:`current_access` gives the one of the
principal acting in the current task. :class:`~jimu.auth.service.Auth` (a
site's ``site.auth``) keeps users, roles, sessions, tokens, shares and the
audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jimu.auth.access import UNRESTRICTED, Access
from jimu.auth.context import SYSTEM, Actor, acting_as, current_access, current_actor
from jimu.auth.model import ACTIONS, ADMIN_RIGHTS, EntityGrant, RoleDef, User

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = [
    "ACTIONS",
    "ADMIN_RIGHTS",
    "SYSTEM",
    "UNRESTRICTED",
    "Access",
    "Actor",
    "EntityGrant",
    "RoleDef",
    "User",
    "acting_as",
    "current_access",
    "current_actor",
    "users_with_role",
]


async def users_with_role(site: Site, role: str) -> list[User]:
    """The active users of ``site`` holding ``role``, by id."""
    return await site.auth.users_with_role(role)
