"""Values read across records: ``lookup`` (a field of the linked record) and ``rollup``
(count, sum, average, minimum or maximum over the records that link here).

Both are *virtual*: they have no column. The kernel computes them with a
correlated subquery in the same SELECT that reads the record, so they are
always current, and filter and sort in SQL like stored fields. They cannot be
written.

* ``lookup``: ``{"link": "customer", "field": "city"}`` — the ``city`` of the
  record this entity's ``customer`` link points to.
* ``rollup``: ``{"entity": "sales_order", "link": "customer", "op": "sum",
  "field": "amount"}`` — the sum of ``amount`` over the ``sales_order``
  records whose ``customer`` link points to this record (``count`` needs no
  ``field``; an empty set counts 0 and sums 0). Without ``entity``, ``link``
  names a ``multi_link`` or ``child_table`` field of this entity and the
  rollup runs over the records it holds: ``{"link": "lines", "op": "sum",
  "field": "amount"}``.

Two more types hold values that live in rows of other tables (their
:attr:`~jimu.fields.FieldType.relation`); the record repository writes them
with the record, in its transaction (:mod:`jimu.store.related`):

* ``multi_link``: ``{"target": "tag"}`` — many records of ``tag`` (many to
  many), kept in a junction table the kernel creates and drops with the field.
  The API value is the sorted list of the linked ids (``null`` when there are
  none).
* ``child_table``: ``{"entity": "order_line", "parent_field": "order"}`` —
  the ``order_line`` records whose ``order`` link points here, created,
  changed and deleted through this record (one to many). The API value is the
  list of those records (``null`` when there are none).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

import msgspec

from jimu.fields import Dialect, FieldType, FieldTypeRegistry, Storage, VirtualColumn
from jimu.fields.cells import CellError
from jimu.fields.common import check_int_option, split_list
from jimu.meta import EntityDef, FieldDef, MetadataError, Translatable

__all__ = [
    "ChildTableType",
    "LookupType",
    "MultiLinkType",
    "RollupType",
    "child_link",
    "junction_table",
]

_OPS = {"count", "sum", "avg", "min", "max"}


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _stored_field(
    model: Mapping[str, EntityDef], registry: FieldTypeRegistry, entity: str, name: str, path: str
) -> tuple[FieldDef, FieldType]:
    target = model.get(entity)
    if target is None:
        raise MetadataError(path, f"unknown entity {entity!r}")
    field = target.field(name)
    if field is None:
        raise MetadataError(path, f"entity {entity!r} has no field {name!r}")
    field_type = registry.get(field.type)
    if field_type is None or field_type.virtual or not field_type.readable:
        raise MetadataError(path, f"{entity}.{name} is not a stored field that can be read")
    return field, field_type


class LookupType(FieldType):
    """A field of the record a link points to (options ``link`` and ``field``)."""

    name = "lookup"
    storage: ClassVar[Storage] = "text"
    widget = "lookup"
    label: ClassVar[Translatable] = {"en": "Lookup", "zh-CN": "引用字段"}
    allowed_options = frozenset({"link", "field"})
    writable = False
    virtual = True

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        for option in ("link", "field"):
            if not isinstance(field.options.get(option), str):
                raise MetadataError(
                    f"{path}.options.{option}",
                    "a lookup needs the name of its link and of the field it shows",
                )

    def _target(
        self,
        field: FieldDef,
        entity: EntityDef,
        model: Mapping[str, EntityDef],
        registry: FieldTypeRegistry,
        path: str,
    ) -> tuple[EntityDef, FieldDef, FieldType]:
        link = entity.field(field.options["link"])
        if link is None or link.type != "link":
            raise MetadataError(
                f"{path}.options.link", f"{entity.name} has no link field {field.options['link']!r}"
            )
        target_name = link.options["target"]
        target_field, target_type = _stored_field(
            model, registry, target_name, field.options["field"], f"{path}.options.field"
        )
        return model[target_name], target_field, target_type

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        link = entity.field(field.options["link"])
        if link is None or link.type != "link":
            raise MetadataError(
                f"{path}.options.link", f"{entity.name} has no link field {field.options['link']!r}"
            )
        target = model.get(link.options["target"])
        if target is None or target.field(field.options["field"]) is None:
            raise MetadataError(
                f"{path}.options.field",
                f"entity {link.options['target']!r} has no field {field.options['field']!r}",
            )

    def virtual_column(
        self,
        field: FieldDef,
        entity: EntityDef,
        model: Mapping[str, Any],
        registry: FieldTypeRegistry,
        dialect: Dialect,
    ) -> VirtualColumn:
        target, target_field, target_type = self._target(field, entity, model, registry, "options")
        sql = (
            f"(SELECT _lk.{_q(target_field.name)} FROM {_q(target.name)} AS _lk "
            f"WHERE _lk.{_q('id')} = {_q(entity.name)}.{_q(field.options['link'])})"
        )
        return VirtualColumn(
            sql, target_type.storage_for(target_field), target_type.reader(target_field, dialect)
        )


class RollupType(FieldType):
    """An aggregate over the records of another entity that link to this one, or over
    the records a multi-link or child-table field of this entity holds."""

    name = "rollup"
    storage: ClassVar[Storage] = "decimal"
    widget = "number"
    label: ClassVar[Translatable] = {"en": "Rollup", "zh-CN": "汇总"}
    allowed_options = frozenset({"entity", "link", "op", "field", "scale"})
    writable = False
    virtual = True

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        if not isinstance(field.options.get("link"), str):
            raise MetadataError(
                f"{path}.options.link",
                "a rollup needs the link it follows: another entity's link to this one "
                "(with entity), or a multi_link or child_table field of this entity",
            )
        if "entity" in field.options and not isinstance(field.options["entity"], str):
            raise MetadataError(f"{path}.options.entity", "must be the name of an entity")
        op = field.options.get("op", "count")
        if op not in _OPS:
            raise MetadataError(f"{path}.options.op", f"must be one of {', '.join(sorted(_OPS))}")
        if op != "count" and not isinstance(field.options.get("field"), str):
            raise MetadataError(f"{path}.options.field", f"{op} needs the field it aggregates")

    def _over(self, field: FieldDef, entity: EntityDef, model: Mapping[str, Any], path: str) -> str:
        """The entity whose records the rollup runs over (checking the link to them)."""
        if "entity" in field.options:
            source = model.get(field.options["entity"])
            if source is None:
                raise MetadataError(
                    f"{path}.options.entity", f"unknown entity {field.options['entity']!r}"
                )
            link = source.field(field.options["link"])
            if link is None or link.type != "link" or link.options.get("target") != entity.name:
                raise MetadataError(
                    f"{path}.options.link",
                    f"{source.name}.{field.options['link']} is not a link to {entity.name}",
                )
            return str(source.name)
        holder = entity.field(field.options["link"])
        if holder is None or holder.type not in ("multi_link", "child_table"):
            raise MetadataError(
                f"{path}.options.link",
                f"{entity.name} has no multi_link or child_table field {field.options['link']!r} "
                "(give entity to roll up the records of another entity that link here)",
            )
        key = "target" if holder.type == "multi_link" else "entity"
        return str(holder.options[key])

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        source_name = self._over(field, entity, model, path)
        source = model.get(source_name)
        if source is None:
            raise MetadataError(f"{path}.options.link", f"unknown entity {source_name!r}")
        if (
            field.options.get("op", "count") != "count"
            and source.field(field.options["field"]) is None
        ):
            raise MetadataError(
                f"{path}.options.field",
                f"entity {source.name!r} has no field {field.options['field']!r}",
            )

    def virtual_column(
        self,
        field: FieldDef,
        entity: EntityDef,
        model: Mapping[str, Any],
        registry: FieldTypeRegistry,
        dialect: Dialect,
    ) -> VirtualColumn:
        source_name = self._over(field, entity, model, "options")
        op = field.options.get("op", "count")
        this_id = f"{_q(entity.name)}.{_q('id')}"
        holder = None if "entity" in field.options else entity.field(field.options["link"])
        if holder is not None and holder.type == "multi_link":
            rows = (
                f"{_q(source_name)} AS _ru JOIN {_q(junction_table(entity.name, holder.name))} "
                f"AS _jn ON _jn.{_q('target_id')} = _ru.{_q('id')}"
            )
            where = f"_jn.{_q('source_id')} = {this_id}"
        else:
            link = field.options["link"]
            if holder is not None:
                if source_name not in model:
                    raise MetadataError("options.link", f"unknown entity {source_name!r}")
                link = child_link(holder, model[source_name], entity.name, "options")
            rows = f"{_q(source_name)} AS _ru"
            where = f"_ru.{_q(link)} = {this_id}"
        if op == "count":
            sql = f"(SELECT COUNT(*) FROM {rows} WHERE {where})"
            return VirtualColumn(sql, "integer", int)
        source_field, source_type = _stored_field(
            model, registry, source_name, field.options["field"], "options.field"
        )
        storage = source_type.storage_for(source_field)
        column = f"_ru.{_q(source_field.name)}"
        if op in {"sum", "avg"}:
            if storage not in {"integer", "decimal"}:
                raise MetadataError("options.field", f"cannot {op} a {storage} field")
            aggregate = f"COALESCE(SUM({column}), 0)" if op == "sum" else f"AVG({column})"
            result: Storage = "decimal" if (op == "avg" or storage == "decimal") else "integer"
        else:
            if storage in {"json", "link"}:
                raise MetadataError("options.field", f"cannot take the {op} of a {storage} field")
            aggregate = f"{op.upper()}({column})"
            result = storage
        sql = f"(SELECT {aggregate} FROM {rows} WHERE {where})"
        if result == "decimal":
            exponent = Decimal(1).scaleb(-int(field.options.get("scale", 2)))
            return VirtualColumn(sql, result, lambda value: Decimal(str(value)).quantize(exponent))
        if result == "integer":
            return VirtualColumn(sql, result, int)
        return VirtualColumn(sql, result, source_type.reader(source_field, dialect))


# -- values in rows of other tables -----------------------------------------------------

_JUNCTION_PREFIX = "jimu_link_"


def junction_table(entity: str, field: str) -> str:
    """The name of the junction table that holds multi-link ``field`` of ``entity``.

    ``jimu_link_<entity>__<field>``; when that is longer than PostgreSQL's 63
    characters or could be read two ways (a ``__`` in a name), the names are
    shortened and a digest of both is appended.
    """
    name = f"{_JUNCTION_PREFIX}{entity}__{field}"
    if len(name) <= 63 and "__" not in entity and "__" not in field:
        return name
    digest = hashlib.sha1(f"{entity}.{field}".encode()).hexdigest()[:10]
    return f"{_JUNCTION_PREFIX}{entity[:20]}__{field[:20]}_{digest}"


def child_link(field: FieldDef, child: EntityDef, parent: str, path: str) -> str:
    """The link field of ``child`` that points at the parent record of a child-table field."""
    name = field.options.get("parent_field")
    link = child.field(name) if isinstance(name, str) else None
    if link is None or link.type != "link" or link.options.get("target") != parent:
        raise MetadataError(
            f"{path}.options.parent_field",
            f"{child.name}.{name} is not a link to {parent}; "
            f"a child table needs the link of {child.name} that points back at {parent}",
        )
    return str(name)


def _json_list(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _sorted_ids(value: Any) -> Any:
    return sorted(_json_list(value))


def _aggregate_json(dialect: Dialect, item: str, table: str, alias: str, where: str) -> str:
    """SQL for the JSON array of ``item`` over the rows of ``table`` (as ``alias``) that
    match ``where``; NULL when there are none."""
    aggregate = "jsonb_agg" if dialect == "postgres" else "json_group_array"
    sql = f"(SELECT {aggregate}({item}) FROM {_q(table)} AS {alias} WHERE {where})"
    return sql if dialect == "postgres" else f"NULLIF({sql}, '[]')"


_DIGITS = re.compile(r"^\d+$")


class MultiLinkType(FieldType):
    """Links to any number of records of another entity (many to many).

    Kept in a junction table the kernel manages (:func:`junction_table`); the
    API value is the sorted list of the linked ids, ``null`` for none. A write
    replaces the whole set: repeats collapse, an unknown id is a 422 naming the
    field and the id, and a text item is the title (``title_field``, else
    ``name``) of a target record, as imports write them.
    Filter with ``in`` (``{"in": [7, {"var": "tags"}]}``) and ``missing``.
    """

    name = "multi_link"
    storage: ClassVar[Storage] = "json"
    widget = "multi_link"
    label: ClassVar[Translatable] = {"en": "Multiple links", "zh-CN": "多项关联"}
    allowed_options = frozenset({"target", "max_count"})
    virtual = True
    resolves = True
    relation: ClassVar[Literal["links", "children"] | None] = "links"

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        if not isinstance(field.options.get("target"), str):
            raise MetadataError(
                f"{path}.options.target", "a multi_link field needs the name of its target entity"
            )
        check_int_option(field, path, "max_count", 1000, 1, 10_000)
        if field.unique or field.indexed:
            raise MetadataError(
                f"{path}.unique" if field.unique else f"{path}.indexed",
                "a multi_link field has no column to index; its junction table is indexed",
            )

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        if field.options["target"] not in model:
            raise MetadataError(
                f"{path}.options.target", f"unknown entity {field.options['target']!r}"
            )
        if field.renamed_from is not None:
            raise MetadataError(
                f"{path}.renamed_from",
                "a multi_link field cannot be renamed; add a new field and copy the links",
            )

    def input_type(self, field: FieldDef) -> Any:
        item = Annotated[int, msgspec.Meta(ge=1)] | Annotated[str, msgspec.Meta(max_length=255)]
        return Annotated[
            list[item],
            msgspec.Meta(max_length=int(field.options.get("max_count", 1000))),
        ]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if any(isinstance(item, str) and not item.strip() for item in value):
            return "holds a blank name; give record ids (or their names)"
        if field.required and not value:
            return "needs at least one linked record"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        ids = sorted({item for item in value if isinstance(item, int)})
        names = list(dict.fromkeys(item.strip() for item in value if isinstance(item, str)))
        return [*ids, *names]

    async def resolve(
        self, field: FieldDef, items: Sequence[tuple[str, Any]], site: Any
    ) -> list[Any]:
        """Names become ids, every id must be a record of the target; ``[]`` becomes null."""
        from jimu.errors import FieldProblem, ValidationFailed

        target = site.runtime(field.options["target"])
        ids = sorted({item for _, value in items for item in value if isinstance(item, int)})
        names = sorted({item for _, value in items for item in value if isinstance(item, str)})
        existing: set[int] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await site.db.fetch(
                f"SELECT id FROM {target.quoted} WHERE id IN ({', '.join('{}' for _ in chunk)})",
                chunk,
            )
            existing.update(int(row["id"]) for row in rows)
        title = _title_field(target)
        by_name: dict[str, list[int]] = {}
        if names and title is not None:
            for start in range(0, len(names), 500):
                part = names[start : start + 500]
                rows = await site.db.fetch(
                    f"SELECT id, {_q(title)} AS title FROM {target.quoted} "
                    f"WHERE {_q(title)} IN ({', '.join('{}' for _ in part)})",
                    part,
                )
                for row in rows:
                    by_name.setdefault(row["title"], []).append(int(row["id"]))
        problems: list[FieldProblem] = []
        resolved: list[Any] = []
        for path, value in items:
            chosen: set[int] = set()
            for item in value:
                if isinstance(item, int):
                    if item in existing:
                        chosen.add(item)
                    else:
                        problems.append(
                            FieldProblem(path, f"no {target.name} record with id {item}")
                        )
                    continue
                if title is None:
                    problems.append(
                        FieldProblem(
                            path,
                            f"{item!r} is not a record id, and {target.name} has no text "
                            "title field to find records by name; give ids",
                        )
                    )
                    continue
                found = by_name.get(item, [])
                if len(found) == 1:
                    chosen.add(found[0])
                elif not found:
                    problems.append(
                        FieldProblem(path, f"no {target.name} record has {title} {item!r}")
                    )
                else:
                    problems.append(
                        FieldProblem(
                            path,
                            f"{len(found)} {target.name} records have {title} {item!r}; "
                            "give the id of the one you mean",
                        )
                    )
            resolved.append(sorted(chosen) or None)
        if problems:
            raise ValidationFailed(problems)
        return resolved

    def virtual_column(
        self,
        field: FieldDef,
        entity: EntityDef,
        model: Mapping[str, Any],
        registry: FieldTypeRegistry,
        dialect: Dialect,
    ) -> VirtualColumn:
        table = junction_table(entity.name, field.name)
        where = f"_ml.{_q('source_id')} = {_q(entity.name)}.{_q('id')}"
        sql = _aggregate_json(dialect, f"_ml.{_q('target_id')}", table, "_ml", where)
        return VirtualColumn(sql, "json", _sorted_ids)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        """``"3, 7"``, ``"vip、老客"`` (titles), a number, or a JSON array."""
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a record id or name")
        if isinstance(cell, int):
            return [cell]
        if isinstance(cell, float):
            if not cell.is_integer():
                raise CellError(f"{cell!r} is not a record id")
            return [int(cell)]
        if isinstance(cell, list | tuple):
            return list(cell)
        text = str(cell).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise CellError(f"{cell!r} is not a JSON array") from None
            if not isinstance(items, list):
                raise CellError(f"{cell!r} is not a JSON array")
            return items
        return [int(item) if _DIGITS.match(item) else item for item in split_list(text)]

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        """The ids, comma-separated: ``"3, 7"`` (imports read them back)."""
        if not value:
            return None
        return ", ".join(str(item) for item in value)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("in", "missing")


def _title_field(target: Any) -> str | None:
    """The text field people know a record of ``target`` (a runtime) by, if any."""
    title = target.entity.title_field or ("name" if "name" in target.fields else None)
    if title is None or target.storage.get(title) != "text" or title in target.virtual:
        return None
    return str(title)


#: Keys of a child row as read that a write of the rows ignores (what a GET gave can be sent back).
_READ_ONLY_KEYS = ("created_at", "updated_at")


class ChildTableType(FieldType):
    """Records of another entity edited with this one (one to many): order lines.

    Options: ``entity`` (the child entity), ``parent_field`` (its link back to
    this entity), ``order_field`` (an integer field of the child the kernel
    sets to each row's position, 1, 2, ...), ``max_rows`` (default 1000).
    A write gives the whole list: a row with an ``id`` changes that child, a
    row without one creates a child, and a child left out is deleted.
    """

    name = "child_table"
    storage: ClassVar[Storage] = "json"
    widget = "child_table"
    label: ClassVar[Translatable] = {"en": "Child table", "zh-CN": "子表"}
    allowed_options = frozenset({"entity", "parent_field", "order_field", "max_rows"})
    virtual = True
    resolves = True
    relation: ClassVar[Literal["links", "children"] | None] = "children"

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        for option in ("entity", "parent_field"):
            if not isinstance(field.options.get(option), str):
                raise MetadataError(
                    f"{path}.options.{option}",
                    "a child table needs its child entity (entity) and that entity's link "
                    "back to this one (parent_field)",
                )
        if "order_field" in field.options and not isinstance(field.options["order_field"], str):
            raise MetadataError(f"{path}.options.order_field", "must be the name of a field")
        check_int_option(field, path, "max_rows", 1000, 1, 100_000)
        if field.unique or field.indexed or field.default is not None:
            raise MetadataError(
                path, "a child table has no column: it cannot be unique, indexed or defaulted"
            )

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
        child = model.get(field.options["entity"])
        if child is None:
            raise MetadataError(
                f"{path}.options.entity", f"unknown entity {field.options['entity']!r}"
            )
        if child.name == entity.name:
            raise MetadataError(f"{path}.options.entity", "an entity cannot be its own child")
        child_link(field, child, entity.name, path)
        order = field.options.get("order_field")
        if order is not None:
            order_def = child.field(order)
            if order_def is None or order_def.type != "integer":
                raise MetadataError(
                    f"{path}.options.order_field", f"{child.name}.{order} is not an integer field"
                )

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[
            list[dict[str, Any]],
            msgspec.Meta(max_length=int(field.options.get("max_rows", 1000))),
        ]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if field.required and not value:
            return "needs at least one row"
        return None

    async def resolve(
        self, field: FieldDef, items: Sequence[tuple[str, Any]], site: Any
    ) -> list[Any]:
        """Check each row's ``id`` and fields against the child entity before anything is written."""
        from jimu.errors import FieldProblem, ValidationFailed

        child = site.runtime(field.options["entity"])
        problems: list[FieldProblem] = []
        for path, rows in items:
            for index, row in enumerate(rows):
                where = f"{path}[{index}]."
                child_id = row.get("id")
                if child_id is not None and (
                    not isinstance(child_id, int) or isinstance(child_id, bool) or child_id < 1
                ):
                    problems.append(
                        FieldProblem(where + "id", "must be the id of a row, or left out")
                    )
                given = {
                    key: item
                    for key, item in row.items()
                    if key not in ("id", *_READ_ONLY_KEYS) and key not in child.computed
                }
                if "order_field" in field.options:
                    given[field.options["order_field"]] = index + 1
                if child_id is None:  # a new row: the link back is the kernel's to set
                    given.setdefault(field.options["parent_field"], 1)
                try:
                    site.records.decode_input(child, given, partial=child_id is not None)
                except ValidationFailed as exc:
                    problems.extend(
                        FieldProblem(where + problem["field"], problem["reason"])
                        for problem in exc.errors
                    )
        if problems:
            raise ValidationFailed(problems)
        return [rows for _, rows in items]

    def virtual_column(
        self,
        field: FieldDef,
        entity: EntityDef,
        model: Mapping[str, Any],
        registry: FieldTypeRegistry,
        dialect: Dialect,
    ) -> VirtualColumn:
        child = model.get(field.options["entity"])
        if child is None:
            raise MetadataError("options.entity", f"unknown entity {field.options['entity']!r}")
        link = child_link(field, child, entity.name, "options")
        where = f"_ct.{_q(link)} = {_q(entity.name)}.{_q('id')}"
        item = (
            f"jsonb_build_object('id', _ct.{_q('id')})"
            if dialect == "postgres"
            else f"json_object('id', _ct.{_q('id')})"
        )
        # What filters see: null without rows, else one object per row (the rows
        # themselves are read with one query per page, see jimu.store.related)
        return VirtualColumn(
            _aggregate_json(dialect, item, child.name, "_ct", where), "json", _json_list
        )

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        """The rows as a JSON array of objects, as exports write them; blank is no rows."""
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        rows: Any = cell
        if isinstance(cell, str):
            try:
                rows = json.loads(cell)
            except ValueError:
                rows = None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise CellError(
                "child rows are imported as a JSON array of objects, as exports write them "
                '([{"sku": "A1", "qty": 2}]); import the child entity on its own for more'
            )
        return rows

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        """The rows as a JSON array of their own fields (no ids, times or link back)."""
        if not value:
            return None
        left_out = {
            "id",
            *_READ_ONLY_KEYS,
            field.options["parent_field"],
            field.options.get("order_field"),
        }
        rows = [{key: item for key, item in row.items() if key not in left_out} for row in value]
        return msgspec.json.encode(rows).decode()

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("missing",)
