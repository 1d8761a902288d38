"""Attachment and image fields: lists of files of the site's file store (JSON storage).

A client uploads each file first (``POST /api/v1/files``, see
:mod:`jimu.http.files`) and writes the ids it got back:
``{"contract": [{"id": "3f2a…"}]}``. The stored and returned value is a list
of file refs, ``{"id", "name", "size", "content_type", "url"}`` (an image's
also ``width`` and ``height``), in the order given, each file once.

What can be checked without the site is checked by :meth:`FileFieldType.validate`
(the shape, the ids, ``max_count``). Whether each file exists, and obeys
``max_size``, ``accept`` and (for ``image``) is an image, needs the file store:
:meth:`FileFieldType.resolve` checks that and replaces each ref by the store's
own facts, so a client cannot claim a size or type. The record repository
calls it inside the write's transaction (:func:`resolve_files` does it for
one record's values).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar, Required, TypedDict

import msgspec

from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import Dialect, FieldType, Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType, check_int_option
from jimu.files.sniff import EXTENSION_TYPES, IMAGE_TYPES
from jimu.files.store import FILES_URL, FileStore, StoredFile, human_size, parse_file_id
from jimu.meta import FieldDef, MetadataError, Translatable

__all__ = ["AttachmentType", "FileFieldType", "FileRef", "ImageType", "accepts", "resolve_files"]

#: The most files one field may be allowed to hold (``max_count``).
MAX_COUNT = 100
_EXTENSION = re.compile(r"^\.[a-z0-9]{1,10}$")
_MEDIA_RANGE = re.compile(r"^[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)$")
_IMAGE_EXTENSIONS = sorted(ext for ext, kind in EXTENSION_TYPES.items() if kind in IMAGE_TYPES)
_KEYS = ("name", "size", "content_type")


class FileRef(TypedDict, total=False):
    """One file of a field's value. A client needs to send only ``id``; the other keys
    are what the API returns (they may be sent back as they came, and are then
    replaced by the file store's facts)."""

    id: Required[str]
    name: str
    size: int
    content_type: str
    url: str
    width: int | None
    height: int | None


def _url(file_id: str) -> str:
    return f"{FILES_URL}/{file_id}"


def _canonical_ref(ref: Mapping[str, Any], file_id: str) -> dict[str, Any]:
    """``ref`` with the canonical id, known keys in a fixed order, and its URL."""
    canonical: dict[str, Any] = {"id": file_id}
    for key in _KEYS:
        if ref.get(key) is not None:
            canonical[key] = ref[key]
    canonical["url"] = _url(file_id)
    if ref.get("width") is not None and ref.get("height") is not None:
        canonical["width"] = ref["width"]
        canonical["height"] = ref["height"]
    return canonical


def accepts(accept: Sequence[str], file: StoredFile) -> bool:
    """Whether ``file`` matches one entry of an ``accept`` list.

    ``image/png`` matches that content type, ``image/*`` any image type,
    ``.pdf`` a file whose sniffed type is what the extension stands for (a PDF,
    whatever its name); an extension the store does not know (``.dwg``) matches
    the file name.
    """
    for entry in accept:
        wanted = entry.lower()
        if wanted.startswith("."):
            expected = EXTENSION_TYPES.get(wanted)
            if expected is not None:
                if file.content_type == expected:
                    return True
            elif file.name.lower().endswith(wanted):
                return True
        elif wanted.endswith("/*"):
            if file.content_type.startswith(wanted[:-1]):
                return True
        elif wanted == file.content_type:
            return True
    return False


class FileFieldType(CanonicalType):
    """Files of the site's file store, as a JSON list of file refs.

    Options: ``max_count`` (how many files), ``max_size`` (bytes per file),
    ``accept`` (content types, ``type/*`` or extensions like ``.pdf``).
    """

    storage: ClassVar[Storage] = "json"
    allowed_options = frozenset({"max_count", "max_size", "accept"})
    #: ``max_count`` when the field does not set it.
    default_max_count: ClassVar[int] = 10
    #: Only images (types browsers show) are accepted.
    images_only: ClassVar[bool] = False
    #: What one file is called in messages.
    noun: ClassVar[str] = "file"
    #: The kernel must call :meth:`resolve` before it stores a value.
    resolves: ClassVar[bool] = True

    # -- options -----------------------------------------------------------------------

    def max_count(self, field: FieldDef) -> int:
        """How many files the field holds at most."""
        return int(field.options.get("max_count", self.default_max_count))

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_int_option(field, path, "max_count", self.default_max_count, 1, MAX_COUNT)
        if "max_size" in field.options:
            size = field.options["max_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise MetadataError(
                    f"{path}.options.max_size",
                    "max_size must be a whole number of bytes, at least 1 (5 MB is 5242880)",
                )
        if "accept" in field.options:
            self._check_accept(field.options["accept"], f"{path}.options.accept")

    def _check_accept(self, accept: Any, path: str) -> None:
        if not isinstance(accept, list) or not accept:
            raise MetadataError(
                path, 'accept must be a list of content types or extensions: ["image/png", ".pdf"]'
            )
        for position, entry in enumerate(accept):
            where = f"{path}[{position}]"
            if not isinstance(entry, str):
                raise MetadataError(where, f"{entry!r} is not a content type or an extension")
            wanted = entry.strip().lower()
            if _EXTENSION.match(wanted):
                kind = EXTENSION_TYPES.get(wanted)
            elif _MEDIA_RANGE.match(wanted):
                kind = wanted
            else:
                raise MetadataError(
                    where,
                    f"{entry!r} is not a content type (image/png, image/*) or an extension (.pdf)",
                )
            if entry != wanted:
                raise MetadataError(where, f"write {wanted!r}: lower case, without spaces")
            if self.images_only and not (kind == "image/*" or kind in IMAGE_TYPES):
                raise MetadataError(
                    where,
                    f"{entry!r} is not an image type browsers show; an image field accepts "
                    f"image/*, {', '.join(sorted(IMAGE_TYPES))} or {', '.join(_IMAGE_EXTENSIONS)}",
                )

    # -- values ------------------------------------------------------------------------

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[list[FileRef], msgspec.Meta(max_length=1000)]

    def _plural(self, count: int) -> str:
        return self.noun if count == 1 else f"{self.noun}s"

    def validate(self, field: FieldDef, value: Any) -> str | None:
        ids = []
        for ref in value:
            file_id = parse_file_id(ref["id"])
            if file_id is None:
                return (
                    f"{ref['id']!r} is not a file id; upload the file (POST {FILES_URL}) "
                    "and send the id it answers"
                )
            ids.append(file_id)
        count = len(set(ids))
        if count == 0 and field.required:
            return f"needs at least one {self.noun}"
        limit = self.max_count(field)
        if count > limit:
            verb = "is" if limit == 1 else "are"
            return f"has {count} {self._plural(count)}; at most {limit} {verb} allowed"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        """Each file once, in the order given, as a canonical ref; no files is ``None``
        (so ``{"missing": ["field"]}`` finds it)."""
        refs: dict[str, dict[str, Any]] = {}
        for ref in value:
            file_id = parse_file_id(ref["id"])
            if file_id is not None and file_id not in refs:
                refs[file_id] = _canonical_ref(ref, file_id)
        return list(refs.values()) or None

    def to_db(self, field: FieldDef, value: Any, dialect: Dialect) -> Any:
        if value is not None:
            value = self.normalize(field, value)
        if value is None:
            return None
        # the URL is where the API serves a file today, not a fact of the file: not stored
        stored = [{key: item for key, item in ref.items() if key != "url"} for ref in value]
        return FieldType.to_db(self, field, stored, dialect)

    def reader(self, field: FieldDef, dialect: Dialect) -> Callable[[Any], Any] | None:
        decode = super().reader(field, dialect)

        def read(value: Any) -> Any:
            refs = decode(value) if decode is not None else value
            if not isinstance(refs, list):
                return refs
            return [
                _canonical_ref(ref, ref["id"]) if isinstance(ref, dict) and "id" in ref else ref
                for ref in refs
            ]

        return read

    # -- cells and filters ---------------------------------------------------------------

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        raise CellError(
            f"{self.noun}s are not imported from a spreadsheet; upload them through the API "
            f"(POST {FILES_URL}) and link them to the record by id"
        )

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if not value:
            return None
        return ", ".join(str(ref.get("name") or ref.get("id")) for ref in value)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("missing",)

    # -- the file store ------------------------------------------------------------------

    def refusal(self, field: FieldDef, file_id: Any, file: StoredFile | None) -> str | None:
        """Why the stored ``file`` (``None``: there is none with ``file_id``) may not be in
        ``field``, or ``None`` when it may."""
        if file is None:
            return f"no file with id {file_id!r}; upload it first (POST {FILES_URL})"
        name = repr(file.name)
        if self.images_only and not file.is_image:
            return (
                f"{name} is {file.content_type}, not an image (PNG, JPEG, GIF, WebP, BMP or AVIF)"
            )
        max_size = field.options.get("max_size")
        if max_size is not None and file.size > max_size:
            size, limit = human_size(file.size), human_size(max_size)
            if size == limit:  # 1 KB over 1 KB: say it in bytes
                size, limit = f"{file.size} bytes", f"{max_size} bytes"
            return f"{name} is {size}; at most {limit} is allowed"
        accept = field.options.get("accept")
        if accept and not accepts(accept, file):
            return f"{name} is {file.content_type}; this field accepts {', '.join(accept)}"
        return None

    async def resolve(
        self, field: FieldDef, items: Sequence[tuple[str, Any]], site: Any
    ) -> list[Any]:
        """Check values of ``field`` against the site's file store; return them as stored.

        ``items`` are ``(error path, value)`` pairs (``("photo", [...])``,
        ``("create[2].photo", [...])``) of validated, normalised values. Each
        file must exist and obey the field's limits; each ref is replaced by
        the store's facts (name, size, content type, image size). Raises
        :class:`ValidationFailed` naming the path of every bad value, with the
        file and the reason. Meant to run inside the write's transaction.
        """
        wanted = {
            parse_file_id(str(ref.get("id")))
            for _, value in items
            if value
            for ref in value
            if isinstance(ref, Mapping)
        }
        found = await FileStore.of(site).find(file_id for file_id in wanted if file_id)
        problems: list[FieldProblem] = []
        resolved: list[Any] = []
        for path, value in items:
            refs: dict[str, dict[str, Any]] = {}
            for ref in value or ():
                raw = ref.get("id") if isinstance(ref, Mapping) else ref
                file_id = parse_file_id(str(raw))
                if file_id is not None and file_id in refs:
                    continue
                stored = found.get(file_id) if file_id is not None else None
                reason = self.refusal(field, raw, stored)
                if reason is not None or stored is None or file_id is None:
                    problems.append(FieldProblem(path, reason or "is not a file"))
                    continue
                refs[file_id] = stored.ref()
            resolved.append(list(refs.values()) or None)
        if problems:
            raise ValidationFailed(problems)
        return resolved


class AttachmentType(FileFieldType):
    """Files of any type (``accept`` limits them), at most ``max_count`` (default 10)."""

    name = "attachment"
    widget = "attachment"
    label: ClassVar[Translatable] = {"en": "Attachment", "zh-CN": "附件"}


class ImageType(FileFieldType):
    """Images browsers show (PNG, JPEG, GIF, WebP, BMP, AVIF), with their width and
    height; one by default (``max_count``)."""

    name = "image"
    widget = "image"
    label: ClassVar[Translatable] = {"en": "Image", "zh-CN": "图片"}
    default_max_count = 1
    images_only = True
    noun = "image"


async def resolve_files(
    site: Any, entity: Any, values: dict[str, Any], *, prefix: str = ""
) -> dict[str, Any]:
    """Check and complete, in place, the file fields among one record's ``values``.

    ``entity`` is the entity's name or definition; ``prefix`` goes in front of
    field names in errors (``create[2].``). Every bad file of every field is
    reported in one :class:`ValidationFailed`. Returns ``values``.
    """
    definition = site.entity(entity) if isinstance(entity, str) else entity
    problems: list[FieldProblem] = []
    for field in definition.fields:
        if values.get(field.name) is None:
            continue
        kind = site.plugins.field_types.get(field.type)
        if not isinstance(kind, FileFieldType):
            continue
        try:
            (values[field.name],) = await kind.resolve(
                field, [(prefix + field.name, values[field.name])], site
            )
        except ValidationFailed as exc:
            problems.extend(exc.errors)
    if problems:
        raise ValidationFailed(problems)
    return values
