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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import ETag, UploadFile
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import File

from jimu.errors import FieldProblem, NotFound, ValidationFailed
from jimu.files import FILES_URL, FileStore, FileTooLarge, StoredFile, human_size, parse_file_id
from jimu.files.sniff import HEAD_BYTES, text_charset
from jimu.http.responses import content_disposition, header_filename, json_response, site_of

__all__ = ["files_router"]

log = logging.getLogger("jimu.http")

#: Bytes read at once from an upload.
READ_CHUNK = 1024 * 1024
_CACHE_FOREVER = "private, max-age=31536000, immutable"


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
    site = site_of(request)
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
            name = params.get("name") or header_filename(
                request.headers.get("content-disposition", "")
            )
            stored = await store.save(request.stream(), name, max_size=limit)
    except HTTPException as exc:
        if exc.status_code == 413:
            raise _too_large(limit) from exc
        raise
    except FileTooLarge as exc:
        raise _too_large(limit) from exc
    return json_response(stored.ref(), 201, headers={"Location": stored.url})


async def _stored(request: Request[Any, Any, Any], file_id: str) -> StoredFile:
    canonical = parse_file_id(file_id)
    if canonical is None:
        raise NotFound(f"no file with id {file_id!r}")
    return await FileStore.of(site_of(request)).get(canonical)


@get("/files/{file_id:str}/info")
async def file_info(request: Request[Any, Any, Any], file_id: FromPath[str]) -> Response[bytes]:
    """The ref of one stored file."""
    stored = await _stored(request, file_id)
    return json_response(stored.ref(), headers={"Cache-Control": _CACHE_FOREVER})


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
    site = site_of(request)
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
