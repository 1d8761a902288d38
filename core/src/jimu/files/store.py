"""The site's file store: uploaded files on disk, their facts in the table ``jimu_file``.

A file is saved under the site folder as ``files/<yyyy>/<mm>/<id><ext>`` and
never changes afterwards: its id (a random UUID, 32 hex digits) names these
exact bytes forever, so downloads can be cached for good. Writes are atomic:
the bytes go to ``files/.tmp/`` first, are flushed to disk, and are moved into
place with one rename before the row that points at them is inserted, so a
row never names a file that is not complete. Two uploads of the same bytes
share one file on disk (found by SHA-256), each with its own id and name.

The content type is sniffed from the bytes (:mod:`jimu.files.sniff`), never
taken from the client.

Files are not deleted yet: a record that stops referring to one leaves it in
the store (a later clean-up job may remove files no record refers to; it
must keep a path as long as any row names it, because of the sharing above).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import re
import unicodedata
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from jimu.errors import FieldProblem, JimuError, NotFound, ValidationFailed
from jimu.files.sniff import HEAD_BYTES, IMAGE_TYPES, Sniffed, extension_for, sniff
from jimu.store.database import Database

__all__ = [
    "FILES_URL",
    "FILE_TABLES",
    "FileStore",
    "FileTooLarge",
    "StoredFile",
    "clean_name",
    "ensure_tables",
    "human_size",
    "parse_file_id",
]

#: The kernel table of the file store.
FILE_TABLES = ("jimu_file",)
#: Where the HTTP API serves a file: ``{FILES_URL}/{id}``.
FILES_URL = "/api/v1/files"
#: Bytes written to disk at once while a file is saved.
WRITE_CHUNK = 1024 * 1024

_ID = re.compile(r"^[0-9a-fA-F]{32}$|^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _ddl(db: Database) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS jimu_file ("
        " id TEXT PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " size BIGINT NOT NULL,"
        " content_type TEXT NOT NULL,"
        " sha256 TEXT NOT NULL,"
        " path TEXT NOT NULL,"
        " width INTEGER,"
        " height INTEGER,"
        " created_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_file_sha256 ON jimu_file (sha256)",
    ]


async def ensure_tables(db: Database) -> None:
    """Create ``jimu_file`` if it does not exist yet."""
    await db.ensure_tables("jimu.files", _ddl(db))


def parse_file_id(text: str) -> str | None:
    """A file id in canonical form (32 lower-case hex digits), or ``None`` when ``text``
    is not one (the dashed UUID form and upper case are accepted)."""
    if not isinstance(text, str) or not _ID.match(text):
        return None
    return uuid.UUID(text).hex


def clean_name(name: str | None) -> str:
    """A file name fit to store and to send back in ``Content-Disposition``.

    Folders a browser or client put in front are dropped (``C:\\fakepath\\a.png``
    is ``a.png``), so are control characters; at most 255 characters are kept,
    with the extension; an empty name becomes ``file``.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(char for char in text if char.isprintable()).strip()
    if text in {"", ".", ".."}:
        return "file"
    if len(text) > 255:
        dot = text.rfind(".")
        extension = text[dot:] if dot > 0 and len(text) - dot <= 16 else ""
        text = text[: 255 - len(extension)].rstrip() + extension
    return text


def human_size(size: int) -> str:
    """``512 bytes``, ``1.5 KB``, ``10 MB`` (units of 1024)."""
    if size < 1024:
        return f"{size} bytes" if size != 1 else "1 byte"
    value = float(size)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")


class FileTooLarge(JimuError):
    """A file is larger than allowed (HTTP 413)."""

    status = 413
    title = "Request body too large"
    type_suffix = "body-too-large"


@dataclass(frozen=True)
class StoredFile:
    """One file of the store: what ``jimu_file`` knows about it."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    #: Where the bytes are, relative to the store's folder (``2024/05/<id>.png``).
    path: str
    width: int | None
    height: int | None
    created_at: dt.datetime

    @property
    def url(self) -> str:
        """Where the HTTP API serves the file."""
        return f"{FILES_URL}/{self.id}"

    @property
    def is_image(self) -> bool:
        """Whether browsers show it as an image (PNG, JPEG, GIF, WebP, BMP, AVIF)."""
        return self.content_type in IMAGE_TYPES

    def ref(self) -> dict[str, Any]:
        """The file as a field value and the upload's answer:
        ``{"id", "name", "size", "content_type", "url"}``, with ``width`` and
        ``height`` for an image whose size could be read."""
        ref: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
            "url": self.url,
        }
        if self.width is not None and self.height is not None:
            ref["width"] = self.width
            ref["height"] = self.height
        return ref


def _read_time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _row_file(row: dict[str, Any]) -> StoredFile:
    return StoredFile(
        id=row["id"],
        name=row["name"],
        size=int(row["size"]),
        content_type=row["content_type"],
        sha256=row["sha256"],
        path=row["path"],
        width=None if row["width"] is None else int(row["width"]),
        height=None if row["height"] is None else int(row["height"]),
        created_at=_read_time(row["created_at"]),
    )


_COLUMNS = "id, name, size, content_type, sha256, path, width, height, created_at"


async def _chunks(content: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        yield bytes(content)
        return
    async for chunk in content:
        if chunk:
            yield chunk


# -- blocking file work, run in a worker thread -----------------------------------------


def _open_temp(folder: Path, name: str) -> BinaryIO:
    folder.mkdir(parents=True, exist_ok=True)
    return (folder / name).open("xb")


def _finish(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _discard(handle: BinaryIO, path: Path) -> None:
    handle.close()
    path.unlink(missing_ok=True)


def _place(temp: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(temp, target)  # atomic on one file system


def _usable(path: Path, size: int) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size
    except OSError:
        return False


_STORES: weakref.WeakKeyDictionary[Any, FileStore] = weakref.WeakKeyDictionary()


class FileStore:
    """The files of one site: bytes under ``root``, facts in ``jimu_file`` of ``db``."""

    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = root

    @classmethod
    def of(cls, site: Any) -> FileStore:
        """The store of ``site`` (its ``files`` folder and database), one per site object."""
        store = _STORES.get(site)
        if store is None or store.db is not site.db:
            store = _STORES[site] = cls(site.db, Path(site.folder) / "files")
        return store

    def path(self, file: StoredFile) -> Path:
        """Where the bytes of ``file`` are on disk."""
        return self.root / file.path

    async def save(
        self,
        content: bytes | AsyncIterable[bytes],
        name: str | None,
        *,
        max_size: int | None = None,
    ) -> StoredFile:
        """Store a file (its bytes, or an async stream of chunks) called ``name``.

        The content type is sniffed from the bytes; an image's width and height
        are read from its header. Raises :class:`FileTooLarge` (413) past
        ``max_size`` bytes and :class:`ValidationFailed` for an empty file;
        nothing is left behind then.
        """
        await ensure_tables(self.db)
        name = clean_name(name)
        file_id = uuid.uuid4().hex
        temp_folder = self.root / ".tmp"
        temp = temp_folder / f"{file_id}.part"
        digest = hashlib.sha256()
        head = bytearray()
        size = 0
        handle = await asyncio.to_thread(_open_temp, temp_folder, temp.name)
        try:
            buffer = bytearray()
            async for chunk in _chunks(content):
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise FileTooLarge(
                        f"the file is larger than {human_size(max_size)}, "
                        "the most this site accepts",
                        limit=max_size,
                    )
                digest.update(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                buffer += chunk
                if len(buffer) >= WRITE_CHUNK:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(handle.write, bytes(buffer))
            await asyncio.to_thread(_finish, handle)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, handle, temp))
            raise
        try:
            if size == 0:
                raise ValidationFailed(FieldProblem("file", "is empty"))
            found: Sniffed = await asyncio.to_thread(
                sniff, bytes(head), name, temp, complete=size <= HEAD_BYTES
            )
            sha256 = digest.hexdigest()
            now = dt.datetime.now(dt.UTC)
            relative = f"{now:%Y}/{now:%m}/{file_id}{extension_for(found.content_type, name)}"
            shared = await self.db.fetch_one(
                "SELECT path FROM jimu_file WHERE sha256 = {} AND size = {} ORDER BY created_at",
                [sha256, size],
            )
            if shared is not None and await asyncio.to_thread(
                _usable, self.root / shared["path"], size
            ):
                relative = shared["path"]
                await asyncio.to_thread(temp.unlink, True)
            else:
                await asyncio.to_thread(_place, temp, self.root / relative)
                shared = None
        except BaseException:
            await asyncio.shield(asyncio.to_thread(temp.unlink, True))
            raise
        stored = StoredFile(
            id=file_id,
            name=name,
            size=size,
            content_type=found.content_type,
            sha256=sha256,
            path=relative,
            width=found.width,
            height=found.height,
            created_at=now,
        )
        try:
            await self.db.execute(
                f"INSERT INTO jimu_file ({_COLUMNS}) VALUES ({{}}, {{}}, {{}}, {{}}, {{}}, {{}}, {{}}, {{}}, {{}})",
                [
                    stored.id,
                    stored.name,
                    stored.size,
                    stored.content_type,
                    stored.sha256,
                    stored.path,
                    stored.width,
                    stored.height,
                    now.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
                    if self.db.dialect == "sqlite"
                    else now,
                ],
            )
        except BaseException:
            if shared is None:
                await asyncio.shield(asyncio.to_thread((self.root / relative).unlink, True))
            raise
        return stored

    async def find(self, ids: Iterable[str]) -> dict[str, StoredFile]:
        """The stored files among ``ids`` (canonical ids), by id; unknown ids are left out."""
        wanted = sorted({file_id for file_id in ids if file_id})
        if not wanted:
            return {}
        await ensure_tables(self.db)
        found: dict[str, StoredFile] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join("{}" for _ in chunk)
            rows = await self.db.fetch(
                f"SELECT {_COLUMNS} FROM jimu_file WHERE id IN ({marks})", chunk
            )
            found.update((row["id"], _row_file(row)) for row in rows)
        return found

    async def get(self, file_id: str) -> StoredFile:
        """The stored file ``file_id`` (either id form); :class:`NotFound` when there is none."""
        canonical = parse_file_id(file_id)
        found = await self.find([canonical]) if canonical else {}
        if canonical is None or canonical not in found:
            raise NotFound(f"no file with id {file_id!r}")
        return found[canonical]

    async def open(
        self, file_id: str, *, chunk_size: int = WRITE_CHUNK
    ) -> tuple[StoredFile, AsyncIterator[bytes]]:
        """A stored file and an async iterator over its bytes."""
        stored = await self.get(file_id)
        path = self.path(stored)
        if not await asyncio.to_thread(_usable, path, stored.size):
            raise NotFound(f"the bytes of file {stored.id} are missing from the site's file store")

        async def read() -> AsyncIterator[bytes]:
            handle = await asyncio.to_thread(path.open, "rb")
            try:
                while chunk := await asyncio.to_thread(handle.read, chunk_size):
                    yield chunk
            finally:
                await asyncio.to_thread(handle.close)

        return stored, read()

    async def exists(self, file: StoredFile) -> bool:
        """Whether the bytes of ``file`` are on disk, complete."""
        return await asyncio.to_thread(_usable, self.path(file), file.size)
