"""Records of runtime entities: validated writes with hooks and outbox, fast reads.

:class:`EntityRuntime` is everything needed to read and write one entity,
built once per model change: its live fields, msgspec structs for input, and
converters. :class:`RecordRepository` does the work; the HTTP layer is a thin
shell around it, and so will be imports, automations and the CLI.

Every write runs in one transaction with its ``jimu_event`` outbox rows and
the plugins' before/after hooks, so a rejected or failed write leaves nothing
behind.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime as dt
import functools
import operator
import re
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from jimu.auth.access import Access
from jimu.auth.context import current_access, current_actor
from jimu.errors import Conflict, FieldProblem, Forbidden, NotFound, ValidationFailed
from jimu.fields import (
    Dialect,
    FieldType,
    FieldTypeRegistry,
    Storage,
    VirtualColumn,
    WriteContext,
    python_type_for_storage,
    writer_for_storage,
)
from jimu.fields.builtin import DecimalType
from jimu.meta import EntityDef, FieldDef
from jimu.rules import fields_read
from jimu.store.database import Database, render
from jimu.store.related import attach_children, delete_related, write_related

if TYPE_CHECKING:
    from jimu.forms import CompiledForm
    from jimu.site import Site

__all__ = ["EntityRuntime", "ListQuery", "Page", "RecordRepository", "SortKey"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
COUNT_CAP = 10_000

_AT_PATH = re.compile(r" - at `\$(?:\[(\d+)\])?\.?([A-Za-z0-9_.\[\]]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def _problem_from_msgspec(exc: msgspec.ValidationError, prefix: str = "") -> FieldProblem:
    """Turn msgspec's message into ``{"field", "reason"}`` naming the field."""
    message = str(exc)
    if match := _UNKNOWN.search(message):
        return FieldProblem(prefix + match.group(1), "unknown field")
    if match := _MISSING.search(message):
        at = _AT_PATH.search(message)
        parent = f"{at.group(2)}." if at and at.group(2) else ""
        return FieldProblem(prefix + parent + match.group(1), "is required")
    if match := _AT_PATH.search(message):
        reason = message[: match.start()]
        path = match.group(2) or ""
        return FieldProblem(prefix + path if path else prefix.rstrip(".") or "$", reason)
    return FieldProblem(prefix.rstrip(".") or "$", message)


def invalid_input(body: bytes, exc: msgspec.ValidationError, prefix: str = "") -> Exception:
    """The error for a body that failed validation: malformed JSON wins over a type error.

    msgspec validates while it parses, so ``[1,`` against an object type reports
    the type; a client that sent broken JSON should hear that first (400).
    """
    try:
        msgspec.json.decode(body)
    except msgspec.DecodeError as syntax:
        return syntax
    return ValidationFailed(_problem_from_msgspec(exc, prefix))


def typed_default(field_type: FieldType, definition: FieldDef) -> Any:
    """A field's default as the value its input type decodes to (``"2024-01-01"`` -> date)."""
    if definition.default is None:
        return None
    return msgspec.json.decode(
        msgspec.json.encode(definition.default), type=field_type.input_type(definition)
    )


def default_problem(field_type: FieldType, definition: FieldDef) -> str | None:
    """Why a field's default would be refused as input, or ``None`` when it is fine."""
    try:
        value = typed_default(field_type, definition)
    except msgspec.ValidationError as exc:
        return f"{definition.default!r} is not a valid {definition.type} value: {exc}"
    return field_type.validate(definition, value)


def _has_nul(value: Any) -> bool:
    """Whether a value holds a NUL character anywhere (databases refuse them in text)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return False


#: A bulk write of this many rows refreshes the table's planner statistics.
ANALYZE_AFTER_ROWS = 1000

#: One outbox row: a record change and who made it (the audit log reads these).
EVENT_INSERT = (
    "INSERT INTO jimu_event (entity, record_id, kind, payload, occurred_at, actor_kind, "
    "actor_id, actor_name, token_id, ip, request_id) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})"
)


def actor_columns() -> tuple[Any, ...]:
    """The acting principal as the ``jimu_event`` actor columns."""
    actor = current_actor()
    return (actor.kind, actor.id, actor.name, actor.token_id, actor.ip, actor.request_id)


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class SortKey:
    """One key of an ordering: a field (or ``id``) and its direction."""

    field: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """``"-created_at"`` -> descending ``created_at``."""
        text = text.strip()
        return cls(text[1:], True) if text.startswith("-") else cls(text.lstrip("+"), False)


@dataclass
class ListQuery:
    """What a list or query request asks for."""

    filter: Any = None
    sort: list[SortKey] = field(default_factory=list)
    fields: list[str] | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    count: str = "capped"


class Page(msgspec.Struct, kw_only=True):
    """One page of a list: records and how to get the next page."""

    data: list[dict[str, Any]]
    page: dict[str, Any]


class EntityRuntime:
    """One entity ready for reading and writing: live fields, structs, converters."""

    def __init__(
        self,
        entity: EntityDef,
        live: set[str],
        field_types: FieldTypeRegistry,
        dialect: Dialect,
        *,
        virtual: Mapping[str, VirtualColumn] | None = None,
    ) -> None:
        self.entity = entity
        self.name = entity.name
        self.dialect = dialect
        self.fields: dict[str, FieldDef] = {f.name: f for f in entity.fields if f.name in live}
        self.types: dict[str, FieldType] = {n: field_types[f.type] for n, f in self.fields.items()}
        #: Fields computed in SQL when read (lookups, rollups), by name.
        self.virtual: dict[str, VirtualColumn] = {
            n: column for n, column in (virtual or {}).items() if n in self.fields
        }
        self.storage: dict[str, Storage] = {
            n: self.virtual[n].storage if n in self.virtual else t.storage_for(self.fields[n])
            for n, t in self.types.items()
        }
        self.pending = [f.name for f in entity.fields if f.name not in live]
        self.quoted = _quote(entity.name)
        #: Fields whose values never leave the database (passwords).
        self.secret = {n for n, t in self.types.items() if not t.readable}
        #: Fields the kernel fills in (formulas, auto-numbers): input may not set them.
        self.computed = {n for n, t in self.types.items() if not t.writable}
        #: Kernel-filled stored fields: set on insert (and, for ``refilled``, on update).
        self.filled = [n for n in self.computed if n not in self.virtual]
        #: Fields whose values the field type checks against the site on write (files).
        self.resolving = [n for n, t in self.types.items() if t.resolves]
        self.refilled = [n for n in self.filled if self.types[n].fills_on_update(self.fields[n])]
        self.all_columns = [
            "id",
            "created_at",
            "updated_at",
            *(n for n in self.fields if n not in self.secret),
        ]
        #: The columns a write returns (virtual fields are read back with a SELECT).
        self.stored_columns = [c for c in self.all_columns if c not in self.virtual]
        self.create_struct = self._struct("create", partial=False)
        self.patch_struct = self._struct("patch", partial=True)
        self.create_decoder = msgspec.json.Decoder(self.create_struct)
        self.patch_decoder = msgspec.json.Decoder(self.patch_struct)
        self._readers = self._build_readers()
        self._select_cache: dict[tuple[tuple[str, ...], str], str] = {}
        self.links = {
            n: f.options["target"] for n, f in self.fields.items() if self.storage[n] == "link"
        }
        #: Fields whose values live in other tables (multi-links, child tables): written
        #: after the record's row, see :mod:`jimu.store.related`.
        self.related = [n for n, t in self.types.items() if t.relation is not None]
        #: Child-table fields: their rows are read with one query per page.
        self.children = [n for n, t in self.types.items() if t.relation == "children"]

    def _struct(self, kind: str, *, partial: bool) -> type[msgspec.Struct]:
        spec: list[tuple[str, Any, Any] | tuple[str, Any]] = []
        required_first = []
        optional = []
        for name, definition in self.fields.items():
            if name in self.computed:
                continue
            base = self.types[name].input_type(definition)
            if partial:
                annotation = base if definition.required else base | None
                optional.append((name, annotation, msgspec.UNSET))
            elif definition.required and definition.default is None:
                required_first.append((name, base))
            else:
                default: Any = typed_default(self.types[name], definition)
                if isinstance(default, list | dict):  # never share one mutable default
                    default = msgspec.field(
                        default_factory=functools.partial(copy.deepcopy, default)
                    )
                optional.append((name, base if definition.required else base | None, default))
        spec = [*required_first, *optional]
        title = "".join(part.title() for part in self.name.split("_"))
        return msgspec.defstruct(
            f"{title}{kind.title()}",
            spec,
            kw_only=True,
            forbid_unknown_fields=True,
        )

    def _build_readers(self) -> list[tuple[str, Callable[[Any], Any]]]:
        readers: list[tuple[str, Callable[[Any], Any]]] = []
        system = _DATETIME.reader(_SYSTEM_DT, self.dialect)
        if system is not None:
            readers.extend([("created_at", system), ("updated_at", system)])
        for name, definition in self.fields.items():
            if name in self.virtual:
                read = self.virtual[name].reader
            else:
                read = self.types[name].reader(definition, self.dialect)
            if read is not None:
                readers.append((name, read))
        return readers

    def expr(self, name: str) -> str:
        """The SQL that yields column or virtual field ``name`` in WHERE and ORDER BY."""
        column = self.virtual.get(name)
        return column.sql if column is not None else _quote(name)

    def select_item(self, name: str) -> str:
        """``name`` as an item of a SELECT list."""
        column = self.virtual.get(name)
        return f"{column.sql} AS {_quote(name)}" if column is not None else _quote(name)

    def read_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """Convert a database row into the record the API returns (in place)."""
        for name, read in self._readers:
            value = row.get(name)
            if value is not None:
                row[name] = read(value)
        return row

    def select_sql(self, columns: tuple[str, ...], suffix: str) -> str:
        """``SELECT <columns> FROM <table><suffix>``, built once per shape."""
        key = (columns, suffix)
        sql = self._select_cache.get(key)
        if sql is None:
            if len(self._select_cache) > 256:
                self._select_cache.clear()
            sql = f"SELECT {', '.join(self.select_item(c) for c in columns)} FROM {self.quoted}{suffix}"
            self._select_cache[key] = sql
        return sql

    def to_db(self, name: str, value: Any) -> Any:
        """The query parameter for ``value`` of field ``name``."""
        if name in ("created_at", "updated_at"):
            return _DATETIME.to_db(_SYSTEM_DT, value, self.dialect)
        if name == "id":
            return value
        if name in self.virtual:
            return _virtual_param(self.virtual[name].storage, value, self.dialect)
        return self.types[name].to_db(self.fields[name], value, self.dialect)

    def python_type(self, name: str) -> Any:
        """The Python type of a field's (or system column's) values."""
        if name == "id":
            return int
        if name in ("created_at", "updated_at"):
            return dt.datetime
        if name in self.virtual:
            return python_type_for_storage(self.virtual[name].storage)
        return self.types[name].input_type(self.fields[name])

    def column_storage(self, name: str) -> Storage | None:
        """Storage of a field or system column; ``None`` when unknown."""
        if name == "id":
            return "integer"
        if name in ("created_at", "updated_at"):
            return "datetime"
        if name in self.secret:
            return None  # a secret cannot be filtered or sorted on: that would leak it
        return self.storage.get(name)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _virtual_param(storage: Storage, value: Any, dialect: Dialect) -> Any:
    """A parameter compared with a virtual field's SQL expression.

    An expression has no column affinity on SQLite, so a decimal bound as text
    would compare as text: bind numbers as numbers there (aggregates of NUMERIC
    columns are floating point on SQLite anyway).
    """
    if value is None:
        return None
    if dialect == "sqlite" and storage == "decimal":
        return float(value)
    return _STORAGE_TYPES[storage].to_db(_SYSTEM_DT, value, dialect)


class _DateTimeType(FieldType):
    name = "datetime"
    storage = "datetime"


_DATETIME = _DateTimeType()


def _storage_type(kind: Storage) -> FieldType:
    class _ByStorage(FieldType):
        name = f"_{kind}"
        storage = kind

    return _ByStorage()


#: A plain field type per storage kind, for converting values of virtual fields.
_STORAGE_TYPES: dict[Storage, FieldType] = {
    kind: _storage_type(kind)
    for kind in ("text", "integer", "decimal", "boolean", "date", "datetime", "json", "link")
}
_SYSTEM_DT = FieldDef(name="created_at", type="datetime")


class RecordRepository:
    """Create, read, update, delete and list records of a site's entities."""

    def __init__(self, site: Site) -> None:
        self.site = site
        #: Writes through this repository per entity: a change drops the entity's cached counts.
        self._writes: dict[str, int] = {}
        #: (entity, condition, params) -> (writes then, monotonic time, capped count)
        self._counts: dict[tuple[str, str, str], tuple[int, float, dict[str, Any]]] = {}

    @property
    def db(self) -> Database:
        """The site's database."""
        return self.site.db

    def runtime(self, entity: str) -> EntityRuntime:
        """The runtime of ``entity``; :class:`NotFound` when there is no such entity."""
        return self.site.runtime(entity)

    # -- input -----------------------------------------------------------

    def _decode(
        self, rt: EntityRuntime, body: bytes | Mapping[str, Any], *, partial: bool, prefix: str = ""
    ) -> dict[str, Any]:
        if not isinstance(body, bytes | bytearray | memoryview):
            body = msgspec.json.encode(body)
        try:
            decoded = (rt.patch_decoder if partial else rt.create_decoder).decode(body)
        except msgspec.ValidationError as exc:
            error = invalid_input(bytes(body), exc, prefix)
            if isinstance(error, ValidationFailed):
                field = error.errors[0]["field"].removeprefix(prefix)
                if field in rt.computed:
                    error = ValidationFailed(
                        FieldProblem(
                            prefix + field, "is computed by the kernel; it cannot be written"
                        )
                    )
            raise error from exc
        values = {
            name: value
            for name in rt.fields
            if name not in rt.computed and (value := getattr(decoded, name)) is not msgspec.UNSET
        }
        problems = []
        for name, value in values.items():
            if value is None:
                continue
            field_type, definition = rt.types[name], rt.fields[name]
            reason = "contains a NUL character (\\u0000)" if _has_nul(value) else None
            reason = reason or field_type.validate(definition, value)
            if reason:
                problems.append(FieldProblem(prefix + name, reason))
            else:  # the canonical form (E.164 phone, sanitised HTML) is what hooks see and is stored
                values[name] = field_type.normalize(definition, value)
        if problems:
            raise ValidationFailed(problems)
        return values

    def decode_input(
        self, rt: EntityRuntime, body: bytes | Mapping[str, Any], *, partial: bool
    ) -> dict[str, Any]:
        """Validate a record body like a create (or, ``partial``, an update) would; write nothing."""
        return self._decode(rt, body, partial=partial)

    async def _check_links(
        self, rt: EntityRuntime, rows: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        for name, target in rt.links.items():
            wanted = {row[name]: prefix for prefix, row in rows if row.get(name) is not None}
            if not wanted:
                continue
            found: set[int] = set()
            ids = list(wanted)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("{}" for _ in chunk)
                existing = await self.db.fetch(
                    f"SELECT id FROM {_quote(target)} WHERE id IN ({marks})", chunk
                )
                found.update(int(row["id"]) for row in existing)
            missing = [value for value in ids if value not in found]
            if missing:
                raise ValidationFailed(
                    FieldProblem(
                        wanted[missing[0]] + name, f"no {target} record with id {missing[0]}"
                    )
                )

    # -- writes ----------------------------------------------------------

    async def create(
        self, entity: str, body: bytes | Mapping[str, Any], *, form: str | None = None
    ) -> dict[str, Any]:
        """Validate and insert one record; return it as stored.

        ``form`` names a form of the entity whose rules apply; without it the
        entity's default form (if it has one) applies.
        """
        rt = self.runtime(entity)
        access = current_access()
        access.require(entity, "create")
        compiled = self.site.form_for(entity, form)
        if compiled is None:
            values = self._decode(rt, body, partial=False)
            _check_writes(access, rt, values, "", creating=True)
        else:  # the form sees only what was submitted, then the full create rules apply
            submitted = self._decode(rt, body, partial=True)
            _check_writes(access, rt, submitted, "", creating=True)
            values = self._form_check(rt, compiled, submitted, None, "")
        async with self.db.transaction():
            await self._check_links(rt, [("", values)])
            return access.visible(entity, await self._insert(rt, values))

    async def _insert(
        self, rt: EntityRuntime, values: dict[str, Any], prefix: str = ""
    ) -> dict[str, Any]:
        plugins = self.site.plugins
        if plugins.has_hook("jimu_before_create"):
            await plugins.call_async(
                "jimu_before_create", site=self.site, entity=rt.entity, values=values
            )
            values = self._revalidate(rt, values, prefix)
        if rt.resolving:
            await self._resolve(rt, [(prefix, values)])
        now = _now_utc()
        if rt.filled:
            await self._fill(rt, values, None, now, rt.filled)
        related = {name: values.pop(name) for name in rt.related if name in values}
        columns = ["created_at", "updated_at", *values]
        params = [rt.to_db("created_at", now), rt.to_db("updated_at", now)]
        params.extend(rt.to_db(name, value) for name, value in values.items())
        sql = (
            f"INSERT INTO {rt.quoted} ({', '.join(_quote(c) for c in columns)}) "
            f"VALUES ({', '.join('{}' for _ in columns)}) RETURNING "
            + ", ".join(_quote(c) for c in rt.stored_columns)
        )
        rows = await self._write(rt, sql, params, prefix)
        record = rt.read_row(rows[0])
        if related:  # multi-links and child rows, once the record has its id
            await write_related(self, rt, record["id"], related, prefix, None)
        if rt.virtual:  # lookups and rollups are computed by a read
            record = await self._fetch_for_update(rt, record["id"])
        await self._event(rt, record["id"], "created", record)
        if plugins.has_hook("jimu_after_create"):
            await plugins.call_async(
                "jimu_after_create", site=self.site, entity=rt.entity, record=record
            )
        return record

    async def _resolve(self, rt: EntityRuntime, rows: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Let field types check and complete values against the site (every row, every field)."""
        problems: list[FieldProblem] = []
        for name in rt.resolving:
            present = [(prefix, row) for prefix, row in rows if row.get(name) is not None]
            if not present:
                continue
            try:
                resolved = await rt.types[name].resolve(
                    rt.fields[name],
                    [(prefix + name, row[name]) for prefix, row in present],
                    self.site,
                )
            except ValidationFailed as exc:
                problems.extend(exc.errors)
                continue
            for (_, row), value in zip(present, resolved, strict=True):
                row[name] = value
        if problems:
            raise ValidationFailed(problems)

    async def _fill(
        self,
        rt: EntityRuntime,
        values: dict[str, Any],
        before: Mapping[str, Any] | None,
        now: dt.datetime,
        names: Iterable[str],
    ) -> None:
        """Set the kernel-filled fields ``names`` in ``values`` (formulas see earlier results)."""
        context = WriteContext(
            site=self.site,
            entity=rt.entity,
            record={**(before or {}), **values},
            before=before,
            now=now,
        )
        for name in names:
            value = await rt.types[name].fill(rt.fields[name], context)
            values[name] = value
            context.record[name] = value

    def _form_check(
        self,
        rt: EntityRuntime,
        form: CompiledForm,
        values: dict[str, Any],
        before: Mapping[str, Any] | None,
        prefix: str,
    ) -> dict[str, Any]:
        """Apply a form's rules to one submission; errors name the item (``create[2].phone``)."""
        try:
            checked = form.check(values, before=before, locale=self.site.config.locale)
        except ValidationFailed as exc:
            if not prefix:
                raise
            raise ValidationFailed(
                [
                    FieldProblem(prefix + problem["field"], problem["reason"])
                    for problem in exc.errors
                ]
            ) from exc
        if before is None:  # a new record: now the entity's own create rules and defaults
            return self._decode(rt, msgspec.json.encode(checked), partial=False, prefix=prefix)
        return self._revalidate(rt, checked, prefix)

    def _revalidate(self, rt: EntityRuntime, values: dict[str, Any], prefix: str) -> dict[str, Any]:
        """Re-check values a before-hook may have changed, so hooks cannot store bad data."""
        unknown = [name for name in values if name not in rt.fields]
        if unknown:
            raise ValidationFailed(
                FieldProblem(prefix + unknown[0], "unknown field (set by a plugin hook)")
            )
        payload = msgspec.json.encode(values)
        return self._decode(rt, payload, partial=True, prefix=prefix)

    async def _write(
        self, rt: EntityRuntime, sql: str, params: Sequence[Any], prefix: str
    ) -> list[dict[str, Any]]:
        try:
            return await self.db.fetch(sql, params)
        except Exception as exc:
            raise self._translate_integrity(rt, exc, prefix) from exc

    def _translate_integrity(self, rt: EntityRuntime, exc: Exception, prefix: str) -> Exception:
        message = str(exc)
        name = type(exc).__name__
        if "UNIQUE constraint failed" in message or name == "UniqueViolationError":
            constraint = getattr(exc, "constraint_name", None) or message
            for field_name in rt.fields:
                if f"{rt.name}.{field_name}" in message or (
                    isinstance(constraint, str) and constraint.endswith(f"_{field_name}")
                ):
                    return Conflict(
                        f"{prefix}{field_name}: another {rt.name} record already has this value",
                        errors=[FieldProblem(prefix + field_name, "must be unique")],
                    )
            return Conflict(f"a unique index of {rt.name} rejects this record")
        return exc

    async def _event(
        self, rt: EntityRuntime, record_id: int, kind: str, payload: Mapping[str, Any]
    ) -> None:
        self._writes[rt.name] = self._writes.get(rt.name, 0) + 1
        now = _now_utc()
        await self.db.execute(
            EVENT_INSERT,
            [
                rt.name,
                record_id,
                kind,
                msgspec.json.encode(payload).decode(),
                rt.to_db("created_at", now),
                *actor_columns(),
            ],
        )

    async def _fetch_for_update(
        self, rt: EntityRuntime, record_id: int, action: str | None = None
    ) -> dict[str, Any]:
        """The stored record ``record_id``; with ``action``, only if the actor may ``action`` it.

        A record the actor's row rules hide is a :class:`NotFound`, so the
        answer never tells whether it exists; one they may read but not
        ``action`` is :class:`Forbidden`.
        """
        where, params = ["id = {}"], [record_id]
        access = current_access()
        if action is not None and not access.unrestricted:
            rows_where, rows_params = access.row_filter(self.site, rt, action)
            where, params = [*where, *rows_where], [*params, *rows_params]
        row = await self.db.fetch_one(
            f"SELECT {', '.join(rt.select_item(c) for c in rt.all_columns)} FROM {rt.quoted} "
            f"WHERE {' AND '.join(where)}",
            params,
        )
        if row is None:
            if action is not None and action != "read" and not access.unrestricted:
                read_where, read_params = access.row_filter(self.site, rt, "read")
                if read_where and await self.db.fetch_one(
                    f"SELECT id FROM {rt.quoted} WHERE id = {{}} AND {' AND '.join(read_where)}",
                    [record_id, *read_params],
                ):
                    raise Forbidden(f"you may not {action} {rt.name} record {record_id}")
            raise NotFound(f"no {rt.name} record with id {record_id}")
        record = rt.read_row(row)
        if rt.children:
            await attach_children(self, rt, [record])
        return record

    async def update(
        self,
        entity: str,
        record_id: int,
        body: bytes | Mapping[str, Any],
        *,
        form: str | None = None,
    ) -> dict[str, Any]:
        """Change some fields of one record; return it as stored.

        ``form`` as for :meth:`create`: the form's rules apply to the change.
        """
        rt = self.runtime(entity)
        access = current_access()
        access.require(entity, "update")
        changes = self._decode(rt, body, partial=True)
        _check_writes(access, rt, changes, "")
        compiled = self.site.form_for(entity, form)
        async with self.db.transaction():
            await self._check_links(rt, [("", changes)])
            return access.visible(entity, await self._update(rt, record_id, changes, form=compiled))

    async def _update(
        self,
        rt: EntityRuntime,
        record_id: int,
        changes: dict[str, Any],
        prefix: str = "",
        *,
        form: CompiledForm | None = None,
    ) -> dict[str, Any]:
        before = await self._fetch_for_update(rt, record_id, "update")
        if form is not None:
            changes = self._form_check(rt, form, changes, before, prefix)
        plugins = self.site.plugins
        if plugins.has_hook("jimu_before_update"):
            await plugins.call_async(
                "jimu_before_update",
                site=self.site,
                entity=rt.entity,
                record=before,
                changes=changes,
            )
            changes = self._revalidate(rt, changes, prefix)
        if rt.resolving:
            await self._resolve(rt, [(prefix, changes)])
        changes = {name: value for name, value in changes.items() if before.get(name) != value}
        related = {name: changes.pop(name) for name in rt.related if name in changes}
        touched = await write_related(self, rt, record_id, related, prefix, before)
        if not changes and not touched:
            return before  # nothing would change: no write, no event, no after-hook
        now = _now_utc()
        if rt.refilled:
            filled = dict(changes)
            await self._fill(rt, filled, before, now, rt.refilled)
            changes.update({n: filled[n] for n in rt.refilled if filled[n] != before.get(n)})
        assignments = ["updated_at", *changes]
        params = [rt.to_db("updated_at", now), *(rt.to_db(n, v) for n, v in changes.items())]
        params.append(record_id)
        sql = (
            f"UPDATE {rt.quoted} SET {', '.join(f'{_quote(c)} = {{}}' for c in assignments)} "
            f"WHERE id = {{}} RETURNING {', '.join(_quote(c) for c in rt.stored_columns)}"
        )
        rows = await self._write(rt, sql, params, prefix)
        record = rt.read_row(rows[0])
        if rt.virtual:  # lookups and rollups are computed by a read
            record = await self._fetch_for_update(rt, record["id"])
        changed = {
            name: record[name]
            for name in [*changes, *touched]
            if before.get(name) != record.get(name)
        }
        await self._event(
            rt,
            record_id,
            "updated",
            {"before": {name: before.get(name) for name in changed}, "after": changed},
        )
        if plugins.has_hook("jimu_after_update"):
            await plugins.call_async(
                "jimu_after_update", site=self.site, entity=rt.entity, before=before, record=record
            )
        return record

    async def delete(self, entity: str, record_id: int) -> dict[str, Any]:
        """Delete one record; return what was deleted."""
        rt = self.runtime(entity)
        access = current_access()
        access.require(entity, "delete")
        async with self.db.transaction():
            return access.visible(entity, await self._delete(rt, record_id))

    async def _delete(self, rt: EntityRuntime, record_id: int) -> dict[str, Any]:
        record = await self._fetch_for_update(rt, record_id, "delete")
        plugins = self.site.plugins
        if plugins.has_hook("jimu_before_delete"):
            await plugins.call_async(
                "jimu_before_delete", site=self.site, entity=rt.entity, record=record
            )
        await delete_related(self, rt, record_id)  # children (with their events), junction rows
        await self.db.execute(f"DELETE FROM {rt.quoted} WHERE id = {{}}", [record_id])
        await self._event(rt, record_id, "deleted", record)
        if plugins.has_hook("jimu_after_delete"):
            await plugins.call_async(
                "jimu_after_delete", site=self.site, entity=rt.entity, record=record
            )
        return record

    async def bulk(self, entity: str, body: bytes | Mapping[str, Any]) -> dict[str, Any]:
        """Create, update and delete many records in one all-or-nothing transaction.

        ``body`` is ``{"create": [records], "update": [{"id": .., fields}], "delete": [ids]}``;
        an error names the item (``create[3].email``) and nothing is written.
        """
        rt = self.runtime(entity)
        if not isinstance(body, bytes | bytearray | memoryview):
            body = msgspec.json.encode(body)
        try:
            request = msgspec.json.decode(body, type=_BulkRequest)
        except msgspec.ValidationError as exc:
            raise invalid_input(bytes(body), exc) from exc
        total = len(request.create) + len(request.update) + len(request.delete)
        if total == 0:
            raise ValidationFailed(
                FieldProblem("$", "nothing to do: give create, update or delete")
            )
        if total > self.site.config.bulk_limit:
            raise ValidationFailed(
                FieldProblem(
                    "$", f"{total} items; at most {self.site.config.bulk_limit} per bulk request"
                )
            )
        access = current_access()
        for action, items in (
            ("create", request.create),
            ("update", request.update),
            ("delete", request.delete),
        ):
            if items:
                access.require(entity, action)
        form = self.site.form_for(entity, None)
        creates = []
        for index, raw in enumerate(request.create):
            prefix = f"create[{index}]."
            if form is None:
                values = self._decode(rt, _raw_bytes(raw), partial=False, prefix=prefix)
                _check_writes(access, rt, values, prefix, creating=True)
            else:
                submitted = self._decode(rt, _raw_bytes(raw), partial=True, prefix=prefix)
                _check_writes(access, rt, submitted, prefix, creating=True)
                values = self._form_check(rt, form, submitted, None, prefix)
            creates.append(values)
        updates = []
        for index, raw in enumerate(request.update):
            prefix = f"update[{index}]."
            item = msgspec.json.decode(_raw_bytes(raw))
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("id"), int)
                or isinstance(item.get("id"), bool)
            ):
                raise ValidationFailed(
                    FieldProblem(prefix + "id", "each update needs the integer id of its record")
                )
            record_id = item.pop("id")
            changes = self._decode(rt, msgspec.json.encode(item), partial=True, prefix=prefix)
            _check_writes(access, rt, changes, prefix)
            updates.append((record_id, changes))
        async with self.db.transaction():
            await self._check_links(
                rt,
                [(f"create[{i}].", v) for i, v in enumerate(creates)]
                + [(f"update[{i}].", v) for i, (_, v) in enumerate(updates)],
            )
            created = [
                await self._insert(rt, values, f"create[{i}].") for i, values in enumerate(creates)
            ]
            updated = [
                await self._update(rt, record_id, values, f"update[{i}].", form=form)
                for i, (record_id, values) in enumerate(updates)
            ]
            deleted = [(await self._delete(rt, record_id))["id"] for record_id in request.delete]
        return {
            "created": [record["id"] for record in created],
            "updated": [record["id"] for record in updated],
            "deleted": deleted,
        }

    async def create_many(
        self,
        entity: str,
        rows: Sequence[bytes | Mapping[str, Any]],
        *,
        prefixes: Sequence[str] | None = None,
        refresh_statistics: bool = True,
    ) -> list[int]:
        """Validate and insert many records in one all-or-nothing transaction; return their ids.

        ``refresh_statistics=False`` leaves the planner statistics to the
        caller: an import writes a chunk at a time and refreshes them once, at
        its end (:meth:`refresh_statistics`), not after every chunk.

        The fast path of imports: every row is validated like :meth:`create`
        input before anything is written, and a :class:`ValidationFailed`
        lists the problems of *every* bad row, each field prefixed with the
        row's prefix (``prefixes[i]``, ``create[i].`` by default). Then, in one
        transaction (a savepoint inside the caller's), links are checked, the
        ``jimu_before_create`` hooks run per record, the rows are written (a
        multi-row ``INSERT`` on SQLite, a binary ``COPY`` on PostgreSQL) and
        then their ``created`` outbox events (likewise: a ``VALUES`` row of id
        and payload each on SQLite, a ``COPY`` on PostgreSQL), and the
        ``jimu_after_create`` hooks run per
        record, in row order. Ids follow the order of ``rows``. Rows may hold
        JSON values or the Python values they decode into (a ``Decimal``, a
        ``date``): both are checked alike.

        An entity with a default form, kernel-filled fields (auto-numbers,
        created by, ...) or lookups and rollups is written a record at a time
        through the same path as :meth:`create`, so every rule applies.

        This is :meth:`prepare_creates` followed by :meth:`create_prepared`; a
        caller with other work to do between the two (an import parsing its
        next chunk) calls them itself.
        """
        prepared = self.prepare_creates(entity, rows, prefixes=prefixes)
        if prepared is None:
            rt = self.runtime(entity)
            labels = _labels(rows, prefixes)
            created = await self._create_each(rt, self.site.form_for(entity, None), rows, labels)
            if refresh_statistics:
                await self._refresh_statistics(rt, len(created))
            return created
        return await self.create_prepared(prepared, refresh_statistics=refresh_statistics)

    def prepare_creates(
        self,
        entity: str,
        rows: Sequence[bytes | Mapping[str, Any]],
        *,
        prefixes: Sequence[str] | None = None,
    ) -> PreparedCreates | None:
        """The half of :meth:`create_many` that needs no database: check and convert the rows.

        Checks the actor's permissions, decodes and validates every row
        (raising one :class:`ValidationFailed` for all bad rows, as
        :meth:`create_many` does) and, unless ``jimu_before_create`` hooks may
        still change the values, turns them into the parameters and records
        the write needs. Nothing is read or written. ``None``: the entity's
        records are written a record at a time (see :meth:`create_many`),
        which has nothing to prepare.

        Pass the result to :meth:`create_prepared` once.
        """
        rt = self.runtime(entity)
        if prefixes is not None and len(prefixes) != len(rows):
            raise ValueError("create_many: give one prefix per row")
        if not rows:
            return PreparedCreates(rt, _bulk_plan(rt), [], [])
        labels = _labels(rows, prefixes)
        access = current_access()
        access.require(entity, "create")
        if not access.unrestricted:
            for label, row in zip(labels, rows, strict=True):
                submitted = row if isinstance(row, Mapping) else msgspec.json.decode(row)
                if isinstance(submitted, Mapping):
                    _check_writes(access, rt, submitted, label)
        plan = self._batch_plan(rt)
        if plan is None:
            return None
        return self._prepared(rt, plan, labels, self._decode_many(rt, plan, rows, labels))

    def prepare_creates_from_columns(
        self,
        entity: str,
        columns: Mapping[str, Sequence[Any]],
        *,
        count: int,
        prefixes: Sequence[str] | None = None,
    ) -> PreparedCreates | None:
        """:meth:`prepare_creates` for ``count`` rows given as a list of values per field.

        For a caller that holds its rows a field at a time (an import parses
        a column at a time): no dict per row is built, and each field's
        values are checked against its input type in one call. ``None`` in a
        column means no value, as a key left out of a row does: the field's
        default, and a problem for a required field. A field without a
        column is left out of every row.

        The result is the same :class:`PreparedCreates` that
        :meth:`prepare_creates` gives for the same rows. ``None`` when this
        path does not apply: an entity written a record at a time, an actor
        with limits on the fields it may write, a column that is not one of
        the entity's fields, or a value its input type refuses. Give the
        rows to :meth:`prepare_creates` then, which names every problem.
        Values the types' own checks refuse raise :class:`ValidationFailed`,
        as there.
        """
        rt = self.runtime(entity)
        if prefixes is not None and len(prefixes) != count:
            raise ValueError("prepare_creates_from_columns: give one prefix per row")
        if any(len(values) != count for values in columns.values()):
            raise ValueError(f"prepare_creates_from_columns: every column needs {count} values")
        access = current_access()
        access.require(entity, "create")
        plan = self._batch_plan(rt)
        if (
            plan is None
            or not access.unrestricted
            or not plan.convertible
            or not columns.keys() <= set(plan.fields)
        ):
            return None
        converted = plan.convert_columns(columns, count)
        if converted is None:
            return None
        labels = list(prefixes) if prefixes is not None else _labels(range(count), None)
        return self._prepared(rt, plan, labels, _check_columns(plan, converted, labels))

    def _batch_plan(self, rt: EntityRuntime) -> _BulkPlan | None:
        """The plan of ``rt``'s bulk writes; ``None``: its records are written a record at a
        time (a default form, kernel-filled fields, lookups and rollups)."""
        plan = _bulk_plan(rt)
        if self.site.form_for(rt.name, None) is not None or not plan.fast:
            return None
        return plan

    def _prepared(
        self, rt: EntityRuntime, plan: _BulkPlan, labels: list[str], columns: list[list[Any]]
    ) -> PreparedCreates:
        """Checked values as a :class:`PreparedCreates`, converted unless hooks may change them."""
        prepared = PreparedCreates(rt, plan, labels, columns)
        if not self.site.plugins.has_hook("jimu_before_create"):
            prepared.convert()
        return prepared

    async def create_prepared(
        self, prepared: PreparedCreates, *, refresh_statistics: bool = True
    ) -> list[int]:
        """Write rows :meth:`prepare_creates` checked: the half of :meth:`create_many` that
        talks to the database (links, hooks, ids, the rows and their outbox events)."""
        if prepared.written:
            raise RuntimeError("create_prepared: these rows were written already")
        prepared.written = True
        rt, plan, labels = prepared.rt, prepared.plan, prepared.labels
        if not prepared.rows:
            return []
        columns = plan.fields
        plugins = self.site.plugins
        # On SQLite inside a transaction with nothing to await but the write, the
        # savepoint run_in_sqlite_thread gives the write keeps it whole: no trips to
        # open and release one here
        one_trip = (
            self.db.dialect == "sqlite"
            and self.db.in_transaction
            and not rt.links
            and prepared.reads is not None
            and not plugins.has_hook("jimu_after_create")
        )
        async with contextlib.nullcontext() if one_trip else self.db.transaction():
            if rt.links:
                await self._check_links(rt, prepared.links())
            if prepared.reads is None:
                if plugins.has_hook("jimu_before_create"):
                    batch = prepared.value_rows()
                    for index, values in enumerate(batch):
                        given = dict(zip(columns, values, strict=True))
                        ordered = {name: given[name] for name in rt.fields if name in given}
                        try:
                            await plugins.call_async(
                                "jimu_before_create",
                                site=self.site,
                                entity=rt.entity,
                                values=ordered,
                            )
                        except ValidationFailed as exc:
                            raise _prefixed(exc, labels[index]) from exc
                        checked = self._revalidate(rt, ordered, labels[index])
                        # a column the hook left out is NULL, exactly as in an insert without it
                        batch[index] = [checked.get(name) for name in columns]
                    prepared.columns = [list(column) for column in zip(*batch, strict=True)]
                prepared.convert()
            reads, batch = prepared.reads, prepared.batch
            assert reads is not None
            prepared.reads = None
            stamp = rt.to_db("created_at", _now_utc())
            shared = (rt.name, "created", rt.to_db("created_at", _now_utc()), *actor_columns())
            if self.db.dialect == "postgres":
                ids = await _allocate_ids(self.db, rt, len(batch))
                events = _stamp_records(plan, reads, ids, stamp)
                # the records in one binary COPY, which costs the server a fraction of
                # an INSERT per row
                for record_id, values in zip(ids, batch, strict=True):
                    values += (stamp, stamp, record_id)
                try:
                    await self.db.copy_rows(
                        rt.name, (*columns, "created_at", "updated_at", "id"), batch
                    )
                except Exception as exc:
                    raise self._translate_integrity(rt, exc, "") from exc
                await _insert_events(self.db, shared, events)
            else:
                try:
                    ids = await self.db.run_in_sqlite_thread(
                        functools.partial(_write_sqlite, rt, plan, batch, reads, stamp, shared)
                    )
                except Exception as exc:
                    raise self._translate_integrity(rt, exc, "") from exc
            records = (
                [dict(zip(rt.all_columns, read, strict=True)) for read in reads]
                if plugins.has_hook("jimu_after_create")
                else []
            )
            del reads
            self._writes[rt.name] = self._writes.get(rt.name, 0) + 1
            for index, record in enumerate(records):  # empty without after-create hooks
                try:
                    await plugins.call_async(
                        "jimu_after_create", site=self.site, entity=rt.entity, record=record
                    )
                except ValidationFailed as exc:
                    raise _prefixed(exc, labels[index]) from exc
        if refresh_statistics:
            await self._refresh_statistics(rt, len(ids))
        return ids

    async def refresh_statistics(self, entity: str, written: int) -> None:
        """What :meth:`create_many` does after a bulk write, for a caller that wrote
        ``written`` records of ``entity`` in several (an import, once at its end)."""
        await self._refresh_statistics(self.runtime(entity), written)

    async def _refresh_statistics(self, rt: EntityRuntime, written: int) -> None:
        """After a bulk write of many rows, refresh the table's planner statistics.

        Stale statistics make both databases misjudge how many rows a
        condition matches (PostgreSQL then counts a third of a table through
        bitmaps instead of stopping a scan early; SQLite sorts every match).
        """
        if written >= ANALYZE_AFTER_ROWS:
            await self.db.analyze(rt.name)

    async def _create_each(
        self,
        rt: EntityRuntime,
        form: CompiledForm | None,
        rows: Sequence[bytes | Mapping[str, Any]],
        labels: Sequence[str],
    ) -> list[int]:
        """:meth:`create_many` a record at a time, as :meth:`bulk` creates (all problems first)."""
        batch: list[dict[str, Any]] = []
        problems: list[FieldProblem] = []
        for body, prefix in zip(rows, labels, strict=True):
            try:
                if form is None:
                    batch.append(self._decode(rt, body, partial=False, prefix=prefix))
                else:
                    submitted = self._decode(rt, body, partial=True, prefix=prefix)
                    batch.append(self._form_check(rt, form, submitted, None, prefix))
            except ValidationFailed as exc:
                problems.extend(exc.errors)
        if problems:
            raise ValidationFailed(problems)
        ids = []
        async with self.db.transaction():
            await self._check_links(rt, list(zip(labels, batch, strict=True)))
            for prefix, values in zip(labels, batch, strict=True):
                try:
                    record = await self._insert(rt, values, prefix)
                except ValidationFailed as exc:
                    if all(problem["field"].startswith(prefix) for problem in exc.errors):
                        raise
                    raise _prefixed(exc, prefix) from exc  # a hook's refusal names no row
                ids.append(int(record["id"]))
        return ids

    def _decode_many(
        self,
        rt: EntityRuntime,
        plan: _BulkPlan,
        rows: Sequence[bytes | Mapping[str, Any]],
        labels: Sequence[str],
    ) -> list[list[Any]]:
        """Every row validated as :meth:`_decode` does: a list of values per field of
        ``plan.fields``.

        All problems of all rows are raised together.

        The rows are decoded in one call; only when that fails is each row
        decoded on its own (with :meth:`_decode`), to name every bad one.
        """
        problems: list[FieldProblem] = []
        decoded: list[Any] | None = None
        if plan.convertible and all(type(row) is dict for row in rows):
            # Python values (an import's rows, with dates and decimals as such): checked
            # against the input struct as they are, which gives what decoding their JSON
            # gives, without the JSON; when that fails, the JSON way below decides
            # (and names the problems), so input means what it means as JSON
            with contextlib.suppress(msgspec.ValidationError):
                decoded = msgspec.convert(rows, plan.list_type)
        if decoded is None:
            parts = [
                bytes(row) if isinstance(row, bytes | bytearray | memoryview) else None
                for row in rows
            ]
            if any(part is None for part in parts):
                body = msgspec.json.encode(
                    [
                        msgspec.Raw(part) if part is not None else row
                        for part, row in zip(parts, rows, strict=True)
                    ]
                )
            else:
                body = b"[" + b",".join(part for part in parts if part is not None) + b"]"
            try:
                decoded = plan.decoder.decode(body)
            except (msgspec.ValidationError, msgspec.DecodeError):
                for row, prefix in zip(rows, labels, strict=True):
                    try:
                        self._decode(rt, row, partial=False, prefix=prefix)
                    except ValidationFailed as exc:
                        problems.extend(exc.errors)
                if problems:
                    raise ValidationFailed(problems) from None
                raise  # the rows pass one by one but not together: a bug worth seeing
        astuple = msgspec.structs.astuple
        columns = [list(column) for column in zip(*map(astuple, decoded), strict=True)]
        del decoded
        return _check_columns(plan, columns or [[] for _ in plan.fields], labels)

    # -- reads -----------------------------------------------------------

    def _columns(
        self, rt: EntityRuntime, fields: list[str] | None, access: Access | None = None
    ) -> list[str]:
        readable = access.readable_fields(rt.name) if access is not None else None
        if fields is None:
            if readable is None:
                return rt.all_columns
            return [name for name in rt.all_columns if name in readable]
        unknown = [name for name in fields if name not in rt.all_columns]
        if unknown:
            raise ValidationFailed(
                FieldProblem("fields", f"unknown field {unknown[0]!r} of {rt.name}")
            )
        if readable is not None and access is not None:
            access.check_readable(rt.name, fields, "fields")
        return ["id", *[name for name in dict.fromkeys(fields) if name != "id"]]

    async def get(
        self, entity: str, record_id: int, fields: list[str] | None = None
    ) -> dict[str, Any]:
        """One record by id; :class:`NotFound` when there is none (or the actor may not see it)."""
        rt = self.runtime(entity)
        access = current_access()
        access.require(entity, "read")
        columns = self._columns(rt, fields, access)
        if access.unrestricted:
            rows = await self.db.fetch(
                rt.select_sql(tuple(columns), " WHERE id = {}"), (record_id,)
            )
        else:
            where, params = access.row_filter(self.site, rt, "read")
            suffix = " WHERE " + " AND ".join([f'{rt.quoted}."id" = {{}}', *where])
            rows = await self.db.fetch(rt.select_sql(tuple(columns), suffix), (record_id, *params))
        row = rows[0] if rows else None
        if row is None:
            raise NotFound(f"no {rt.name} record with id {record_id}")
        record = rt.read_row(row)
        if rt.children:
            await attach_children(self, rt, [record])
        return record

    async def query(self, entity: str, query: ListQuery) -> Page:
        """One page of records matching ``query``, in a stable order."""
        rt = self.runtime(entity)
        if not 1 <= query.limit <= MAX_LIMIT:
            raise ValidationFailed(FieldProblem("limit", f"must be from 1 to {MAX_LIMIT}"))
        if query.count not in {"capped", "exact", "none"}:
            raise ValidationFailed(FieldProblem("count", "must be capped, exact or none"))
        access = current_access()
        access.require(entity, "read")
        columns = self._columns(rt, query.fields, access)
        sort = self._sort_keys(rt, query.sort)
        where, params = self.site.compile_filter(rt, query.filter)
        rows_where: list[str] = []
        if not access.unrestricted:
            access.check_readable(entity, [key.field for key in sort], "sort")
            if query.filter is not None:
                read = fields_read(query.filter, self.site.rules)
                if not read.complete:
                    raise Forbidden(
                        "filter: a filter that reads fields through computed paths cannot be "
                        "checked against your field permissions; name the fields"
                    )
                access.check_readable(entity, sorted(read), "filter")
            rows_where, rows_params = access.row_filter(self.site, rt, "read")
            where, params = [*where, *rows_where], [*params, *rows_params]
        base_where = list(where)
        base_params = list(params)
        if rows_where and self.db.dialect == "sqlite":
            # SQLite would answer "region in my regions or owner = me" for a page of 50
            # by collecting every matching row through both indexes and sorting them all
            # (cost grows with the table); as an expression (unary +) the row rule filters
            # a walk of the sort order's index instead. The count keeps the index plan.
            guarded = [f"+({clause})" for clause in rows_where]
            where = [*where[: len(where) - len(rows_where)], *guarded]
        typed = self._decode_cursor(rt, sort, query.cursor) if query.cursor else None
        select_columns = tuple(dict.fromkeys([*columns, *(key.field for key in sort)]))
        if len(sort) == 2 and not sort[1].descending:  # one key and the id tie-break
            rows = await self._single_key_rows(
                rt, sort[0], select_columns, where, params, typed, query.limit + 1
            )
        else:
            if typed is not None:
                clause, cursor_params = self._after_cursor(rt, sort, typed)
                where = [*where, clause]
                params = [*params, *cursor_params]
            order = ", ".join(
                f"{rt.expr(key.field)} {'DESC' if key.descending else 'ASC'}"
                + (" NULLS LAST" if key.field != "id" else "")
                for key in sort
            )
            suffix = (
                f" WHERE {' AND '.join(where)}" if where else ""
            ) + f" ORDER BY {order} LIMIT {query.limit + 1}"
            rows = await self.db.fetch(rt.select_sql(select_columns, suffix), params)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        next_cursor = None
        if more and rows:
            next_cursor = self._make_cursor(rt, sort, rows[-1])
        extra = [c for c in select_columns if c not in columns]
        data = []
        for row in rows:
            for name in extra:
                row.pop(name, None)
            data.append(rt.read_row(row))
        if rt.children:  # child rows: one query per child table for the whole page
            await attach_children(self, rt, data)
        page: dict[str, Any] = {"limit": query.limit, "next_cursor": next_cursor}
        if query.count != "none":
            page.update(
                await self._count(rt, base_where, base_params, exact=query.count == "exact")
            )
        return Page(data=data, page=page)

    async def _single_key_rows(
        self,
        rt: EntityRuntime,
        key: SortKey,
        columns: tuple[str, ...],
        where: list[str],
        params: list[Any],
        cursor: list[Any] | None,
        wanted: int,
    ) -> list[dict[str, Any]]:
        """Rows ordered by one key (NULLs last) then id, read so an index on the key serves.

        A single ``ORDER BY key NULLS LAST`` with an OR-ed cursor condition makes
        databases scan from the start; instead the non-NULL range is read with a
        plain range condition, and the NULL tail only when the page reaches it.
        """
        column = rt.expr(key.field)
        rows: list[dict[str, Any]] = []
        in_null_tail = cursor is not None and cursor[0] is None
        if not in_null_tail:
            conditions = [*where, f"{column} IS NOT NULL"]
            values = list(params)
            if cursor is not None:
                op = "<" if key.descending else ">"
                bound = rt.to_db(key.field, cursor[0])
                conditions.append(f"{column} {op}= {{}}")
                conditions.append(f"({column} {op} {{}} OR id > {{}})")
                values.extend([bound, bound, cursor[1]])
            suffix = (
                f" WHERE {' AND '.join(conditions)}"
                f" ORDER BY {column} {'DESC' if key.descending else 'ASC'}, id ASC LIMIT {wanted}"
            )
            rows = await self.db.fetch(rt.select_sql(columns, suffix), values)
        if len(rows) < wanted:
            conditions = [*where, f"{column} IS NULL"]
            values = list(params)
            if in_null_tail:
                assert cursor is not None
                conditions.append("id > {}")
                values.append(cursor[1])
            suffix = f" WHERE {' AND '.join(conditions)} ORDER BY id ASC LIMIT {wanted - len(rows)}"
            rows.extend(await self.db.fetch(rt.select_sql(columns, suffix), values))
        return rows

    def _sort_keys(self, rt: EntityRuntime, keys: list[SortKey]) -> list[SortKey]:
        result = []
        for key in keys:
            if rt.column_storage(key.field) is None:
                raise ValidationFailed(
                    FieldProblem("sort", f"unknown field {key.field!r} of {rt.name}")
                )
            if rt.column_storage(key.field) == "json":
                raise ValidationFailed(
                    FieldProblem("sort", f"cannot sort by JSON field {key.field!r}")
                )
            if key.field == "id":
                result.append(key)
                break
            result.append(key)
        if not result or result[-1].field != "id":
            result.append(SortKey("id", False))
        return result

    def _make_cursor(self, rt: EntityRuntime, sort: list[SortKey], row: Mapping[str, Any]) -> str:
        values = []
        for key in sort:
            value = row.get(key.field)
            if key.field in ("created_at", "updated_at") or rt.column_storage(key.field) in {
                "datetime",
                "date",
                "decimal",
                "boolean",
            }:
                definition = rt.fields.get(key.field)
                if key.field in ("created_at", "updated_at"):
                    value = _DATETIME.from_db(_SYSTEM_DT, value, rt.dialect)
                elif definition is not None:
                    value = rt.types[key.field].from_db(definition, value, rt.dialect)
            values.append(value)
        payload = msgspec.json.encode([[k.field, k.descending] for k in sort] + [values])
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    def _decode_cursor(self, rt: EntityRuntime, sort: list[SortKey], cursor: str) -> list[Any]:
        """The sort-key values a cursor holds, typed; 422 when it is not this list's cursor."""
        try:
            payload = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            decoded = msgspec.json.decode(payload)
            *keys, values = decoded
            if [[k.field, k.descending] for k in sort] != keys or len(values) != len(sort):
                raise ValueError("the cursor belongs to another sort order")
            typed = [
                None
                if value is None
                else msgspec.convert(value, rt.python_type(key.field), strict=False)
                for key, value in zip(sort, values, strict=True)
            ]
        except (ValueError, TypeError, binascii.Error, msgspec.MsgspecError) as exc:
            raise ValidationFailed(
                FieldProblem(
                    "cursor", "is not a cursor of this list (reuse next_cursor with the same sort)"
                )
            ) from exc
        return typed

    def _after_cursor(
        self, rt: EntityRuntime, sort: list[SortKey], typed: list[Any]
    ) -> tuple[str, list[Any]]:
        """A condition selecting the rows after the cursor's values (any number of keys)."""
        clauses = []
        params: list[Any] = []
        for position, key in enumerate(sort):
            value = typed[position]
            if value is None:
                continue  # nothing sorts after NULL by this key; a later key decides
            parts = []
            clause_params = []
            for earlier, earlier_value in zip(sort[:position], typed[:position], strict=True):
                if earlier_value is None:
                    parts.append(f"{rt.expr(earlier.field)} IS NULL")
                else:
                    parts.append(f"{rt.expr(earlier.field)} = {{}}")
                    clause_params.append(rt.to_db(earlier.field, earlier_value))
            op = "<" if key.descending else ">"
            if key.field == "id":
                parts.append(f"{rt.expr(key.field)} {op} {{}}")
            else:
                parts.append(f"({rt.expr(key.field)} {op} {{}} OR {rt.expr(key.field)} IS NULL)")
            clause_params.append(rt.to_db(key.field, value))
            clauses.append("(" + " AND ".join(parts) + ")")
            params.extend(clause_params)
        return ("(" + " OR ".join(clauses) + ")" if clauses else "1 = 0"), params

    async def _count(
        self, rt: EntityRuntime, where: list[str], params: list[Any], *, exact: bool
    ) -> dict[str, Any]:
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        if exact:
            row = await self.db.fetch_one(
                f"SELECT COUNT(*) AS n FROM {rt.quoted}{condition}", params
            )
            return {"total": int(row["n"]) if row else 0, "total_exact": True}
        # A list screen asks for the same capped total with every page and every
        # refresh; it is reused for ``[api] count_reuse_seconds`` unless this process
        # wrote to the entity since (another process's writes show within that time).
        key = (rt.name, condition, repr(params))
        writes = self._writes.get(rt.name, 0)
        now = time.monotonic()
        cached = self._counts.get(key)
        reuse = self.site.config.count_reuse_seconds
        if cached is not None and cached[0] == writes and now - cached[1] < reuse:
            return dict(cached[2])
        row = await self.db.fetch_one(
            f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM {rt.quoted}{condition} LIMIT {COUNT_CAP + 1}) AS capped",
            params,
        )
        total = int(row["n"]) if row else 0
        counted = {"total": min(total, COUNT_CAP), "total_exact": total <= COUNT_CAP}
        if reuse > 0 and not self.db.in_transaction:  # an uncommitted count may roll back
            if len(self._counts) >= 1000:
                self._counts.clear()
            self._counts[key] = (writes, now, counted)
        return dict(counted)


@dataclass(frozen=True, slots=True)
class _Missing:
    """What a field of an input struct gets when a row leaves it out."""

    #: no default: leaving the field out is a problem
    required: bool = False
    #: the default
    default: Any = None
    #: gives the default instead, a fresh one each time (a mutable default)
    factory: Callable[[], Any] | None = None

    def fill(self, count: int) -> list[Any]:
        """The values of ``count`` rows that all leave the field out."""
        if self.factory is not None:
            return [self.factory() for _ in range(count)]
        return [self.default] * count

    def replace(self, values: list[Any]) -> list[Any]:
        """``values`` with each ``None`` (a value left out) replaced by the default."""
        if self.factory is None and self.default is None:
            return values
        factory = self.factory or (lambda: self.default)
        return [factory() if value is None else value for value in values]


def _column_type(info: msgspec.structs.FieldInfo) -> tuple[Any, _Missing]:
    """The list type a column of field ``info`` converts to, and what a missing value is.

    A required field, and one whose default is null, take their own type (a
    required field's refuses null); a field with another default takes the
    type or null, the null then replaced by the default.
    """
    if info.required:
        return list[info.type], _Missing(required=True)  # type: ignore[name-defined]
    if info.default_factory is not msgspec.NODEFAULT:
        return (
            list[info.type | None],  # type: ignore[name-defined]
            _Missing(factory=info.default_factory),
        )
    if info.default is None:
        return list[info.type], _Missing()  # type: ignore[name-defined]
    return list[info.type | None], _Missing(default=info.default)  # type: ignore[name-defined]


def _check_columns(
    plan: _BulkPlan, columns: list[list[Any]], labels: Sequence[str]
) -> list[list[Any]]:
    """Run the fields' own checks and normalisations over ``columns`` (a list per field).

    A field at a time over every row: one short loop per checked field. All
    problems of all rows are raised together, row by row as :meth:`_decode`
    names them.
    """
    found: list[tuple[int, int, FieldProblem]] = []  # (row, check, problem)
    for check, (position, name, validate, normalize) in enumerate(plan.checks):
        column = columns[position]
        if validate is not None:
            reasons = validate(column)
            if reasons is not None:
                for index, reason in enumerate(reasons):
                    if reason:
                        found.append((index, check, FieldProblem(labels[index] + name, reason)))
                        column[index] = None  # not normalised below
        if normalize is not None:  # the canonical form, as _decode keeps it
            columns[position] = [
                normalize(value) if value is not None else None for value in column
            ]
    if found:
        found.sort(key=lambda item: item[:2])
        raise ValidationFailed([problem for _, _, problem in found])
    return columns


class _BulkPlan:
    """What :meth:`RecordRepository.create_many` needs of one runtime, built once.

    Checks and conversions that are no-ops for a type (the base class's
    ``validate`` and ``normalize``; ``to_db`` of text and whole numbers) are
    left out, and the base class's conversions are called directly.
    """

    def __init__(self, rt: EntityRuntime) -> None:
        #: the fields in the order of the input struct (and of the insert's columns)
        self.fields: tuple[str, ...] = rt.create_struct.__struct_fields__
        self.decoder = msgspec.json.Decoder(list[rt.create_struct])  # type: ignore[name-defined]
        #: what :func:`msgspec.convert` checks rows of Python values against
        self.list_type: Any = list[rt.create_struct]  # type: ignore[name-defined]
        #: whether converting Python values gives exactly what decoding their JSON gives
        #: (not for floats, whose NaN JSON writes as null, nor for free-form JSON)
        self.convertible = _converts_like_json(msgspec.inspect.type_info(rt.create_struct))
        #: per field of ``fields``: what ``convert_columns`` checks its values against,
        #: and what a missing value (``None``) becomes
        self.column_types: list[tuple[Any, _Missing]] = [
            _column_type(info) for info in msgspec.structs.fields(rt.create_struct)
        ]
        #: whether the batch path applies (else: a record at a time, see create_many)
        self.fast = (
            not rt.computed
            and not rt.resolving
            and not rt.related
            and set(self.fields) == set(rt.fields)
        )
        #: (position, name, validate_column, normalize) of the fields whose type checks
        #: or rewrites values (``None``: the base class's, which does nothing)
        self.checks: list[
            tuple[
                int,
                str,
                Callable[[Sequence[Any]], list[str | None] | None] | None,
                Callable[[Any], Any] | None,
            ]
        ] = []
        for position, name in enumerate(self.fields):
            field_type, definition = rt.types[name], rt.fields[name]
            kind = type(field_type)
            validate = (
                functools.partial(field_type.validate_column, definition)
                if kind.validate is not FieldType.validate
                or kind.validate_column is not FieldType.validate_column
                else None
            )
            normalize = (
                functools.partial(field_type.normalize, definition)
                if kind.normalize is not FieldType.normalize
                else None
            )
            if validate is not None or normalize is not None:
                self.checks.append((position, name, validate, normalize))
        #: positions of the date-times of types that keep the base class's conversions:
        #: turned into UTC first, which is both how they are stored and how they read back
        self.in_utc: list[int] = []
        #: (position in the values, to_db) of the fields whose values need converting
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        for position, name in enumerate(self.fields):
            field_type = rt.types[name]
            kind = type(field_type)
            if kind.to_db is FieldType.to_db:
                write = writer_for_storage(rt.storage[name], rt.dialect)
                if (
                    rt.storage[name] == "datetime"
                    and kind.reader is FieldType.reader
                    and kind.from_db is FieldType.from_db
                ):
                    self.in_utc.append(position)
                    if write is not None:  # SQLite's text of a moment already in UTC
                        write = _UTC_TEXT
            else:
                write = functools.partial(field_type.to_db, rt.fields[name], dialect=rt.dialect)
            if write is not None:
                self.converters.append((position, write))
        #: the record's fields (the readable ones, not passwords) in the entity's order,
        #: as positions in the values
        self.record_positions = [
            self.fields.index(name) for name in rt.all_columns[3:] if name in self.fields
        ]
        readers = dict(rt._readers)
        #: (position in a record, position in the values, reader, whether the reader
        #: takes the validated value) of fields whose record value is read from the
        #: stored form, as a read would (types with their own ``to_db`` or reader, JSON)
        self.stored_readers: list[tuple[int, int, Callable[[Any], Any], bool]] = []
        for position, name in enumerate(rt.all_columns):
            if name not in self.fields:  # system columns; kernel-filled fields (not fast)
                continue
            field_type, storage = rt.types[name], rt.storage[name]
            kind = type(field_type)
            plain = (
                kind.to_db is FieldType.to_db
                and kind.reader is FieldType.reader
                and kind.from_db is FieldType.from_db
            )
            if plain and storage in _READ_AS_VALIDATED:
                continue  # stored and read back, the value is what was validated
            if plain and storage == "datetime":
                continue  # in UTC already (``in_utc``)
            reader = readers.get(name)
            if rt.dialect == "postgres" and storage == "datetime":
                reader = functools.partial(_in_utc, reader)  # PostgreSQL returns UTC
            # a decimal's reader (the stored text as a Decimal, to the column's scale)
            # gives the same for the validated Decimal, whose text is exact: no parse
            from_value = (
                storage == "decimal"
                and kind.to_db is FieldType.to_db
                and kind.reader is DecimalType.reader
                and kind.from_db is FieldType.from_db
            )
            if reader is not None:
                self.stored_readers.append((position, self.fields.index(name), reader, from_value))
        #: a struct with the record's columns, positional, for encoding outbox payloads
        #: (the same JSON as the record as a dict, at a fraction of the cost)
        title = "".join(part.title() for part in rt.name.split("_"))
        slots = [f"c{index}" for index in range(len(rt.all_columns))]
        self.record: Callable[..., msgspec.Struct] = msgspec.defstruct(
            f"{title}Record",
            [(slot, Any) for slot in slots],
            rename=dict(zip(slots, rt.all_columns, strict=True)),
            gc=False,  # short-lived and never in a cycle: nothing for the collector to scan
        )
        self._stamp = readers.get("created_at")

    def convert_columns(
        self, given: Mapping[str, Sequence[Any]], count: int
    ) -> list[list[Any]] | None:
        """``count`` rows given a list of values per field, checked against the input
        struct's field types: a list per field of ``fields``.

        Each field's values in one :func:`msgspec.convert` call against its
        field's type, which checks each value as converting a row's dict to
        the struct does. ``None`` in ``given``, or a field not in it, is a
        value left out: the field's default. ``None`` (the result) when a
        value is refused or a required field has none: the rows' own path
        names the problem.
        """
        columns: list[list[Any]] = []
        for name, (list_type, missing) in zip(self.fields, self.column_types, strict=True):
            values = given.get(name)
            if values is None:
                if missing.required:
                    return None
                columns.append(missing.fill(count))
                continue
            try:
                converted: list[Any] = msgspec.convert(values, list_type)
            except msgspec.ValidationError:
                return None
            columns.append(missing.replace(converted))
        return columns

    def read_stamp(self, stamp: Any) -> Any:
        """A ``created_at`` parameter as reading it back gives it."""
        return self._stamp(stamp) if self._stamp is not None else stamp


class PreparedCreates:
    """Rows of one entity that :meth:`RecordRepository.prepare_creates` checked, to be
    written once by :meth:`RecordRepository.create_prepared`."""

    def __init__(
        self, rt: EntityRuntime, plan: _BulkPlan, labels: list[str], columns: list[list[Any]]
    ) -> None:
        self.rt = rt
        self.plan = plan
        #: each row's prefix in problems (``create[3].``)
        self.labels = labels
        #: until ``convert``: the rows' values as validated, a list per field of
        #: ``plan.fields``
        self.columns: list[list[Any]] | None = columns
        #: after ``convert``: the insert's parameters, a list per row
        self.batch: list[list[Any]] = []
        #: after ``convert``: each record as reading it back gives it, its id and time
        #: stamps (the first three columns) left for the write to fill in
        self.reads: list[list[Any]] | None = None
        #: after ``convert``: each row's prefix and link values, as validated
        self._links: list[tuple[str, dict[str, Any]]] | None = None
        self.written = False

    def links(self) -> list[tuple[str, dict[str, Any]]]:
        """Each row's prefix and its values of link fields, as validated (to check them)."""
        if self._links is not None:
            return self._links
        assert self.columns is not None
        links = [(name, self.columns[self.plan.fields.index(name)]) for name in self.rt.links]
        return [
            (label, {name: values[index] for name, values in links})
            for index, label in enumerate(self.labels)
        ]

    @property
    def rows(self) -> int:
        """How many rows there are."""
        return len(self.labels)

    def value_rows(self) -> list[list[Any]]:
        """Before ``convert``: the validated values a list per row (for hooks to change)."""
        assert self.columns is not None
        return [list(values) for values in zip(*self.columns, strict=True)]

    def convert(self) -> None:
        """Turn the validated values into parameters, and keep the records they read as.

        A field at a time, each conversion one comprehension over the
        field's values: date-times into UTC, then the records as reading them
        back would give them, then the values turned into parameters (and
        what reads differently read from those), which ``batch`` gets a row
        at a time.
        """
        plan, columns = self.plan, self.columns
        assert columns is not None
        if self.rt.links:
            self._links = self.links()
        self.columns = None
        if not self.labels:
            self.batch, self.reads = [], []
            return
        utc = dt.UTC
        for position in plan.in_utc:
            columns[position] = [
                value.astimezone(utc) if value is not None else None for value in columns[position]
            ]
        record = [columns[position] for position in plan.record_positions]
        params = list(columns)
        for position, write in plan.converters:
            params[position] = [
                write(value) if value is not None else None for value in columns[position]
            ]
        for position, source, read_stored, from_value in plan.stored_readers:
            stored = columns[source] if from_value else params[source]
            record[position - 3] = [
                read_stored(value) if value is not None else None for value in stored
            ]
        self.batch = list(map(list, zip(*params, strict=True)))
        self.reads = (
            [[None, None, None, *values] for values in zip(*record, strict=True)]
            if record
            else [[None, None, None] for _ in self.batch]
        )


def _labels(rows: Sequence[Any], prefixes: Sequence[str] | None) -> list[str]:
    """Each row's prefix in problems: ``prefixes``, or ``create[i].``."""
    if prefixes is not None:
        return list(prefixes)
    return [f"create[{index}]." for index in range(len(rows))]


#: Storage kinds whose validated values are exactly what storing and reading them
#: back gives, for a type that keeps the base class's conversions.
_READ_AS_VALIDATED = frozenset({"text", "integer", "link", "decimal", "date", "boolean"})

#: Types whose values :func:`msgspec.convert` checks exactly as decoding their JSON would.
_LIKE_JSON = (
    msgspec.inspect.StrType,
    msgspec.inspect.IntType,
    msgspec.inspect.BoolType,
    msgspec.inspect.NoneType,
    msgspec.inspect.DecimalType,
    msgspec.inspect.DateType,
    msgspec.inspect.DateTimeType,
    msgspec.inspect.TimeType,
    msgspec.inspect.TimeDeltaType,
    msgspec.inspect.LiteralType,
)


def _converts_like_json(info: Any) -> bool:
    """Whether Python values of the msgspec type ``info`` convert as their JSON decodes."""
    if isinstance(info, msgspec.inspect.StructType):
        return all(_converts_like_json(item.type) for item in info.fields)
    if isinstance(info, msgspec.inspect.UnionType):
        return all(_converts_like_json(item) for item in info.types)
    if isinstance(info, msgspec.inspect.ListType):
        return _converts_like_json(info.item_type)
    return isinstance(info, _LIKE_JSON)


#: What ``to_db`` gives on SQLite for a date-time already in UTC (see ``_utc_text``).
_UTC_TEXT = operator.methodcaller("isoformat", " ", "microseconds")


#: The ``jimu_event`` columns that every event of a bulk write shares, with their
#: PostgreSQL types for the casts of their parameters (asyncpg encodes a parameter
#: by the type PostgreSQL infers).
_EVENT_SHARED_TYPES = {
    "entity": "text",
    "kind": "text",
    "occurred_at": "timestamptz",
    "actor_kind": "text",
    "actor_id": "bigint",
    "actor_name": "text",
    "token_id": "bigint",
    "ip": "text",
    "request_id": "text",
}

#: The ``jimu_event`` columns of a bulk write, in the order of its parameters:
#: per record its id and payload, then what every event of the write shares.
_EVENT_COLUMNS = ("record_id", "payload", *_EVENT_SHARED_TYPES)


def _stamp_records(
    plan: _BulkPlan, reads: list[list[Any]], ids: Sequence[int], stamp: Any
) -> list[tuple[int, str]]:
    """Give the records of a bulk write their ids and time stamps; their outbox events.

    ``reads`` are the records as :meth:`PreparedCreates.convert` left them,
    their first three columns (id, created_at, updated_at) to be filled in;
    the result holds each record's id and its payload, the record as JSON.
    """
    stamp_read = plan.read_stamp(stamp)
    make_record = plan.record
    encode = msgspec.json.encode
    events = []
    for read, record_id in zip(reads, ids, strict=True):
        read[0] = record_id
        read[1] = read[2] = stamp_read
        events.append((record_id, encode(make_record(*read)).decode()))
    return events


def _write_sqlite(
    rt: EntityRuntime,
    plan: _BulkPlan,
    batch: list[list[Any]],
    reads: list[list[Any]],
    stamp: Any,
    shared: tuple[Any, ...],
    connection: sqlite3.Connection,
) -> list[int]:
    """A bulk write on SQLite, run in its connection's thread: ids, rows, outbox events.

    The ids are the ones SQLite will give the rows, inserted without an id
    (which keeps SQLite's fast append path): inside a write transaction
    (``BEGIN IMMEDIATE`` keeps other writers out), AUTOINCREMENT gives the
    next ids after the larger of the highest id and ``sqlite_sequence``, and
    never reuses one. The highest id given out afterwards proves it did.
    """

    def run(sql: str, params: Sequence[Any]) -> list[Any]:
        return connection.execute(render(sql, "sqlite"), params).fetchall()

    top = _sqlite_highest_id(run(*_sqlite_highest_id_query(rt)))
    ids = list(range(top + 1, top + 1 + len(batch)))
    events = _stamp_records(plan, reads, ids, stamp)
    # the rows' parameters one after the other: the values, created_at, updated_at
    flat: list[Any] = []
    tail = (stamp, stamp)
    for values in batch:
        flat += values
        flat += tail
    names = (*plan.fields, "created_at", "updated_at")
    head = f"INSERT INTO {rt.quoted} ({', '.join(_quote(c) for c in names)}) VALUES "
    for statement in _flat_statements(head, len(names), flat):
        run(*statement)
    for statement in _sqlite_event_statements(shared, events):
        run(*statement)
    if _sqlite_highest_id(run(*_sqlite_highest_id_query(rt))) != ids[-1]:
        raise RuntimeError(f"create_many: {rt.name} ids were not assigned in order")
    return ids


async def _insert_events(
    db: Database, shared: tuple[Any, ...], events: Sequence[tuple[int, str]]
) -> None:
    """Write an outbox event per ``(record id, payload)`` of ``events`` on PostgreSQL.

    ``shared`` holds what every event of the write has in common, in the
    order of :data:`_EVENT_COLUMNS` after the record id and payload; it is
    bound once, not once per event.

    One statement: the ids and payloads as two arrays that ``unnest`` turns
    back into rows. The client then encodes a time stamp and six actor
    values once instead of per event, which makes this faster than a binary
    ``COPY`` of whole rows (7.8 against 10.6 us an event, measured on 100,000
    events). ``unnest`` yields the arrays' elements in order, so the events
    get their ids in the order of ``events``. (SQLite: see
    :func:`_sqlite_event_statements`.)
    """
    if not events:
        return
    casts = ", ".join(f"{{}}::{kind}" for kind in _EVENT_SHARED_TYPES.values())
    # the shared values come first in the statement and so in the parameters
    await db.execute(
        f"INSERT INTO jimu_event ({', '.join(_EVENT_COLUMNS)}) "
        f"SELECT u.r, u.p, {casts} FROM unnest({{}}::bigint[], {{}}::text[]) AS u(r, p)",
        [*shared, [event[0] for event in events], [event[1] for event in events]],
    )


def _sqlite_event_statements(
    shared: tuple[Any, ...], events: Sequence[tuple[int, str]]
) -> list[tuple[str, list[Any]]]:
    """The SQLite statements that write an outbox event per ``(record id, payload)``.

    As :func:`_insert_events`, with the per-event values as ``VALUES (?, ?),
    ...`` rows, as many per statement as the parameter limit allows and the
    shared values bound once per statement. SQLite reads a ``VALUES`` list
    in its order, so the events get their ids in the order of ``events`` (as
    the records of a multi-row ``INSERT`` do).
    """
    items = ", ".join(["column1", "column2", *("{}" for _ in _EVENT_SHARED_TYPES)])
    # the shared values are bound in the SELECT list, before the VALUES rows
    head = f"INSERT INTO jimu_event ({', '.join(_EVENT_COLUMNS)}) SELECT {items} FROM (VALUES "
    per = max(1, (_max_parameters() - len(shared)) // 2)
    statements: list[tuple[str, list[Any]]] = []
    for start in range(0, len(events), per):
        part = events[start : start + per]
        params: list[Any] = [*shared]
        for event in part:
            params += event
        statements.append((head + ", ".join(["({}, {})"] * len(part)) + ")", params))
    return statements


def _flat_statements(head: str, width: int, flat: list[Any]) -> list[tuple[str, list[Any]]]:
    """SQLite statements ``head`` (``INSERT INTO t (a, b) VALUES ``) for the rows of
    ``width`` values in ``flat``.

    As few statements as SQLite's limit on parameters allows, each of them
    ``VALUES (...), (...), ...`` for many rows: a statement per row costs
    SQLite a third more per row. The rows are split evenly, so a batch uses
    at most two shapes of statement (1,000 rows in two go as 500 + 500).
    (PostgreSQL takes bulk writes by ``COPY``: see :meth:`Database.copy_rows`.)
    """
    count = len(flat) // width
    if not count:
        return []
    group = "(" + ", ".join("{}" for _ in range(width)) + ")"
    per = max(1, _max_parameters() // width)
    parts = -(-count // per)
    per = -(-count // parts)  # even parts
    step = per * width
    statements = []
    for start in range(0, count * width, step):
        rows = min(per, count - start // width)
        statements.append((head + ", ".join([group] * rows), flat[start : start + rows * width]))
    return statements


@functools.cache
def _sqlite_parameters() -> int:
    """The most parameters one statement may have in this process's SQLite library."""
    connection = sqlite3.connect(":memory:")
    try:
        return int(connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        connection.close()


def _max_parameters() -> int:
    """Parameters per SQLite statement for bulk inserts: the library's limit, at most 32,766."""
    return min(_sqlite_parameters(), 32_766)


def _in_utc(reader: Callable[[Any], Any] | None, value: Any) -> Any:
    value = reader(value) if reader is not None else value
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value


_PLANS: weakref.WeakKeyDictionary[EntityRuntime, _BulkPlan] = weakref.WeakKeyDictionary()


def _bulk_plan(rt: EntityRuntime) -> _BulkPlan:
    plan = _PLANS.get(rt)
    if plan is None:
        plan = _PLANS[rt] = _BulkPlan(rt)
    return plan


async def _allocate_ids(db: Database, rt: EntityRuntime, count: int) -> list[int]:
    """``count`` new ids for ``rt``'s PostgreSQL table, out of the table's own sequence.

    (On SQLite, :func:`_write_sqlite` knows the ids without asking: see there.)
    """
    # the sequence looked up once (MATERIALIZED), not once per id: that lookup
    # costs twice what nextval itself does
    row = await db.fetch_one(
        "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence({}, 'id')::regclass AS seq) "
        "SELECT array_agg(nextval(s.seq)) AS ids FROM s, generate_series(1, {})",
        [rt.quoted, count],
    )
    assert row is not None
    return sorted(row["ids"])  # one row with an array: not a row per id


def _sqlite_highest_id_query(rt: EntityRuntime) -> tuple[str, list[Any]]:
    """The query of the highest id SQLite has given out for ``rt``."""
    return (
        f"SELECT (SELECT MAX(id) FROM {rt.quoted}) AS top, "
        "(SELECT seq FROM sqlite_sequence WHERE name = {}) AS seq",
        [rt.name],
    )


def _sqlite_highest_id(rows: Sequence[Mapping[str, Any]]) -> int:
    """The highest id given out, from the rows of its query (0: none yet)."""
    row = rows[0] if rows else None
    top = int(row["top"]) if row and row["top"] is not None else 0
    if row is not None and row["seq"] is not None:
        top = max(top, int(row["seq"]))
    return top


def _check_writes(
    access: Access,
    rt: EntityRuntime,
    values: Mapping[str, Any],
    prefix: str,
    *,
    creating: bool = False,
) -> None:
    """Refuse (403) a value for a field the actor may not write.

    On create, a field left at its default is not a write (the decoder
    fills defaults in), so only values that differ from it count.
    """
    writable = access.writable_fields(rt.name)
    if writable is None:
        return
    for name, value in values.items():
        if name in writable or name not in rt.fields:
            continue
        if creating and value == typed_default(rt.types[name], rt.fields[name]):
            continue
        access.check_writable(rt.name, [name], prefix)


def _prefixed(exc: ValidationFailed, prefix: str) -> ValidationFailed:
    """A hook's refusal of one row of a bulk write, its fields prefixed with the row's."""
    return ValidationFailed(
        [FieldProblem(prefix + problem["field"], problem["reason"]) for problem in exc.errors]
    )


class _BulkRequest(msgspec.Struct, forbid_unknown_fields=True):
    create: list[msgspec.Raw] = msgspec.field(default_factory=list)
    update: list[msgspec.Raw] = msgspec.field(default_factory=list)
    delete: list[int] = msgspec.field(default_factory=list)


def _raw_bytes(raw: Any) -> bytes:
    if isinstance(raw, msgspec.Raw):
        return bytes(raw)
    return msgspec.json.encode(raw)
