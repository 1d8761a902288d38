"""Errors the kernel raises on purpose, each with the HTTP status it becomes.

The HTTP layer turns every :class:`JimuError` into an RFC 9457 problem-details
response; the CLI prints its message. A plugin hook raises
:class:`ValidationFailed` to reject a write with a 422 that names the field.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Conflict",
    "FieldProblem",
    "Forbidden",
    "JimuError",
    "NotFound",
    "PluginError",
    "SiteError",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
]


class JimuError(Exception):
    """Base of the kernel's deliberate errors; ``status`` is its HTTP status."""

    status: int = 400
    title: str = "Bad request"
    type_suffix: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class FieldProblem(dict[str, str]):
    """One invalid input: ``{"field": ..., "reason": ...}`` (a dict, so it serialises as is)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field=field, reason=reason)


class ValidationFailed(JimuError):
    """Input broke a rule; ``errors`` lists each field and why (HTTP 422)."""

    status = 422
    title = "Validation failed"
    type_suffix = "validation-failed"

    def __init__(
        self, errors: list[FieldProblem] | FieldProblem, detail: str | None = None
    ) -> None:
        problems = [errors] if isinstance(errors, FieldProblem) else list(errors)
        if detail is None:
            detail = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        super().__init__(detail, errors=problems)
        self.errors = problems

    @classmethod
    def field(cls, field: str, reason: str) -> ValidationFailed:
        """Shorthand for a single bad field."""
        return cls(FieldProblem(field, reason))


class Unauthorized(JimuError):
    """The request carries no valid credentials: not signed in, or a bad token (HTTP 401)."""

    status = 401
    title = "Not signed in"
    type_suffix = "unauthorized"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers = {"WWW-Authenticate": 'Bearer realm="jimu"'}


class Forbidden(JimuError):
    """The principal is known but may not do this (HTTP 403).

    A record that a row condition hides is a :class:`NotFound` instead, so a
    403 never tells whether a hidden record exists.
    """

    status = 403
    title = "Forbidden"
    type_suffix = "forbidden"


class NotFound(JimuError):
    """The entity, record or plugin asked for does not exist (HTTP 404)."""

    status = 404
    title = "Not found"
    type_suffix = "not-found"


class Conflict(JimuError):
    """The request clashes with the current state, e.g. a name already taken (HTTP 409)."""

    status = 409
    title = "Conflict"
    type_suffix = "conflict"


class PluginError(JimuError):
    """Plugins cannot be loaded as configured: missing requirement, cycle, bad hook."""

    status = 500
    title = "Plugin configuration error"
    type_suffix = "plugin-error"


class SiteError(JimuError):
    """A site folder or its ``site.toml`` is missing or invalid."""

    status = 500
    title = "Site configuration error"
    type_suffix = "site-error"


class TooManyRequests(JimuError):
    """Too many requests from one client: form submissions, sign-ins (HTTP 429, Retry-After)."""

    status = 429
    title = "Too many requests"
    type_suffix = "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}
