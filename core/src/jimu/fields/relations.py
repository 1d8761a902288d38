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
  ``field``; an empty set counts 0 and sums 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from jimu.fields import Dialect, FieldType, FieldTypeRegistry, Storage, VirtualColumn
from jimu.meta import EntityDef, FieldDef, MetadataError, Translatable

__all__ = ["LookupType", "RollupType"]

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
    """An aggregate over the records of another entity that link to this one."""

    name = "rollup"
    storage: ClassVar[Storage] = "decimal"
    widget = "number"
    label: ClassVar[Translatable] = {"en": "Rollup", "zh-CN": "汇总"}
    allowed_options = frozenset({"entity", "link", "op", "field", "scale"})
    writable = False
    virtual = True

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        for option in ("entity", "link"):
            if not isinstance(field.options.get(option), str):
                raise MetadataError(
                    f"{path}.options.{option}",
                    "a rollup needs the entity it sums over and that entity's link to this one",
                )
        op = field.options.get("op", "count")
        if op not in _OPS:
            raise MetadataError(f"{path}.options.op", f"must be one of {', '.join(sorted(_OPS))}")
        if op != "count" and not isinstance(field.options.get("field"), str):
            raise MetadataError(f"{path}.options.field", f"{op} needs the field it aggregates")

    def check_in_entity(
        self, field: FieldDef, entity: EntityDef, path: str, rules: Any, model: Mapping[str, Any]
    ) -> None:
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
        source_name = field.options["entity"]
        op = field.options.get("op", "count")
        where = f"_ru.{_q(field.options['link'])} = {_q(entity.name)}.{_q('id')}"
        if op == "count":
            sql = f"(SELECT COUNT(*) FROM {_q(source_name)} AS _ru WHERE {where})"
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
        sql = f"(SELECT {aggregate} FROM {_q(source_name)} AS _ru WHERE {where})"
        if result == "decimal":
            exponent = Decimal(1).scaleb(-int(field.options.get("scale", 2)))
            return VirtualColumn(sql, result, lambda value: Decimal(str(value)).quantize(exponent))
        if result == "integer":
            return VirtualColumn(sql, result, int)
        return VirtualColumn(sql, result, source_type.reader(source_field, dialect))
