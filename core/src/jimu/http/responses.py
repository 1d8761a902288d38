"""Small pieces every route module uses: JSON responses, the site of a request,
typed body decoding, and file names in ``Content-Disposition`` headers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import msgspec
from litestar import Request, Response

from jimu.errors import FieldProblem, ValidationFailed
from jimu.store.records import invalid_input

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = [
    "JSON",
    "content_disposition",
    "decode_body",
    "header_filename",
    "int_query",
    "json_response",
    "site_of",
    "whole_number",
]

JSON = "application/json"
_encoder = msgspec.json.Encoder(decimal_format="string")
_FILENAME = re.compile(
    r"""filename\*\s*=\s*UTF-8''([^;]+)|filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)""",
    re.IGNORECASE,
)


def json_response(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    """``content`` encoded once with msgspec (decimals as exact strings)."""
    return Response(
        content=_encoder.encode(content), status_code=status, media_type=JSON, headers=headers
    )


def whole_number(raw: str, name: str) -> int:
    """``raw`` (a query parameter ``name``) as an int; a 422 naming ``name`` if it is not one."""
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(FieldProblem(name, f"{raw!r} is not a whole number")) from None


def int_query(request: Request[Any, Any, Any], name: str) -> int | None:
    """The whole-number query parameter ``name`` (``None`` if absent; 422 naming it if not one)."""
    raw = request.query_params.get(name)
    return None if raw is None else whole_number(raw, name)


def site_of(request: Request[Any, Any, Any]) -> Site:
    """The site the app serving ``request`` belongs to."""
    site: Site = request.app.state.site
    return site


def decode_body(body: bytes, type_: Any) -> Any:
    """``body`` decoded into ``type_``: malformed JSON is a 400, a wrong shape a 422 naming it."""
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise invalid_input(body, exc) from exc


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="a.pdf"; filename*=UTF-8''a.pdf`` (RFC 6266), with an ASCII
    fallback for old clients and the exact name, Chinese included, for the rest."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in filename
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def header_filename(header: str) -> str | None:
    """The file name a ``Content-Disposition`` header gives (``filename*`` decoded), if any."""
    match = _FILENAME.search(header)
    if match is None:
        return None
    if match.group(1):
        return unquote(match.group(1).strip())
    return (match.group(2) if match.group(2) is not None else match.group(3) or "").strip()
