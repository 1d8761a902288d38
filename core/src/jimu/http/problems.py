"""RFC 9457 problem details for every error the HTTP layer returns.

Bad input is a 4xx whose body names the field and the reason; an unexpected
failure is a 500 with a request id and nothing internal in the body.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException

from jimu.errors import JimuError

__all__ = ["PROBLEM_JSON", "exception_handlers", "problem"]

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://jimu.dev/problems/"

log = logging.getLogger("jimu.http")

_TITLES = {
    400: ("Bad request", "bad-request"),
    401: ("Not authenticated", "not-authenticated"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not-found"),
    405: ("Method not allowed", "method-not-allowed"),
    409: ("Conflict", "conflict"),
    413: ("Request body too large", "body-too-large"),
    415: ("Unsupported media type", "unsupported-media-type"),
    422: ("Validation failed", "validation-failed"),
    429: ("Too many requests", "too-many-requests"),
    500: ("Internal server error", "internal-error"),
}


def problem(
    status: int,
    detail: str,
    *,
    request: Request[Any, Any, Any] | None = None,
    title: str | None = None,
    type_suffix: str | None = None,
    **extra: Any,
) -> Response[bytes]:
    """Build a problem-details response."""
    default_title, default_suffix = _TITLES.get(status, ("Error", "error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (type_suffix or default_suffix),
        "title": title or default_title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return Response(content=msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON)


def _jimu_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, JimuError)
    if exc.status >= 500:
        incident = uuid.uuid4().hex
        log.error("server-side configuration error %s: %s", incident, exc.detail)
        return problem(
            exc.status,
            exc.detail,
            request=request,
            title=exc.title,
            type_suffix=exc.type_suffix,
            incident=incident,
        )
    response = problem(
        exc.status,
        exc.detail,
        request=request,
        title=exc.title,
        type_suffix=exc.type_suffix,
        **exc.extra,
    )
    response.headers.update(getattr(exc, "headers", {}))
    return response


def _http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    assert isinstance(exc, HTTPException)
    detail = exc.detail or _TITLES.get(exc.status_code, ("Error", ""))[0]
    extra: dict[str, Any] = {}
    if isinstance(exc.extra, dict) and exc.extra:
        extra["errors"] = [exc.extra]
    elif isinstance(exc.extra, list) and exc.extra:
        extra["errors"] = exc.extra
    response = problem(exc.status_code, detail, request=request, **extra)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    incident = uuid.uuid4().hex
    log.exception(
        "unexpected error %s on %s %s", incident, request.method, request.url.path, exc_info=exc
    )
    return problem(
        500,
        f"An unexpected error occurred (incident {incident}).",
        request=request,
        incident=incident,
    )


def exception_handlers() -> dict[type[Exception] | int, Any]:
    """Handlers that turn every exception into problem details."""
    return {
        JimuError: _jimu_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
