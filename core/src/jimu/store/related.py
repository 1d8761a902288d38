"""Values that live in rows of other tables: multi-link junction rows and child records.

A field type whose :attr:`~jimu.fields.FieldType.relation` is set has no
column in its entity's table. This module is the store's side of it:

* the **schema**: one junction table per multi-link field, created by the
  schema diff like an entity table (a safe change) and dropped only through
  ``jimu migrate --apply`` (a destructive change), with the kernel table
  ``jimu_junction`` recording which entity and field each belongs to;
* the **writes**, inside the record's transaction, after its own row: a
  multi-link's set of ids, a child table's rows (each child created, changed
  or deleted through the record repository, so its validation, computed
  fields, hooks and events apply);
* the **reads** of child rows: one query per child-table field per page;
* the **deletes**: a record's junction rows and children go with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import FieldTypeRegistry
from jimu.fields.relations import _READ_ONLY_KEYS, junction_table
from jimu.meta import EntityDef, FieldDef
from jimu.store.database import Database
from jimu.store.schema import SchemaChange

if TYPE_CHECKING:
    from jimu.store.records import EntityRuntime, RecordRepository

__all__ = [
    "JUNCTION_REGISTRY",
    "attach_children",
    "delete_related",
    "junction_changes",
    "write_related",
]

#: The kernel table naming the entity, field and target of each junction table.
JUNCTION_REGISTRY = "jimu_junction"


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# -- schema ---------------------------------------------------------------------------


def _registry_ddl() -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {JUNCTION_REGISTRY} (name TEXT PRIMARY KEY, "
        "entity TEXT NOT NULL, field TEXT NOT NULL, target TEXT NOT NULL)"
    )


def _junction_ddl(db: Database, table: str) -> list[str]:
    number = "BIGINT" if db.dialect == "postgres" else "INTEGER"
    index = f"ix_{table}"[:57] + "_target"
    return [
        f"CREATE TABLE IF NOT EXISTS {_q(table)} ({_q('source_id')} {number} NOT NULL, "
        f"{_q('target_id')} {number} NOT NULL, PRIMARY KEY ({_q('source_id')}, {_q('target_id')}))",
        f"CREATE INDEX IF NOT EXISTS {_q(index)} ON {_q(table)} ({_q('target_id')})",
    ]


async def junction_changes(
    db: Database,
    entities: Iterable[EntityDef],
    field_types: FieldTypeRegistry,
    *,
    tables: set[str],
    dropped_entities: Iterable[str] = (),
) -> list[SchemaChange]:
    """The junction tables to create (safe) and drop (destructive) for ``entities``.

    A junction whose entity is in the model but no longer has the multi-link
    field, or whose entity was deleted, is dropped once a person applies it;
    one whose entity is merely absent (its plugin is disabled) is kept.
    """
    wanted: dict[str, tuple[str, str, str]] = {}
    present: set[str] = set()
    for definition_of in entities:
        present.add(definition_of.name)
        for definition in definition_of.fields:
            kind = field_types.get(definition.type)
            if kind is not None and kind.relation == "links":
                table = junction_table(definition_of.name, definition.name)
                wanted[table] = (definition_of.name, definition.name, definition.options["target"])
    registered: dict[str, tuple[str, str]] = {}
    if JUNCTION_REGISTRY in tables:
        for row in await db.fetch(f"SELECT name, entity, field FROM {JUNCTION_REGISTRY}"):
            registered[row["name"]] = (row["entity"], row["field"])
    changes: list[SchemaChange] = []
    for table, (entity, field, target) in wanted.items():
        if table in tables and table in registered:
            continue
        changes.append(
            SchemaChange(
                "create junction",
                entity,
                field,
                f"junction table {table} for the links to {target}",
                False,
                [
                    _registry_ddl(),
                    *_junction_ddl(db, table),
                    f"INSERT INTO {JUNCTION_REGISTRY} (name, entity, field, target) VALUES "
                    f"({_literal(table)}, {_literal(entity)}, {_literal(field)}, {_literal(target)}) "
                    "ON CONFLICT (name) DO NOTHING",
                ],
            )
        )
    dropped = set(dropped_entities)
    for table, (entity, field) in sorted(registered.items()):
        if table in wanted or (entity not in present and entity not in dropped):
            continue
        count = 0
        if table in tables:
            counted = await db.fetch_one(f"SELECT COUNT(*) AS n FROM {_q(table)}")
            count = int(counted["n"]) if counted else 0
        changes.append(
            SchemaChange(
                "drop junction",
                entity,
                field,
                f"junction table {table}: no multi_link field {field} any more",
                True,
                [
                    f"DROP TABLE IF EXISTS {_q(table)}",
                    f"DELETE FROM {JUNCTION_REGISTRY} WHERE name = {_literal(table)}",
                ],
                values_at_risk=count,
            )
        )
    return changes


# -- writes -----------------------------------------------------------------------------


async def write_related(
    repo: RecordRepository,
    rt: EntityRuntime,
    record_id: int,
    values: Mapping[str, Any],
    prefix: str,
    before: Mapping[str, Any] | None,
) -> list[str]:
    """Write the related fields ``values`` of record ``record_id``; the names that changed.

    ``before`` is the stored record of an update (``None`` for a new record);
    errors name the path (``create[0].lines[2].qty``) and the caller's
    transaction rolls everything back.
    """
    changed = []
    for name, value in values.items():
        if rt.types[name].relation == "links":
            old = None if before is None else before.get(name)
            if await _write_links(repo.db, rt, name, record_id, value, old):
                changed.append(name)
        elif await _write_children(repo, rt, name, record_id, value or [], prefix, before):
            changed.append(name)
    return changed


async def _write_links(
    db: Database, rt: EntityRuntime, name: str, record_id: int, ids: Any, old: Any
) -> bool:
    """Make the junction rows of ``record_id`` the set ``ids``; whether anything changed."""
    table = _q(junction_table(rt.name, name))
    wanted, had = set(ids or ()), set(old or ())
    removed, added = sorted(had - wanted), sorted(wanted - had)
    for start in range(0, len(removed), 500):
        chunk = removed[start : start + 500]
        await db.execute(
            f"DELETE FROM {table} WHERE source_id = {{}} AND target_id IN "
            f"({', '.join('{}' for _ in chunk)})",
            [record_id, *chunk],
        )
    if added:
        await db.execute_many(
            f"INSERT INTO {table} (source_id, target_id) VALUES ({{}}, {{}})",
            [(record_id, target) for target in added],
        )
    return bool(removed or added)


def _child_setup(repo: RecordRepository, field: FieldDef) -> tuple[EntityRuntime, str, str | None]:
    child = repo.runtime(field.options["entity"])
    return child, field.options["parent_field"], field.options.get("order_field")


async def _write_children(
    repo: RecordRepository,
    rt: EntityRuntime,
    name: str,
    record_id: int,
    rows: Sequence[Mapping[str, Any]],
    prefix: str,
    before: Mapping[str, Any] | None,
) -> bool:
    """Make the children of ``record_id`` the ``rows``; whether any child changed.

    Every row is checked first (all problems of all rows in one 422), then
    rows with an ``id`` are updated, rows without are created, in list order,
    and the children not listed are deleted.
    """
    child, parent_field, order_field = _child_setup(repo, rt.fields[name])
    existing: dict[int, Any] = {}
    if before is not None:
        found = await repo.db.fetch(
            f"SELECT id, updated_at FROM {child.quoted} WHERE {_q(parent_field)} = {{}}",
            [record_id],
        )
        existing = {int(row["id"]): row["updated_at"] for row in found}
    problems: list[FieldProblem] = []
    planned: list[tuple[str, int | None, dict[str, Any]]] = []
    seen: set[int] = set()
    for index, row in enumerate(rows):
        path = f"{prefix}{name}[{index}]."
        given = dict(row)
        child_id = given.pop("id", None)
        for key in _READ_ONLY_KEYS:
            given.pop(key, None)
        for key in child.computed:
            given.pop(key, None)  # what a read returned can be sent back
        parent = given.pop(parent_field, record_id)
        if parent != record_id:
            problems.append(
                FieldProblem(
                    path + parent_field, f"is the link to this {rt.name}; it cannot point elsewhere"
                )
            )
            continue
        if order_field is not None:
            given[order_field] = index + 1
        if child_id is not None and (child_id not in existing or child_id in seen):
            problems.append(
                FieldProblem(
                    path + "id",
                    f"{child.name} {child_id} is not a row of this {rt.name}"
                    + (" (it is listed twice)" if child_id in seen else ""),
                )
            )
            continue
        try:
            if child_id is None:
                given[parent_field] = record_id
                values = repo._decode(child, given, partial=False, prefix=path)
            else:
                seen.add(child_id)
                values = repo._decode(child, given, partial=True, prefix=path)
        except ValidationFailed as exc:
            problems.extend(exc.errors)
            continue
        planned.append((path, child_id, values))
    if problems:
        raise ValidationFailed(problems)
    await repo._check_links(child, [(path, values) for path, _, values in planned])
    changed = False
    for child_id in existing:
        if child_id not in seen:  # a row left out: a hook refusing its delete names it by id
            with _at(f"{prefix}{name}[id={child_id}]."):
                await repo._delete(child, child_id)
            changed = True
    for path, child_id, values in planned:
        with _at(path):
            if child_id is None:
                await repo._insert(child, values, path)
                changed = True
            else:
                after = await repo._update(child, child_id, values, path)
                stamp = child.to_db("updated_at", after["updated_at"])
                changed = changed or stamp != existing[child_id]
    return changed


@contextmanager
def _at(path: str) -> Iterator[None]:
    """Name the child row in a refusal that names only a field (a plugin hook's)."""
    try:
        yield
    except ValidationFailed as exc:
        if all(problem["field"].startswith(path) for problem in exc.errors):
            raise
        raise ValidationFailed(
            [
                FieldProblem(
                    problem["field"]
                    if problem["field"].startswith(path)
                    else path + problem["field"],
                    problem["reason"],
                )
                for problem in exc.errors
            ]
        ) from exc


# -- reads and deletes ----------------------------------------------------------------


async def attach_children(
    repo: RecordRepository, rt: EntityRuntime, rows: Sequence[dict[str, Any]]
) -> None:
    """Put the child rows into the child-table fields of ``rows`` (those that have them).

    One query per child-table field for all of ``rows``; children are in the
    order of the ``order_field`` (when the field has one), then of their ids.
    A record without children reads ``null``.
    """
    for name in rt.children:
        wanting = [row for row in rows if name in row and row.get("id") is not None]
        if not wanting:
            continue
        child, parent_field, order_field = _child_setup(repo, rt.fields[name])
        order = f"{_q(parent_field)}"
        if order_field is not None:
            order += f", ({_q(order_field)} IS NULL), {_q(order_field)}"
        order += ", id"
        groups: dict[int, list[dict[str, Any]]] = {}
        ids = list(dict.fromkeys(int(row["id"]) for row in wanting))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            suffix = (
                f" WHERE {_q(parent_field)} IN ({', '.join('{}' for _ in chunk)}) ORDER BY {order}"
            )
            fetched = await repo.db.fetch(child.select_sql(tuple(child.all_columns), suffix), chunk)
            children = [child.read_row(found) for found in fetched]
            if child.children:
                await attach_children(repo, child, children)
            for found in children:
                groups.setdefault(int(found[parent_field]), []).append(found)
        for row in wanting:
            row[name] = groups.get(int(row["id"]))


def _junctions_to(repo: RecordRepository, target: str) -> list[str]:
    """The junction tables whose links point at records of ``target``."""
    types = repo.site.plugins.field_types
    tables = []
    for entity in repo.site.entities.values():
        for definition in entity.fields:
            kind = types.get(definition.type)
            if (
                kind is not None
                and kind.relation == "links"
                and definition.options.get("target") == target
            ):
                tables.append(junction_table(entity.name, definition.name))
    return tables


async def delete_related(repo: RecordRepository, rt: EntityRuntime, record_id: int) -> None:
    """Before record ``record_id`` is deleted: delete its children (through the repository,
    so each child's hooks run and its ``deleted`` event is written) and its junction rows,
    and the junction rows of other records that link to it."""
    for name in rt.related:
        if rt.types[name].relation == "links":
            await repo.db.execute(
                f"DELETE FROM {_q(junction_table(rt.name, name))} WHERE source_id = {{}}",
                [record_id],
            )
            continue
        child, parent_field, _ = _child_setup(repo, rt.fields[name])
        found = await repo.db.fetch(
            f"SELECT id FROM {child.quoted} WHERE {_q(parent_field)} = {{}} ORDER BY id",
            [record_id],
        )
        for row in found:
            await repo._delete(child, int(row["id"]))
    for table in _junctions_to(repo, rt.name):
        await repo.db.execute(f"DELETE FROM {_q(table)} WHERE target_id = {{}}", [record_id])
