"""Report kinds: analyses that are not one group-by, registered through a hook.

A :class:`ReportKind` reads its settings from a report's ``options`` (checked
into its own msgspec Struct), and runs as one SQL query built with the
helpers of :class:`KindRun`, which applies the report's filter, its
parameters and the user's row conditions exactly as aggregate reports do.
The kernel ships ``funnel``, ``cohort`` and ``rfm``
(:mod:`jimu.reports.builtin_kinds`); plugins add more with
``jimu_report_kinds``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import Dialect
from jimu.meta import Translatable
from jimu.meta.reports import ReportDef
from jimu.reports.params import DateRange, range_condition, value_param
from jimu.reports.paths import FieldRef, PathResolver
from jimu.reports.timebuckets import bucket_sql
from jimu.rules import RuleError, compile_sql, fields_read
from jimu.store.filters import EntityScope

if TYPE_CHECKING:
    from jimu.site import Site
    from jimu.store.records import EntityRuntime

__all__ = ["KindRun", "ReportKind", "ReportKindRegistry", "ResultColumn"]


class ResultColumn(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A column of a report's result: its key in each row, label, role and value type."""

    key: str
    label: str
    #: ``dimension`` or ``measure``
    role: str
    #: ``text``, ``int``, ``decimal``, ``float``, ``date``, ``datetime``, ``bool``
    type: str
    bucket: str | None = None


@dataclass
class KindRun:
    """One run of a report of a registered kind: what it may use to build its query."""

    site: Site
    report: ReportDef
    #: The kind's options, as its ``options_type``.
    options: Any
    #: The report's parameters, bound and typed (a ``date_range`` is a :class:`DateRange`).
    params: dict[str, Any]
    #: The user's row conditions on the source entity (``{}`` placeholders) and their values.
    row_conditions: tuple[list[str], list[Any]]
    paths: PathResolver

    @property
    def runtime(self) -> EntityRuntime:
        """The source entity's runtime (its table is ``runtime.quoted``)."""
        return self.paths.runtime

    @property
    def dialect(self) -> Dialect:
        """``sqlite`` or ``postgres``."""
        return self.site.db.dialect

    @property
    def timezone(self) -> str:
        """The site's time zone (buckets are local to it)."""
        return self.site.config.timezone

    def field(self, path: str, where: str, use: str = "measure") -> FieldRef:
        """The column behind a path of the source entity (links followed by joins)."""
        return self.paths.resolve(path, where, use)

    def condition(self, rule: Any, where: str) -> tuple[str, list[Any]]:
        """A JsonLogic rule over the source entity as an SQL condition."""
        try:
            for path in sorted(fields_read(rule, self.site.rules)):
                self.paths.resolve(path, where, "filter")
            fragment = compile_sql(
                rule, EntityScope(self.site, self.runtime), self.dialect, registry=self.site.rules
            )
        except RuleError as exc:
            raise ValidationFailed(FieldProblem(where, str(exc))) from exc
        return f"({fragment.sql})", list(fragment.params)

    def where(self) -> tuple[list[str], list[Any]]:
        """The report's filter, parameter conditions and row conditions, to AND together."""
        conditions: list[str] = []
        params: list[Any] = []
        if self.report.filter is not None:
            sql, values = self.condition(self.report.filter, "filter")
            conditions.append(sql)
            params.extend(values)
        for parameter in self.report.parameters:
            if parameter.field is None or parameter.name not in self.params:
                continue
            ref = self.field(parameter.field, f"params.{parameter.name}", "filter")
            value = self.params[parameter.name]
            if isinstance(value, DateRange):
                sql, values = range_condition(
                    ref.sql, ref.storage, value, self.dialect, self.timezone
                )
            elif isinstance(value, list):
                sql = f"{ref.sql} IN ({', '.join('{}' for _ in value)})"
                values = [value_param(ref.storage, item, self.dialect) for item in value]
            else:
                sql, values = f"{ref.sql} = {{}}", [value_param(ref.storage, value, self.dialect)]
            conditions.append(sql)
            params.extend(values)
        row_sql, row_params = self.row_conditions
        conditions.extend(f"({sql})" for sql in row_sql)
        params.extend(row_params)
        return conditions, params

    def bucket(self, ref: FieldRef, bucket: str) -> tuple[str, list[Any]]:
        """The local time bucket of a date/datetime column, as SQL and parameters.

        Its values group and sort in bucket order; on SQLite they are integer
        codes, so read them with :func:`jimu.reports.timebuckets.bucket_key`.
        """
        return bucket_sql(ref.sql, ref.storage, bucket, self.dialect, self.timezone)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Run the kind's one query."""
        return await self.site.db.fetch(sql, params)


class ReportKind:
    """Base of report kinds. Subclasses set ``name``, ``label``, ``options_type``
    and implement :meth:`check` (optional) and :meth:`run`."""

    name: ClassVar[str]
    label: ClassVar[Translatable]
    #: The msgspec Struct a report's ``options`` must decode into.
    options_type: ClassVar[type[msgspec.Struct]]
    description: ClassVar[str] = ""

    def parse_options(self, report: ReportDef) -> Any:
        """The report's options as :attr:`options_type`; a 422 naming the bad option."""
        try:
            return msgspec.convert(report.options, self.options_type, strict=False)
        except msgspec.ValidationError as exc:
            message = str(exc)
            where = "options"
            if " - at `$." in message:
                message, _, path = message.partition(" - at `$.")
                where = f"options.{path.rstrip('`')}"
            raise ValidationFailed(FieldProblem(where, message)) from exc

    def check(self, site: Site, report: ReportDef, options: Any, paths: PathResolver) -> None:
        """Check the options against the site's model (resolve the fields they name)."""

    async def run(self, run: KindRun) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        """Compute the report: its columns and rows."""
        raise NotImplementedError


class ReportKindRegistry:
    """The report kinds of one site, by name."""

    def __init__(self, kinds: Iterable[tuple[str, ReportKind]] = ()) -> None:
        self._kinds: dict[str, ReportKind] = {}
        self._owners: dict[str, str] = {}
        for owner, kind in kinds:
            self.add(kind, owner)

    def add(self, kind: ReportKind, owner: str) -> None:
        """Register ``kind``; a name taken twice (or ``aggregate``) is an error."""
        if kind.name == "aggregate" or kind.name in self._kinds:
            first = self._owners.get(kind.name, "kernel")
            raise ValueError(
                f"report kind {kind.name!r} is registered by both {first!r} and {owner!r}"
            )
        self._kinds[kind.name] = kind
        self._owners[kind.name] = owner

    def get(self, name: str) -> ReportKind | None:
        """The kind called ``name``, or ``None``."""
        return self._kinds.get(name)

    def names(self) -> list[str]:
        """Every kind's name, ``aggregate`` first."""
        return ["aggregate", *self._kinds]

    def all(self) -> list[tuple[str, ReportKind]]:
        """(owner, kind) of every registered kind."""
        return [(self._owners[name], kind) for name, kind in self._kinds.items()]
