"""Who is acting right now: the actor and their access, per asyncio task.

Every way data is read or written asks :func:`current_access` what the acting
principal may do, so the one permission engine serves the HTTP API, imports,
exports, reports and automations alike. The HTTP layer sets the actor of a
request from its session cookie or bearer token; code that acts on somebody's
behalf (an automation step "run as" a user) sets it with :func:`acting_as`.
Code that sets nobody (the CLI, tests, kernel jobs) acts as the system, which
may do everything, and every write it makes is recorded as the system's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import msgspec

if TYPE_CHECKING:
    from jimu.auth.access import Access

__all__ = [
    "SYSTEM",
    "Actor",
    "ActorKind",
    "act_for_request",
    "acting_as",
    "current_access",
    "current_actor",
]

ActorKind = Literal["user", "token", "automation", "system", "public"]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did something, as the audit log records it.

    ``kind`` says how they acted: a ``user`` (session), an API ``token`` (``id``
    is the token's user, ``token_id`` the token), an ``automation`` run, the
    ``system`` (CLI, kernel jobs) or the ``public`` (an anonymous form).
    """

    kind: ActorKind
    id: int | None = None
    name: str = ""
    token_id: int | None = None
    ip: str | None = None
    request_id: str | None = None


#: The actor of code that set nobody: the CLI, tests, the kernel's own jobs.
SYSTEM = Actor(kind="system", name="system")

_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("jimu_actor", default=SYSTEM)
_access: contextvars.ContextVar[Access | None] = contextvars.ContextVar("jimu_access", default=None)


def current_actor() -> Actor:
    """The actor of the current task (:data:`SYSTEM` when nobody set one)."""
    return _actor.get()


def current_access() -> Access:
    """What the current actor may do (unrestricted when nobody set an access)."""
    access = _access.get()
    if access is None:
        from jimu.auth.access import UNRESTRICTED

        return UNRESTRICTED
    return access


@contextmanager
def acting_as(actor: Actor, access: Access | None = None) -> Iterator[Actor]:
    """Run the block as ``actor`` with ``access`` (unrestricted when ``None``).

    ``access=None`` is for the system and for kernel work done on a person's
    behalf that the person's own rights already allowed; to act with a user's
    rights, pass the :class:`~jimu.auth.access.Access` built for them
    (:meth:`jimu.auth.Auth.access_for`).
    """
    actor_token = _actor.set(actor)
    access_token = _access.set(access)
    try:
        yield actor
    finally:
        _access.reset(access_token)
        _actor.reset(actor_token)


def act_for_request(actor: Actor, access: Access) -> None:
    """Make ``actor`` with ``access`` the principal of the rest of the current task.

    For the HTTP layer: each request runs in a task of its own, so what is
    set here ends with the request. Everywhere else use :func:`acting_as`.
    """
    _actor.set(actor)
    _access.set(access)
