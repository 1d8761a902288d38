"""Field types: what a field stores, how input is validated, which widget shows it.

A :class:`FieldType` is behaviour, registered through the ``jimu_field_types``
hook; the kernel's own types are registered by the built-in plugin
:mod:`jimu.fields.builtin` exactly like a third party's. A type maps a field
onto one of a few *storage kinds*, which the store turns into columns and the
rule compiler into SQL.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

from jimu.meta import FieldDef, MetadataError, Translatable

__all__ = [
    "STORAGE_KINDS",
    "Dialect",
    "FieldType",
    "FieldTypeRegistry",
    "Storage",
    "VirtualColumn",
    "WriteContext",
    "python_type_for_storage",
    "reader_for_storage",
    "writer_for_storage",
]

Dialect = Literal["sqlite", "postgres"]

#: The storage kinds a field type can map to; each is one column type per dialect.
Storage = Literal["text", "integer", "decimal", "boolean", "date", "datetime", "json", "link"]
STORAGE_KINDS: tuple[Storage, ...] = (
    "text",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "json",
    "link",
)

#: How far each storage kind can be converted into another without losing data.
#: A change to a kind not listed here is "narrowing" and needs ``jimu migrate``.
WIDENINGS: dict[Storage, frozenset[Storage]] = {
    "integer": frozenset({"decimal", "text"}),
    "decimal": frozenset({"text"}),
    "boolean": frozenset({"integer", "text"}),
    "date": frozenset({"datetime", "text"}),
    "datetime": frozenset({"text"}),
    "link": frozenset({"integer", "text"}),
    "json": frozenset({"text"}),
    "text": frozenset(),
}


def _utc_text(value: dt.datetime) -> str:
    """Fixed-width UTC text for SQLite, so text order is time order.

    ``2024-03-08 06:30:00.000000+00:00``: ``isoformat`` with microseconds
    always, which is also about three times as fast as ``strftime``.
    """
    return value.astimezone(dt.UTC).isoformat(" ", "microseconds")


@dataclass
class WriteContext:
    """What :meth:`FieldType.fill` knows about the write it takes part in."""

    #: The site (its ``db``, ``rules`` and ``config``).
    site: Any
    #: The entity's definition.
    entity: Any
    #: The record as it will be stored (the stored record plus the changes, for an update).
    record: dict[str, Any]
    #: The stored record before an update; ``None`` for a new record.
    before: Mapping[str, Any] | None
    #: The write's moment, in UTC.
    now: dt.datetime


@dataclass(frozen=True)
class VirtualColumn:
    """A virtual field's value as SQL: an expression over the row (identifiers only,
    never values), the storage kind of its result, and how results become API values."""

    sql: str
    storage: Storage
    reader: Callable[[Any], Any] | None


class FieldType:
    """Base class of every field type.

    Subclasses set the class attributes and may override :meth:`input_type`,
    :meth:`check_options`, :meth:`validate`, :meth:`normalize`, :meth:`to_db`,
    :meth:`from_db` (or :meth:`reader`), :meth:`parse_cell`, :meth:`format_cell`
    and :meth:`filter_operators`.
    One instance serves every field of that type.

    A value goes through them in this order: decoded into :meth:`input_type`,
    checked by :meth:`validate`, put in canonical form by :meth:`normalize`
    (a phone number in E.164, sanitised HTML), then bound by :meth:`to_db`.
    """

    #: Registry name used in :attr:`FieldDef.type`, e.g. ``"email"``.
    name: ClassVar[str]
    #: Storage kind: which column type holds the value.
    storage: ClassVar[Storage]
    #: Name of the web UI widget that edits the value.
    widget: ClassVar[str] = "input"
    #: Human label of the type, shown in the field designer.
    label: ClassVar[Translatable] = ""
    #: Options this type understands; anything else in ``FieldDef.options`` is refused.
    allowed_options: ClassVar[frozenset[str]] = frozenset()
    #: False when the kernel computes the value (:meth:`fill`): input may not set it.
    writable: ClassVar[bool] = True
    #: False when the value never leaves the database: not returned, exported, filtered or sorted on.
    readable: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # a type that checks values its own way but inherits a parent's column check
        # would skip its checks in bulk writes: it gets the check a value at a time
        if "validate" in cls.__dict__ and "validate_column" not in cls.__dict__:
            cls.validate_column = FieldType.validate_column  # type: ignore[method-assign]

    def storage_for(self, field: FieldDef) -> Storage:
        """The storage kind of ``field`` (a formula's depends on what it returns)."""
        return self.storage

    #: True when the value has no column: it is computed in SQL when read (lookup, rollup).
    virtual: ClassVar[bool] = False

    def check_in_entity(
        self, field: FieldDef, entity: Any, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        """Check ``field`` against its entity and the site's model (what a formula reads,
        what a lookup follows).

        ``entity`` is the :class:`~jimu.meta.EntityDef`, ``rules`` the site's
        rule registry, ``model`` every entity by name. Raise
        :class:`MetadataError` naming ``path``.
        """

    def virtual_column(
        self,
        field: FieldDef,
        entity: Any,
        model: Mapping[str, Any],
        registry: FieldTypeRegistry,
        dialect: Dialect,
    ) -> VirtualColumn:
        """For a virtual type: how to compute the value in SQL for a row of ``entity``."""
        raise NotImplementedError(f"field type {self.name!r} is not virtual")

    #: True when :meth:`resolve` must see values before they are stored (file references).
    resolves: ClassVar[bool] = False

    #: How a value that lives in rows of other tables is kept, or ``None`` for a value of the
    #: record's own row: ``"links"`` (a junction table the kernel manages, one row per linked
    #: record: multi-link) or ``"children"`` (records of another entity whose link points
    #: back here, written with the record: child table). Such a type is also :attr:`virtual`
    #: (no column; its :meth:`virtual_column` is what filters see) yet writable; the record
    #: repository writes it after the record's row, in the same transaction
    #: (:mod:`jimu.store.related`).
    relation: ClassVar[Literal["links", "children"] | None] = None

    async def resolve(
        self, field: FieldDef, items: Sequence[tuple[str, Any]], site: Any
    ) -> list[Any]:
        """Check values against the site and complete them, for every record of a write.

        ``items`` pairs each record's error path (``create[2].photo``) with its
        validated, non-null value. Return the values to store, in the same
        order; raise :class:`~jimu.errors.ValidationFailed` naming the paths.
        Runs inside the write's transaction, after the before-hooks.
        """
        return [value for _, value in items]

    def fills_on_update(self, field: FieldDef) -> bool:
        """Whether :meth:`fill` runs again when the record is updated (formulas, modified-at)."""
        return False

    async def fill(self, field: FieldDef, context: WriteContext) -> Any:
        """The value of a non-writable field for a record being written.

        Called inside the write's transaction, after the before-hooks, with the
        record as it will be stored in ``context.record``.
        """
        raise NotImplementedError(f"field type {self.name!r} is not writable but has no fill()")

    def input_type(self, field: FieldDef) -> Any:
        """The msgspec type a JSON input value for ``field`` must decode into."""
        return _PYTHON_TYPES[self.storage_for(field)]

    def check_options(self, field: FieldDef, path: str) -> None:
        """Raise :class:`MetadataError` when ``field.options`` do not suit this type."""
        unknown = sorted(set(field.options) - self.allowed_options)
        if unknown:
            allowed = ", ".join(sorted(self.allowed_options)) or "none"
            raise MetadataError(
                f"{path}.options",
                f"unknown option {unknown[0]!r} for a {self.name} field (allowed: {allowed})",
            )

    def validate(self, field: FieldDef, value: Any) -> str | None:
        """Check a decoded, non-null value; return the reason it is bad, or ``None``."""
        return None

    def validate_column(self, field: FieldDef, values: Sequence[Any]) -> list[str | None] | None:
        """:meth:`validate` of many values of one field at once (bulk writes, imports).

        ``values`` are decoded; ``None`` among them is a null, which is not
        checked. Returns ``None`` when every value passes, else the reason
        (or ``None``) of each value in order, as :meth:`validate` gives it. A
        type may override this to check a whole column faster than a call
        per value; it must accept and refuse exactly what :meth:`validate`
        does.
        """
        validate = self.validate
        reasons = [validate(field, value) if value is not None else None for value in values]
        return reasons if any(reasons) else None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        """The canonical form of a decoded, validated, non-null value (default: as given).

        Called right after :meth:`validate` accepted ``value``; what it returns
        is what the record stores and what hooks and the API see. It must be
        idempotent (``normalize(normalize(v)) == normalize(v)``) and return a
        value :meth:`input_type` and :meth:`validate` accept again, because a
        value may be normalised more than once (after a before-hook, or by a
        type's :meth:`to_db` as a safety net).
        """
        return value

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        """The JSON input value of an imported CSV/XLSX cell (raise ``CellError`` with why).

        The result is then validated like API input. ``timezone`` is the site's,
        for date-times written without an offset.
        """
        from jimu.fields.cells import parse_cell

        return parse_cell(self.storage_for(field), cell, timezone)

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        """The cell an API value becomes in a CSV/XLSX export."""
        from jimu.fields.cells import format_cell

        return format_cell(self.storage_for(field), value, timezone)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        """The JsonLogic operators a filter UI offers for this field."""
        from jimu.fields.cells import FILTER_OPERATORS

        return FILTER_OPERATORS[self.storage_for(field)]

    def to_db(self, field: FieldDef, value: Any, dialect: Dialect) -> Any:
        """Convert a validated Python value into the value bound as a query parameter."""
        if value is None:
            return None
        write = _WRITERS[dialect].get(self.storage_for(field))
        return write(value) if write is not None else value

    def reader(self, field: FieldDef, dialect: Dialect) -> Callable[[Any], Any] | None:
        """A function turning a stored, non-null value into the API's value.

        ``None`` when stored values are already what the API returns. Built
        once per field and run for every value read, so it should be cheap;
        a type that overrides :meth:`from_db` gets a reader calling it.
        """
        if type(self).from_db is not FieldType.from_db:
            return functools.partial(self.from_db, field, dialect=dialect)
        return _READERS[dialect].get(self.storage_for(field))

    def from_db(self, field: FieldDef, value: Any, dialect: Dialect) -> Any:
        """Convert a value read from the database into the Python value of the API."""
        if value is None:
            return None
        read = self.reader(field, dialect)
        return read(value) if read is not None else value

    def __repr__(self) -> str:
        return f"<FieldType {self.name} ({self.storage})>"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _iso_date(value: dt.date) -> str:
    return value.isoformat()


def _flag(value: Any) -> int:
    return 1 if value else 0


#: How API values become query parameters, per dialect and storage kind (absent: as they are).
_WRITERS: dict[Dialect, dict[Storage, Callable[[Any], Any]]] = {
    "sqlite": {
        "decimal": str,
        "datetime": _utc_text,
        "date": _iso_date,
        "boolean": _flag,
        "json": _json_text,
    },
    "postgres": {"json": _json_text},
}


def writer_for_storage(storage: Storage, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How non-null API values of ``storage`` become query parameters (``None``: as they are).

    What :meth:`FieldType.to_db` does for a type that keeps the base class's;
    for code that converts many values of one field (bulk inserts).
    """
    return _WRITERS[dialect].get(storage)


def _sqlite_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _sqlite_decimal(value: Any) -> Decimal:
    if type(value) is str:  # what the kernel stores; floats go through their shortest text
        return Decimal(value)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _sqlite_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)


def _sqlite_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


#: How stored values become API values, per dialect and storage kind (absent: as stored).
_READERS: dict[Dialect, dict[Storage, Callable[[Any], Any]]] = {
    "sqlite": {
        "json": _sqlite_json,
        "decimal": _sqlite_decimal,
        "boolean": bool,
        "datetime": _sqlite_datetime,
        "date": _sqlite_date,
    },
    # asyncpg returns typed values; jsonb arrives as text
    "postgres": {"json": _sqlite_json},
}


def reader_for_storage(storage: Storage, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How stored values of ``storage`` become API values (``None``: as they are)."""
    return _READERS[dialect].get(storage)


def python_type_for_storage(storage: Storage) -> Any:
    """The Python type of API values of ``storage``."""
    return _PYTHON_TYPES[storage]


_PYTHON_TYPES: dict[Storage, Any] = {
    "text": str,
    "integer": int,
    "decimal": Decimal,
    "boolean": bool,
    "date": dt.date,
    "datetime": dt.datetime,
    "json": Any,
    "link": int,
}


class FieldTypeRegistry:
    """The field types known to one plugin manager, by name."""

    def __init__(self) -> None:
        self._types: dict[str, FieldType] = {}
        self._owners: dict[str, str] = {}

    def register(self, field_type: FieldType, owner: str) -> None:
        """Add ``field_type``; a name registered twice is an error naming both owners."""
        name = field_type.name
        if name in self._types:
            raise MetadataError(
                "field_types",
                f"field type {name!r} is registered by both {self._owners[name]!r} and {owner!r}",
            )
        if field_type.storage not in STORAGE_KINDS:
            raise MetadataError(
                "field_types",
                f"field type {name!r} of {owner!r} has unknown storage {field_type.storage!r}",
            )
        self._types[name] = field_type
        self._owners[name] = owner

    def get(self, name: str) -> FieldType | None:
        """Return the type called ``name``, or ``None``."""
        return self._types.get(name)

    def __getitem__(self, name: str) -> FieldType:
        return self._types[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[FieldType]:
        return iter(self._types.values())

    def names(self) -> list[str]:
        """All registered type names, sorted."""
        return sorted(self._types)

    def owner(self, name: str) -> str:
        """The plugin that registered the type called ``name``."""
        return self._owners[name]
