"""Field paths of a report (``amount``, ``customer.city``) resolved to SQL over joins.

A report reads its source entity's table under its own name and follows link
fields with ``LEFT JOIN``s, one per distinct link path, so a dimension like
``customer.city`` costs one join however often it is used. Every field a
report reads is remembered with what it is used for, so the permission check
can name the first one the user may not read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jimu.errors import FieldProblem, NotFound, ValidationFailed
from jimu.fields import Storage

if TYPE_CHECKING:
    from jimu.site import Site
    from jimu.store.records import EntityRuntime

__all__ = ["FieldRef", "PathResolver", "quote"]

#: Links a path may follow (``order.customer.store.name`` is two).
MAX_HOPS = 3


def quote(identifier: str) -> str:
    """A quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class FieldRef:
    """A resolved path: its SQL expression, storage kind, and the field behind it."""

    path: str
    sql: str
    storage: Storage
    entity: str
    field: str
    #: The field type's name (``None`` for the system columns ``id``, ``created_at``...).
    type_name: str | None
    #: Digits after the point of a decimal field.
    scale: int | None = None


@dataclass
class PathResolver:
    """Resolves paths from one source entity, collecting the joins they need."""

    site: Site
    runtime: EntityRuntime
    joins: dict[str, str] = field(default_factory=dict)
    #: entity -> use ("group by", "measure", "filter") -> fields read
    reads: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )

    def resolve(self, path: str, where: str, use: str) -> FieldRef:
        """The column behind ``path``; a 422 naming ``where`` when there is none."""
        parts = path.split(".")
        if not path or any(not part for part in parts):
            raise ValidationFailed(FieldProblem(where, f"{path!r} is not a field path"))
        if len(parts) > MAX_HOPS + 1:
            raise ValidationFailed(
                FieldProblem(where, f"{path!r} follows more than {MAX_HOPS} links")
            )
        runtime = self.runtime
        table = runtime.quoted
        alias_path: list[str] = []
        for position, name in enumerate(parts):
            storage = runtime.column_storage(name)
            if storage is None:
                raise ValidationFailed(
                    FieldProblem(where, f"unknown field {name!r} of {runtime.name}")
                )
            self.reads[runtime.name][use].add(name)
            last = position == len(parts) - 1
            if name in runtime.virtual:
                if table != runtime.quoted:
                    raise ValidationFailed(
                        FieldProblem(
                            where,
                            f"{name!r} of {runtime.name} is computed (lookup or rollup); "
                            "reports read computed fields of the source entity only",
                        )
                    )
                sql = runtime.virtual[name].sql
            else:
                sql = f"{table}.{quote(name)}"
            if last:
                definition = runtime.fields.get(name)
                scale = None
                if storage == "decimal" and definition is not None:
                    scale = int(definition.options.get("scale", 2))
                return FieldRef(
                    path=path,
                    sql=sql,
                    storage=storage,
                    entity=runtime.name,
                    field=name,
                    type_name=definition.type if definition is not None else None,
                    scale=scale,
                )
            if storage != "link":
                raise ValidationFailed(
                    FieldProblem(
                        where,
                        f"{name!r} of {runtime.name} is not a link; {path!r} cannot follow it",
                    )
                )
            alias_path.append(name)
            try:
                target = self.site.runtime(runtime.links[name])
            except NotFound as exc:
                raise ValidationFailed(FieldProblem(where, exc.detail)) from exc
            alias = quote("j_" + "__".join(alias_path))
            if alias not in self.joins:
                self.joins[alias] = (
                    f" LEFT JOIN {target.quoted} AS {alias} ON {alias}.{quote('id')} = {sql}"
                )
            runtime, table = target, alias
        raise AssertionError("unreachable: the loop returns on the last part")

    def join_sql(self) -> str:
        """The ``LEFT JOIN`` clauses of every link path resolved so far."""
        return "".join(self.joins.values())
