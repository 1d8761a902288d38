"""HTTP routes of the site's file store (see :mod:`jimu.files`).

* ``POST /api/v1/files`` — upload one file: multipart (form field ``file``,
  optionally ``name``) or the raw body (name in ``?name=`` or a
  ``Content-Disposition`` header). 201 with the file ref
  ``{"id", "name", "size", "content_type", "url"}`` (``width``, ``height`` for
  an image) and ``Location``. Larger than the site's ``api.max_body_bytes``:
  413. The content type is sniffed from the bytes, not taken from the client.
* ``GET /api/v1/files/{id}`` — the bytes, with their content type; images
  inline, everything else as a download (``Content-Disposition: attachment``).
  Files never change, so the answer may be cached for good (``ETag`` is the
  SHA-256; ``If-None-Match`` gets a 304).
* ``GET /api/v1/files/{id}/info`` — the file ref alone.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import ETag, UploadFile
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import File

from jimu.errors import FieldProblem, NotFound, ValidationFailed
from jimu.files import FILES_URL, FileStore, FileTooLarge, StoredFile, human_size, parse_file_id
from jimu.files.sniff import HEAD_BYTES, text_charset
from jimu.site import Site

__all__ = ["content_disposition", "files_router"]

log = logging.getLogger("jimu.http")

JSON = "application/json"
#: Bytes read at once from an upload.
READ_CHUNK = 1024 * 1024
_encoder = msgspec.json.Encoder()
_FILENAME = re.compile(
    r"""filename\*\s*=\s*UTF-8''([^;]+)|filename\s*=\s*"([^"]*)"|filename\s*=\s*([^;]+)""",
    re.IGNORECASE,
)
_CACHE_FOREVER = "private, max-age=31536000, immutable"


def _json(
    content: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=_encoder.encode(content), status_code=status, media_type=JSON, headers=headers
    )


def _site(request: Request[Any, Any, Any]) -> Site:
    site: Site = request.app.state.site
    return site


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="a.pdf"; filename*=UTF-8''a.pdf`` (RFC 6266), with an ASCII
    fallback for old clients and the exact name, Chinese included, for the rest."""
    fallback = "".join(
        char if char.isascii() and char.isprintable() and char not in '"\\' else "_"
        for char in filename
    )
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _header_filename(header: str) -> str | None:
    match = _FILENAME.search(header)
    if match is None:
        return None
    if match.group(1):
        return unquote(match.group(1).strip())
    return (match.group(2) if match.group(2) is not None else match.group(3) or "").strip()


async def _read_upload(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(READ_CHUNK):
        yield chunk


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(
        f"the file is larger than {human_size(limit)}, the most this site accepts "
        "(api.max_body_bytes in site.toml)",
        limit=limit,
    )


@post("/files", status_code=201)
async def upload_file(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Store one uploaded file; answer its ref (201)."""
    site = _site(request)
    limit = site.config.max_body_bytes
    params = dict(request.query_params)
    unknown = sorted(set(params) - {"name"})
    if unknown:
        raise ValidationFailed(FieldProblem(unknown[0], "unknown parameter (known: name)"))
    store = FileStore.of(site)
    content_type, _ = request.content_type
    try:
        if content_type == "multipart/form-data":
            form = await request.form()
            upload: UploadFile | None = None
            name = params.get("name")
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if upload is not None or key != "file":
                        raise ValidationFailed(
                            FieldProblem(key, "send one file per request, in the form field 'file'")
                        )
                    upload = value
                elif key == "name":
                    name = name or str(value)
                elif key == "file":  # a part without a file name is a text field
                    raise ValidationFailed(
                        FieldProblem(key, "is not a file: send it as a file part, with a file name")
                    )
                else:
                    raise ValidationFailed(
                        FieldProblem(key, "unknown form field (known: file, name)")
                    )
            if upload is None:
                raise ValidationFailed(
                    FieldProblem("file", "no file: send it in the form field 'file'")
                )
            try:
                stored = await store.save(
                    _read_upload(upload), name or upload.filename, max_size=limit
                )
            finally:
                await upload.close()
        elif content_type == "application/x-www-form-urlencoded":
            raise ValidationFailed(
                FieldProblem(
                    "file",
                    "send the file as multipart/form-data (field 'file') or as the raw body",
                )
            )
        else:
            name = params.get("name") or _header_filename(
                request.headers.get("content-disposition", "")
            )
            stored = await store.save(request.stream(), name, max_size=limit)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise _too_large(limit) from exc
        raise
    except FileTooLarge as exc:
        raise _too_large(limit) from exc
    return _json(stored.ref(), 201, headers={"Location": stored.url})


async def _stored(request: Request[Any, Any, Any], file_id: str) -> StoredFile:
    canonical = parse_file_id(file_id)
    if canonical is None:
        raise NotFound(f"no file with id {file_id!r}")
    return await FileStore.of(_site(request)).get(canonical)


@get("/files/{file_id:str}/info")
async def file_info(request: Request[Any, Any, Any], file_id: FromPath[str]) -> Response[bytes]:
    """The ref of one stored file."""
    stored = await _stored(request, file_id)
    return _json(stored.ref(), headers={"Cache-Control": _CACHE_FOREVER})


def _charset(stored: StoredFile, head: bytes) -> str:
    """The charset of a text file (Litestar adds it to a ``text/*`` content type)."""
    return text_charset(head, complete=len(head) >= stored.size) or "utf-8"


def _read_head(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        data: bytes = handle.read(size)
        return data


@get("/files/{file_id:str}")
async def download_file(
    request: Request[Any, Any, Any], file_id: FromPath[str]
) -> Response[Any] | File:
    """The bytes of one stored file: images inline, anything else as a download."""
    site = _site(request)
    stored = await _stored(request, file_id)
    store = FileStore.of(site)
    if not await store.exists(stored):
        log.warning("site %s: the bytes of file %s are missing", site.config.name, stored.id)
        raise NotFound(f"the bytes of file {stored.id} are missing from the site's file store")
    etag = f'"{stored.sha256}"'
    headers = {
        "Cache-Control": _CACHE_FOREVER,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": content_disposition(
            "inline" if stored.is_image else "attachment", stored.name
        ),
    }
    wanted = request.headers.get("if-none-match", "")
    if wanted and (wanted.strip() == "*" or etag in [tag.strip() for tag in wanted.split(",")]):
        return Response(content=b"", status_code=304, headers={**headers, "ETag": etag})
    charset = "utf-8"
    if stored.content_type.startswith("text/"):
        head = await asyncio.to_thread(_read_head, store.path(stored), HEAD_BYTES)
        charset = _charset(stored, head)
    return File(
        path=store.path(stored),
        filename=stored.name,
        media_type=stored.content_type,
        encoding=charset,
        content_disposition_type="inline" if stored.is_image else "attachment",
        etag=ETag(value=stored.sha256),
        headers=headers,
    )


def files_router() -> Router:
    """The ``/api/v1`` routes of the file store."""
    return Router(
        path=FILES_URL.removesuffix("/files"),
        route_handlers=[upload_file, file_info, download_file],
    )
