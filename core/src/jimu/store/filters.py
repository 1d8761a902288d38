"""JsonLogic filters over an entity, compiled to SQL by the rule engine.

:class:`EntityScope` tells the rule compiler which columns a rule may read:
the entity's live fields and system columns, and the fields of a linked
record one hop away (``customer.city``), as a correlated subquery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jimu.errors import FieldProblem, ValidationFailed
from jimu.rules import RuleError, SqlColumn, compile_sql
from jimu.store.records import EntityRuntime

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["EntityScope", "compile_filter"]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class EntityScope:
    """Resolves rule variables to columns of one entity (and its links, one hop)."""

    def __init__(self, site: Site, runtime: EntityRuntime) -> None:
        self.site = site
        self.runtime = runtime

    def resolve(self, path: str) -> SqlColumn | None:
        """The column behind ``path`` (``"city"`` or ``"customer.city"``), or ``None``."""
        rt = self.runtime
        head, _, rest = path.partition(".")
        storage = rt.column_storage(head)
        if storage is None:
            return None
        virtual = rt.virtual.get(head)
        column = virtual.sql if virtual is not None else f"{rt.quoted}.{_quote(head)}"
        if not rest:
            return SqlColumn(expr=column, type=storage)
        if storage != "link" or "." in rest:
            return None
        target_name = rt.links[head]
        try:
            target = self.site.runtime(target_name)
        except Exception:
            return None
        target_storage = target.column_storage(rest)
        if target_storage is None or rest in target.virtual:
            return None  # one hop into stored fields only
        alias = _quote(f"_link_{head}")
        expr = (
            f"(SELECT {alias}.{_quote(rest)} FROM {target.quoted} AS {alias} "
            f"WHERE {alias}.{_quote('id')} = {column})"
        )
        return SqlColumn(expr=expr, type=target_storage)


def compile_filter(site: Site, runtime: EntityRuntime, rule: Any) -> tuple[list[str], list[Any]]:
    """SQL conditions (``{}`` placeholders) and parameters for a JsonLogic ``rule``.

    A rule that reads an unknown field, or that cannot run in the database,
    is a 422 naming the part of the rule at fault.
    """
    try:
        fragment = compile_sql(
            rule, EntityScope(site, runtime), site.db.dialect, registry=site.rules
        )
    except RuleError as exc:
        raise ValidationFailed(FieldProblem("filter", str(exc))) from exc
    return [f"({fragment.sql})"], list(fragment.params)
