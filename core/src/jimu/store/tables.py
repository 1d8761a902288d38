"""Entities as piccolo tables: one dynamic ``Table`` class per entity.

The kernel takes its DDL (tables, added columns) from these classes, so the
column types are piccolo's on both dialects.
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import (
    JSON,
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Column,
    Date,
    Numeric,
    Text,
    Timestamptz,
)
from piccolo.engine.base import Engine
from piccolo.table import Table, create_table_class

from jimu.fields import Dialect, FieldTypeRegistry, Storage
from jimu.meta import EntityDef

__all__ = ["SYSTEM_COLUMNS", "column_for", "storage_of_declared", "table_class"]

#: Columns of every entity table besides its fields.
SYSTEM_COLUMNS: dict[str, Storage] = {
    "id": "integer",
    "created_at": "datetime",
    "updated_at": "datetime",
}


def column_for(storage: Storage, dialect: Dialect) -> Column:
    """A nullable piccolo column for a storage kind (``required`` is checked by the API)."""
    columns: dict[Storage, Any] = {
        "text": Text,
        "integer": BigInt,
        "link": BigInt,
        "decimal": Numeric,
        "boolean": Boolean,
        "date": Date,
        "datetime": Timestamptz,
        "json": JSON if dialect == "sqlite" else JSONB,
    }
    column: Column = columns[storage](null=True, default=None)
    return column


#: Declared column types (upper-case, as the database reports them) -> storage kinds they hold.
_DECLARED: list[tuple[tuple[str, ...], frozenset[Storage]]] = [
    (("TEXT", "VARCHAR", "CHARACTER VARYING", "CHARACTER"), frozenset({"text"})),
    (("BIGINT", "INTEGER", "INT", "SMALLINT"), frozenset({"integer", "link"})),
    (("NUMERIC", "DECIMAL"), frozenset({"decimal"})),
    (("BOOLEAN",), frozenset({"boolean"})),
    (("DATE",), frozenset({"date"})),
    (("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"), frozenset({"datetime"})),
    (("JSONB", "JSON"), frozenset({"json"})),
]


def storage_of_declared(declared: str) -> frozenset[Storage]:
    """The storage kinds a live column of type ``declared`` can hold."""
    base = declared.split("(", 1)[0].strip().upper()
    for names, kinds in _DECLARED:
        if base in names:
            return kinds
    return frozenset()


def table_class(
    entity: EntityDef,
    field_types: FieldTypeRegistry,
    engine: Engine[Any],
    dialect: Dialect,
    *,
    only: set[str] | None = None,
) -> type[Table]:
    """Build the piccolo ``Table`` class of ``entity`` (``only`` limits the fields)."""
    members: dict[str, Column] = {
        "id": BigSerial(primary_key=True),
        "created_at": Timestamptz(null=True, default=None),
        "updated_at": Timestamptz(null=True, default=None),
    }
    for field in entity.fields:
        if (only is not None and field.name not in only) or field_types[field.type].virtual:
            continue
        members[field.name] = column_for(field_types[field.type].storage_for(field), dialect)
    class_name = "".join(part.title() for part in entity.name.split("_")) or "Entity"
    return create_table_class(
        class_name,
        class_kwargs={"tablename": entity.name, "db": engine},
        class_members=members,
    )
