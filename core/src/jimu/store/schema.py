"""Schema diff, plan and apply: metadata versus the live database.

:func:`diff` compares the site's entities with the tables that exist and
returns a :class:`SchemaPlan`. Additive changes (new table, new column, new
index, widening type change) are *safe* and the kernel applies them on its
own; changes that could lose data (drop a column or table, rename, narrowing
type change) are *destructive* and wait for a person to run
``jimu migrate --plan`` and then ``jimu migrate --apply``. Nothing is ever
dropped silently.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import msgspec

from jimu.errors import JimuError
from jimu.fields import WIDENINGS, FieldTypeRegistry, Storage
from jimu.meta import EntityDef
from jimu.store.database import Database
from jimu.store.tables import SYSTEM_COLUMNS, column_for, storage_of_declared, table_class

__all__ = ["SchemaChange", "SchemaPlan", "diff", "live_fields"]


@dataclass
class SchemaChange:
    """One change between metadata and the database, with the SQL that makes it."""

    kind: str
    entity: str
    field: str | None
    detail: str
    destructive: bool
    statements: list[str]
    #: How many stored values the change puts at risk (destructive changes only).
    values_at_risk: int | None = None
    #: For a type change: the storage kind the column changes to.
    target: Storage | None = None
    #: Why the database refused this (safe) change when the site last synced.
    blocked: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None, str]:
        """What identifies the change across syncs (kind, entity, field, first statement)."""
        return (self.kind, self.entity, self.field, self.statements[0] if self.statements else "")

    def describe(self) -> str:
        """One line a person can review."""
        where = f"{self.entity}.{self.field}" if self.field else self.entity
        risk = ""
        if self.values_at_risk is not None:
            risk = f" ({self.values_at_risk} stored value(s) affected)"
        blocked = f" (blocked: {self.blocked})" if self.blocked else ""
        return f"{self.kind} {where}: {self.detail}{risk}{blocked}"

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready description (for ``--json`` and the API)."""
        return {
            "kind": self.kind,
            "entity": self.entity,
            "field": self.field,
            "detail": self.detail,
            "destructive": self.destructive,
            "values_at_risk": self.values_at_risk,
            "blocked": self.blocked,
            "sql": self.statements,
        }


@dataclass
class SchemaPlan:
    """The changes that bring the database in line with the metadata."""

    changes: list[SchemaChange] = field(default_factory=list)

    @property
    def safe(self) -> list[SchemaChange]:
        """Changes the kernel applies on its own."""
        return [change for change in self.changes if not change.destructive]

    @property
    def destructive(self) -> list[SchemaChange]:
        """Changes that wait for ``jimu migrate --apply``."""
        return [change for change in self.changes if change.destructive]

    def __bool__(self) -> bool:
        return bool(self.changes)


_SQL_TYPES: dict[str, dict[Storage, str]] = {
    "sqlite": {
        "text": "TEXT",
        "integer": "INTEGER",
        "link": "INTEGER",
        "decimal": "NUMERIC",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "datetime": "TIMESTAMPTZ",
        "json": "JSON",
    },
    "postgres": {
        "text": "TEXT",
        "integer": "BIGINT",
        "link": "BIGINT",
        "decimal": "NUMERIC",
        "boolean": "BOOLEAN",
        "date": "DATE",
        "datetime": "TIMESTAMPTZ",
        "json": "JSONB",
    },
}


def _wanted_indexes(
    entity: EntityDef, field_types: FieldTypeRegistry
) -> dict[str, tuple[list[str], bool]]:
    """Index name -> (columns, unique) that the metadata asks for."""
    wanted: dict[str, tuple[list[str], bool]] = {}
    for definition in entity.fields:
        if field_types[definition.type].virtual:
            continue  # no column, no index
        storage = field_types[definition.type].storage_for(definition)
        if definition.unique:
            wanted[f"ux_{entity.name}_{definition.name}"[:63]] = ([definition.name], True)
        elif definition.indexed or storage == "link":
            wanted[f"ix_{entity.name}_{definition.name}"[:63]] = ([definition.name], False)
    for index in entity.indexes:
        wanted[index.index_name(entity.name)] = (index.fields, index.unique)
    return wanted


def live_fields(
    entity: EntityDef, columns: Mapping[str, str], field_types: FieldTypeRegistry
) -> set[str]:
    """Fields of ``entity`` whose column exists and can hold the field's storage.

    A field waiting on a destructive change (rename, narrowing type change) is
    not live: the record API leaves it out until ``jimu migrate --apply``.
    """
    live = set()
    for definition in entity.fields:
        if field_types[definition.type].virtual:
            live.add(definition.name)  # computed when read; there is no column to wait for
            continue
        declared = columns.get(definition.name)
        if declared is None:
            continue
        if field_types[definition.type].storage_for(definition) in storage_of_declared(declared):
            live.add(definition.name)
    return live


async def diff(
    db: Database,
    entities: Iterable[EntityDef],
    field_types: FieldTypeRegistry,
    *,
    dropped_entities: Iterable[str] = (),
) -> SchemaPlan:
    """Compare ``entities`` with the live database and plan the changes."""
    plan = SchemaPlan()
    entities = list(entities)
    tables = await db.table_names()
    q = db.quote
    sql_types = _SQL_TYPES[db.dialect]
    for entity in entities:
        table = table_class(entity, field_types, db.engine, db.dialect)
        if entity.name not in tables:
            statements = list(table.create_table(if_not_exists=True).ddl)
            if db.dialect == "sqlite":
                statements = [
                    s.replace(
                        '"id" INTEGER PRIMARY KEY NOT NULL',
                        '"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL',
                    )
                    for s in statements
                ]
            plan.changes.append(
                SchemaChange("create table", entity.name, None, "new entity", False, statements)
            )
            for name, (index_columns, unique) in _wanted_indexes(entity, field_types).items():
                plan.changes.append(_create_index(db, entity.name, name, index_columns, unique))
            continue

        columns = await db.table_columns(entity.name)
        renamed_sources = {f.renamed_from for f in entity.fields if f.renamed_from}
        added: set[str] = set()
        for definition in entity.fields:
            if field_types[definition.type].virtual:
                continue
            storage = field_types[definition.type].storage_for(definition)
            declared = columns.get(definition.name)
            if declared is None:
                source = definition.renamed_from
                if source and source in columns:
                    plan.changes.append(
                        SchemaChange(
                            "rename column",
                            entity.name,
                            definition.name,
                            f"rename {source!r} to {definition.name!r}",
                            True,
                            [
                                # indexes follow the column under their old names; drop them
                                # and the next sync creates the ones the metadata names
                                *_drop_indexes_on(db, await _indexes_on(db, entity.name, source)),
                                f"ALTER TABLE {q(entity.name)} RENAME COLUMN {q(source)} TO {q(definition.name)}",
                            ],
                            values_at_risk=await _count_values(db, entity.name, source),
                        )
                    )
                    continue
                added.add(definition.name)
                ddl = table.alter().add_column(definition.name, column_for(storage, db.dialect)).ddl
                plan.changes.append(
                    SchemaChange(
                        "add column",
                        entity.name,
                        definition.name,
                        f"new {definition.type} field",
                        False,
                        [ddl] if isinstance(ddl, str) else list(ddl),
                    )
                )
                continue
            held = storage_of_declared(declared)
            if storage in held:
                continue
            old = next(iter(sorted(held)), None)
            widening = old is not None and storage in WIDENINGS.get(old, frozenset())
            plan.changes.append(
                SchemaChange(
                    "change type",
                    entity.name,
                    definition.name,
                    f"{declared} -> {sql_types[storage]}"
                    + (
                        ""
                        if widening
                        else " (narrowing: values that do not convert stop the apply)"
                    ),
                    not widening,
                    _change_type_sql(db, entity.name, definition.name, storage),
                    target=storage,
                    values_at_risk=None
                    if widening
                    else await _count_values(db, entity.name, definition.name),
                )
            )
        known = set(entity.field_names) | set(SYSTEM_COLUMNS) | renamed_sources
        for column in sorted(set(columns) - known):
            plan.changes.append(
                SchemaChange(
                    "drop column",
                    entity.name,
                    column,
                    "no field uses this column any more",
                    True,
                    [
                        *_drop_indexes_on(db, await _indexes_on(db, entity.name, column)),
                        f"ALTER TABLE {q(entity.name)} DROP COLUMN {q(column)}",
                    ],
                    values_at_risk=await _count_values(db, entity.name, column),
                )
            )
        existing = await db.index_names(entity.name)
        for name, (index_columns, unique) in _wanted_indexes(entity, field_types).items():
            if name not in existing and all(c in columns or c in added for c in index_columns):
                # a column waiting on a rename gets its index once the rename is applied
                plan.changes.append(_create_index(db, entity.name, name, index_columns, unique))
    for name in dropped_entities:
        if name in tables:
            plan.changes.append(
                SchemaChange(
                    "drop table",
                    name,
                    None,
                    "the entity was deleted",
                    True,
                    [f"DROP TABLE {q(name)}"],
                    values_at_risk=await _count_rows(db, name),
                )
            )
    # junction tables of multi-link fields: created like tables, dropped only by a person
    from jimu.store.related import junction_changes

    plan.changes.extend(
        await junction_changes(
            db, entities, field_types, tables=tables, dropped_entities=dropped_entities
        )
    )
    return plan


def _create_index(
    db: Database, table: str, name: str, columns: list[str], unique: bool
) -> SchemaChange:
    q = db.quote
    sql = (
        f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {q(name)} "
        f"ON {q(table)} ({', '.join(q(c) for c in columns)})"
    )
    return SchemaChange(
        "create index", table, None, f"{'unique ' if unique else ''}index {name}", False, [sql]
    )


async def _count_values(db: Database, table: str, column: str) -> int:
    row = await db.fetch_one(f"SELECT COUNT({db.quote(column)}) AS n FROM {db.quote(table)}")
    return int(row["n"]) if row else 0


async def _count_rows(db: Database, table: str) -> int:
    row = await db.fetch_one(f"SELECT COUNT(*) AS n FROM {db.quote(table)}")
    return int(row["n"]) if row else 0


async def _indexes_on(db: Database, table: str, column: str) -> list[str]:
    """Names of the (non-primary-key) indexes of ``table`` that cover ``column``."""
    if db.dialect == "postgres":
        rows = await db.fetch(
            "SELECT DISTINCT i.relname AS name FROM pg_index x "
            "JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) "
            "WHERE t.relname = {} AND a.attname = {} AND NOT x.indisprimary "
            "AND t.relnamespace = to_regnamespace(current_schema())",
            [table, column],
        )
        return sorted(row["name"] for row in rows)
    names = []
    for name in await db.index_names(table):
        if name.startswith("sqlite_autoindex"):
            continue
        rows = await db.fetch(f"PRAGMA index_info({db.quote(name)})")
        if any(row["name"] == column for row in rows):
            names.append(name)
    return sorted(names)


def _drop_indexes_on(db: Database, names: list[str]) -> list[str]:
    return [f"DROP INDEX IF EXISTS {db.quote(name)}" for name in names]


def _change_type_sql(db: Database, table: str, column: str, storage: Storage) -> list[str]:
    q = db.quote
    new_type = _SQL_TYPES[db.dialect][storage]
    if db.dialect == "postgres":
        using = f"{q(column)}::text" + ("" if storage == "text" else f"::{new_type}")
        return [f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} TYPE {new_type} USING {using}"]
    # SQLite cannot change a column's type, and CAST turns what it cannot read into 0;
    # so the values move into a new column one by one (see _convert_sqlite_values).
    temporary = f"{column}__jimu_new"
    return [
        f"ALTER TABLE {q(table)} ADD COLUMN {q(temporary)} {new_type}",
        f"-- convert every value of {column} into {temporary}, stopping at the first that does not fit",
        f"ALTER TABLE {q(table)} DROP COLUMN {q(column)}",
        f"ALTER TABLE {q(table)} RENAME COLUMN {q(temporary)} TO {q(column)}",
    ]


class SchemaChangeFailed(JimuError):
    """A schema change cannot be applied as it stands (HTTP 409, CLI error)."""

    status = 409
    title = "Schema change failed"
    type_suffix = "schema-change-failed"


def _convert(value: object, storage: Storage) -> object:
    """A stored SQLite value converted for ``storage``; ValueError when it does not fit."""
    if storage == "text":
        return (
            value
            if isinstance(value, str)
            else json.dumps(value)
            if isinstance(value, dict | list)
            else str(value)
        )
    text = str(value).strip()
    if storage in {"integer", "link"}:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("has a fraction")
            return int(value)
        if isinstance(value, int):
            return value
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("is not a whole number")
        return int(text)
    if storage == "decimal":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError("is not a number") from None
        if not number.is_finite():
            raise ValueError("is not a finite number")
        return str(number)
    if storage == "boolean":
        lowered = text.lower()
        if lowered in {"1", "true", "yes"}:
            return 1
        if lowered in {"0", "false", "no"}:
            return 0
        raise ValueError("is not yes/no")
    if storage == "date":
        return dt.date.fromisoformat(text[:10] if "T" in text or " " in text else text).isoformat()
    if storage == "datetime":
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    if storage == "json":
        try:
            json.loads(text)
        except ValueError:
            return json.dumps(value, ensure_ascii=False)
        return text
    raise ValueError(f"cannot convert to {storage}")


async def _convert_sqlite_values(db: Database, change: SchemaChange, storage: Storage) -> None:
    table, column = change.entity, change.field or ""
    q = db.quote
    temporary = f"{column}__jimu_new"
    rows = await db.fetch(
        f"SELECT id, {q(column)} AS value FROM {q(table)} WHERE {q(column)} IS NOT NULL"
    )
    converted = []
    for row in rows:
        try:
            converted.append((_convert(row["value"], storage), row["id"]))
        except ValueError as exc:
            raise SchemaChangeFailed(
                f"cannot change {table}.{column} to {storage}: record {row['id']} holds "
                f"{row['value']!r}, which {exc}; correct or clear such values (to edit them through "
                "the API, change the field back to its old type first), then apply again"
            ) from exc
    await db.execute_many(f"UPDATE {q(table)} SET {q(temporary)} = {{}} WHERE id = {{}}", converted)


async def apply(db: Database, changes: Iterable[SchemaChange]) -> list[SchemaChange]:
    """Apply ``changes`` in one transaction; return them. Any failure applies none."""
    applied = list(changes)
    order = [
        "rename column",
        "create table",
        "add column",
        "change type",
        "drop column",
        "drop table",
        "create index",
    ]
    applied.sort(
        key=lambda change: order.index(change.kind) if change.kind in order else len(order)
    )
    async with db.transaction():
        for change in applied:
            if change.kind == "change type":
                # Indexes on the column block DROP COLUMN and pin its type; the next sync re-creates them.
                for name in await _indexes_on(db, change.entity, change.field or ""):
                    await db.execute(f"DROP INDEX IF EXISTS {db.quote(name)}")
            for statement in change.statements:
                if statement.startswith("-- convert"):
                    assert change.target is not None
                    await _convert_sqlite_values(db, change, change.target)
                    continue
                try:
                    await db.execute(statement.replace("{", "{{").replace("}", "}}"))
                except Exception as exc:
                    if type(exc).__module__.startswith(("asyncpg", "sqlite3")):
                        where = f"{change.entity}.{change.field}" if change.field else change.entity
                        raise SchemaChangeFailed(
                            f"cannot {change.kind} {where} ({change.detail}): {exc}"
                        ) from exc
                    raise
    return applied


def encode(plan: SchemaPlan) -> bytes:
    """The plan as JSON (for ``jimu migrate --plan --json``)."""
    return msgspec.json.encode([change.as_dict() for change in plan.changes])
