"""The report engine of a site: checks definitions, runs them, shapes the result.

:class:`ReportEngine` holds the site's chart types and report kinds (the
kernel's, then those of the ``jimu_chart_types`` and ``jimu_report_kinds``
hooks). :meth:`ReportEngine.run` applies the permissions of the acting
principal (:func:`jimu.auth.current_access`): the user must be allowed to
``report`` on the source entity, every field the report reads must be
readable (a hidden field cannot be grouped by, measured or filtered on), and
the user's row conditions narrow the rows. Then it runs one SQL query and
shapes its rows: time buckets as labels, empty buckets filled, the previous
period beside each row, running totals, drill-down targets.
"""

from __future__ import annotations

import datetime as dt
import decimal
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from jimu.auth import current_access
from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import reader_for_storage
from jimu.meta import translate
from jimu.meta.reports import ChartDef, DrillDef, ReportDef
from jimu.reports.builtin_kinds import BUILTIN_KINDS
from jimu.reports.charts import BUILTIN_CHART_TYPES, ChartType, ChartTypeRegistry
from jimu.reports.compiler import (
    ZERO_WHEN_EMPTY,
    CompiledReport,
    DimensionPlan,
    MeasurePlan,
    check_report,
    compile_report,
)
from jimu.reports.kinds import KindRun, ReportKind, ReportKindRegistry, ResultColumn
from jimu.reports.params import DateRange, bind_parameters
from jimu.reports.paths import PathResolver
from jimu.reports.timebuckets import (
    BucketKey,
    bucket_bounds,
    bucket_end,
    bucket_label,
    bucket_series,
    shift_bucket,
)

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["ReportEngine", "ReportResult"]


class ReportResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a report run returns: its columns and rows, ready for a chart.

    ``cached`` (``{"computed_at", "age_seconds"}``) is set when the rows come
    from the result cache of a heavy report.
    """

    report: str
    kind: str
    chart: ChartDef
    columns: list[ResultColumn]
    rows: list[dict[str, Any]]
    params: dict[str, Any]
    computed_at: dt.datetime
    label: str | None = None
    drill: DrillDef | None = None
    cached: dict[str, Any] | None = None


_ENGINES: weakref.WeakKeyDictionary[Site, tuple[Any, ReportEngine]] = weakref.WeakKeyDictionary()


class ReportEngine:
    """Runs a site's reports; one per site and set of loaded plugins (see :meth:`of`)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.charts = ChartTypeRegistry(("kernel", chart) for chart in BUILTIN_CHART_TYPES)
        site.plugins.register_typed("jimu_chart_types", ChartType, self.charts.add)
        self.kinds = ReportKindRegistry(("kernel", kind) for kind in BUILTIN_KINDS)
        site.plugins.register_typed("jimu_report_kinds", ReportKind, self.kinds.add)

    @classmethod
    def of(cls, site: Site) -> ReportEngine:
        """The engine of ``site``, rebuilt when its plugins change."""
        cached = _ENGINES.get(site)
        if cached is not None and cached[0] is site.plugins:
            return cached[1]
        engine = cls(site)
        _ENGINES[site] = (site.plugins, engine)
        return engine

    # -- checking ------------------------------------------------------------

    def _kind(self, report: ReportDef) -> ReportKind | None:
        if report.kind == "aggregate":
            return None
        kind = self.kinds.get(report.kind)
        if kind is None:
            raise ValidationFailed(
                FieldProblem(
                    "kind",
                    f"unknown report kind {report.kind!r} (known: {', '.join(self.kinds.names())})",
                )
            )
        return kind

    def check(self, report: ReportDef) -> None:
        """Refuse (422) a report that does not fit the site's model or its chart."""
        if not report.name or len(report.name) > 100:
            raise ValidationFailed(FieldProblem("name", "must be 1 to 100 characters"))
        try:
            self.site.runtime(report.entity)
        except Exception as exc:
            raise ValidationFailed(
                FieldProblem("entity", f"unknown entity {report.entity!r}")
            ) from exc
        if report.cache_seconds is not None and report.cache_seconds < 1:
            raise ValidationFailed(FieldProblem("cache_seconds", "must be at least 1"))
        kind = self._kind(report)
        if kind is None:
            check_report(self.site, report)
            self.charts.check(
                report.chart.type,
                report.chart.options,
                kind="aggregate",
                dimensions=len(report.dimensions),
                measures=len(report.measures),
                time_first=bool(report.dimensions and report.dimensions[0].bucket),
            )
        else:
            paths = PathResolver(self.site, self.site.runtime(report.entity))
            kind.check(self.site, report, kind.parse_options(report), paths)
            self.charts.check(
                report.chart.type,
                report.chart.options,
                kind=report.kind,
                dimensions=0,
                measures=0,
                time_first=False,
            )
        if report.drill is not None and report.drill.report is None and not report.drill.list:
            raise ValidationFailed(FieldProblem("drill", "name a report or set list to true"))

    # -- running ----------------------------------------------------------------

    async def run(self, report: ReportDef, params: Mapping[str, Any] | None = None) -> ReportResult:
        """Run ``report`` for the acting principal with the given parameter values."""
        self.check(report)
        values = bind_parameters(report.parameters, params or {})
        access = current_access()
        access.require(report.entity, "report")
        runtime = self.site.runtime(report.entity)
        row_conditions = access.row_filter(self.site, runtime, "report")
        kind = self._kind(report)
        if kind is None:
            compiled = compile_report(self.site, report, values, row_conditions)
            self._check_reads(report.entity, compiled.reads)
            rows = await self.site.db.fetch(compiled.sql, compiled.params)
            columns, shaped = _Shaper(self.site, report, compiled, values).shape(rows)
        else:
            paths = PathResolver(self.site, runtime)
            options = kind.parse_options(report)
            kind.check(self.site, report, options, paths)
            run = KindRun(self.site, report, options, values, row_conditions, paths)
            columns, shaped = await kind.run(run)
            self._check_reads(
                report.entity, {entity: dict(uses) for entity, uses in paths.reads.items()}
            )
        return ReportResult(
            report=report.name,
            kind=report.kind,
            label=translate(report.label, self.site.config.locale) if report.label else None,
            chart=report.chart,
            columns=columns,
            rows=shaped,
            params={
                name: value.as_json() if isinstance(value, DateRange) else value
                for name, value in values.items()
            },
            computed_at=dt.datetime.now(dt.UTC),
            drill=report.drill,
        )

    def _check_reads(self, source: str, reads: Mapping[str, Mapping[str, set[str]]]) -> None:
        access = current_access()
        for entity, uses in reads.items():
            if entity != source:
                access.require(entity, "read")
            for use, fields in uses.items():
                access.check_readable(entity, sorted(fields), use)


def _stable_sort(rows: list[dict[str, Any]], key: str, descending: bool) -> None:
    """Sort by one key, values missing last in either direction, keeping earlier order."""
    present = [row for row in rows if row.get(key) is not None]
    missing = [row for row in rows if row.get(key) is None]
    present.sort(key=lambda row: row[key], reverse=descending)
    rows[:] = present + missing


def evaluate_expression(node: Any, values: Mapping[str, Any]) -> float | None:
    """An expression measure computed in Python (for filled rows), as the SQL computes it."""
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)
    ((operator, arguments),) = node.items()
    if operator == "var":
        name = arguments[0] if isinstance(arguments, list) else arguments
        value = values.get(name)
        return None if value is None else float(value)
    items = arguments if isinstance(arguments, list) else [arguments]
    parts = [evaluate_expression(item, values) for item in items]
    if any(part is None for part in parts):
        return None
    numbers = [part for part in parts if part is not None]
    if operator == "/":
        return None if numbers[1] == 0 else numbers[0] / numbers[1]
    if operator == "-":
        return -numbers[0] if len(numbers) == 1 else numbers[0] - sum(numbers[1:])
    if operator == "*":
        product = 1.0
        for number in numbers:
            product *= number
        return product
    return sum(numbers)


class _Shaper:
    """Turns the rows of an aggregate query into the result a chart draws."""

    def __init__(
        self, site: Site, report: ReportDef, compiled: CompiledReport, values: dict[str, Any]
    ) -> None:
        self.site = site
        self.report = report
        self.compiled = compiled
        self.values = values
        self.timezone = site.config.timezone
        self.dims = compiled.dimensions
        self.measures = compiled.measures
        self.time = next((d for d in self.dims if d.bucket is not None), None)
        self.others_label = (
            translate(report.top.others_label, site.config.locale) if report.top else "others"
        )
        self.dim_readers: list[Callable[[Any], Any] | None] = [
            None if d.bucket else reader_for_storage(d.ref.storage, site.db.dialect)
            for d in self.dims
        ]

    # -- values -------------------------------------------------------------------

    def _dimension_value(
        self, plan: DimensionPlan, reader: Callable[[Any], Any] | None, raw: Any
    ) -> Any:
        if raw is None:
            return None
        if plan.bucket is not None:
            from jimu.reports.timebuckets import bucket_key

            return bucket_key(raw, plan.bucket)
        value = reader(raw) if reader is not None else raw
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value

    def _measure_value(self, plan: MeasurePlan, raw: Any) -> Any:
        if raw is None:
            return None
        kind = plan.value_kind
        if kind == "int":
            value: Any = int(raw)
        elif kind == "float":
            value = float(raw)
        elif kind == "decimal":
            value = raw if isinstance(raw, decimal.Decimal) else decimal.Decimal(repr(raw))
            scale = plan.definition.round if plan.definition.round is not None else plan.scale
            if scale is not None:
                value = value.quantize(decimal.Decimal(1).scaleb(-scale))
            return value
        elif kind == "bool":
            value = bool(raw)
        elif kind in ("date", "datetime"):
            read = reader_for_storage(kind, self.site.db.dialect)  # type: ignore[arg-type]
            value = read(raw) if read is not None else raw
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
        else:
            value = raw
        if plan.definition.round is not None and isinstance(value, float):
            value = round(value, plan.definition.round)
        return value

    def _empty(self, plan: MeasurePlan) -> Any:
        if plan.definition.agg in ZERO_WHEN_EMPTY:
            return decimal.Decimal(0) if plan.value_kind == "decimal" else 0
        return None

    # -- shaping ------------------------------------------------------------------

    def shape(
        self, raw_rows: list[dict[str, Any]]
    ) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        current: list[dict[str, Any]] = []
        previous: list[dict[str, Any]] = []
        for raw in raw_rows:
            row: dict[str, Any] = {}
            for plan, reader in zip(self.dims, self.dim_readers, strict=True):
                row[plan.key] = self._dimension_value(plan, reader, raw[plan.column])
            for measure in self.measures:
                row[measure.key] = self._measure_value(measure, raw[measure.column])
            row["_others"] = bool(raw.get("o")) if self.compiled.others else False
            (previous if self.compiled.compares and not raw["p"] else current).append(row)
        current = self._fill(current, self._current_range())
        if self.compiled.compares:
            current = self._compare(current, previous)
        self._sort(current)
        self._cumulate(current)
        if self.report.limit is not None:
            current = current[: self.report.limit]
        rows = [self._present(row) for row in current]
        return self._columns(), rows

    def _current_range(self) -> DateRange | None:
        """The date range of a parameter on the time dimension's field (when given)."""
        if self.time is None:
            return None
        for parameter in self.report.parameters:
            if parameter.type == "date_range" and parameter.field == self.time.path:
                value = self.values.get(parameter.name)
                if isinstance(value, DateRange):
                    return value
        return None

    def _series_key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        assert self.time is not None
        return (
            *(row[d.key] for d in self.dims if d is not self.time),
            row.get("_others", False),
        )

    def _new_row(self, series: tuple[Any, ...], key: BucketKey) -> dict[str, Any]:
        assert self.time is not None
        row: dict[str, Any] = {}
        others = list(series[:-1])
        for plan in self.dims:
            row[plan.key] = key if plan is self.time else others.pop(0)
        values: dict[str, Any] = {}
        for measure in self.measures:
            if measure.definition.expr is None:
                values[measure.key] = row[measure.key] = self._empty(measure)
        for measure in self.measures:
            if measure.definition.expr is not None:
                row[measure.key] = evaluate_expression(measure.definition.expr, values)
        row["_others"] = series[-1]
        return row

    def _fill(self, rows: list[dict[str, Any]], days: DateRange | None) -> list[dict[str, Any]]:
        time = self.time
        if time is None or not time.fill or time.bucket is None:
            return rows
        bucket = time.bucket
        keys = [row[time.key] for row in rows if row[time.key] is not None]
        if days is not None:
            first, last = bucket_bounds(days.start, days.end, bucket)
        elif keys:
            first, last = min(keys), max(keys)
        else:
            return rows
        series_keys = list(dict.fromkeys(self._series_key(row) for row in rows))
        if not series_keys and len(self.dims) == 1:
            series_keys = [(False,)]
        present = {(self._series_key(row), row[time.key]) for row in rows}
        filled = list(rows)
        for series in series_keys:
            for key in bucket_series(first, last, bucket):
                if (series, key) not in present:
                    filled.append(self._new_row(series, key))
        return filled

    def _align(self) -> Callable[[BucketKey], BucketKey | None]:
        """Maps a previous-period bucket to the current bucket it is compared with."""
        compare = self.report.compare
        assert compare is not None
        time = self.time
        if time is None or time.bucket is None:
            return lambda key: key
        bucket = time.bucket
        if compare.shift == "year":
            return lambda key: shift_bucket(key, bucket, 1)
        days = self.values[compare.parameter]
        assert isinstance(days, DateRange)
        before = days.previous("period")
        current = list(bucket_series(*bucket_bounds(days.start, days.end, bucket), bucket))
        earlier = list(bucket_series(*bucket_bounds(before.start, before.end, bucket), bucket))
        mapping = dict(zip(earlier, current, strict=False))
        return mapping.get

    def _compare(
        self, current: list[dict[str, Any]], previous: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        align = self._align()
        time = self.time

        def row_key(row: Mapping[str, Any], shift: bool) -> tuple[Any, ...] | None:
            values = []
            for plan in self.dims:
                value = row[plan.key]
                if shift and plan is time and value is not None:
                    value = align(value)
                    if value is None:
                        return None
                values.append(value)
            return (*values, row.get("_others", False))

        earlier: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in previous:
            key = row_key(row, shift=True)
            if key is not None:
                earlier[key] = row
        seen = set()
        for row in current:
            key = row_key(row, shift=False)
            seen.add(key)
            self._attach(row, earlier.get(key) if key is not None else None)
        for key, old in earlier.items():
            if key in seen:
                continue
            if time is not None and time.fill:
                continue  # outside the current buckets (a longer previous period)
            row = dict(old)
            for plan, value in zip(self.dims, key[:-1], strict=True):
                row[plan.key] = value
            values: dict[str, Any] = {}
            for measure in self.measures:
                if measure.definition.expr is None:
                    values[measure.key] = row[measure.key] = self._empty(measure)
            for measure in self.measures:
                if measure.definition.expr is not None:
                    row[measure.key] = evaluate_expression(measure.definition.expr, values)
            self._attach(row, old)
            current.append(row)
        return current

    def _attach(self, row: dict[str, Any], old: Mapping[str, Any] | None) -> None:
        for measure in self.measures:
            if old is not None:
                before = old[measure.key]
            elif measure.definition.expr is not None:
                before = None
                if all(
                    m.definition.agg in ZERO_WHEN_EMPTY
                    for m in self.measures
                    if m.definition.expr is None
                ):
                    before = evaluate_expression(
                        measure.definition.expr,
                        {m.key: self._empty(m) for m in self.measures if m.definition.expr is None},
                    )
            else:
                before = self._empty(measure)
            row[f"{measure.key}_previous"] = before
            now = row[measure.key]
            change = None
            if (
                isinstance(now, int | float | decimal.Decimal)
                and isinstance(before, int | float | decimal.Decimal)
                and before != 0
            ):
                change = (float(now) - float(before)) / abs(float(before))
            row[f"{measure.key}_change"] = change

    def _sort(self, rows: list[dict[str, Any]]) -> None:
        for plan in reversed(self.dims):
            _stable_sort(rows, plan.key, False)
        for key in reversed(self.report.sort):
            _stable_sort(rows, key.by, key.descending)
        rows.sort(key=lambda row: bool(row.get("_others")))

    def _cumulate(self, rows: list[dict[str, Any]]) -> None:
        if not self.report.cumulative:
            return
        time = self.time
        totals: dict[tuple[Any, ...], dict[str, Any]] = {}
        ordered = rows
        if time is not None:
            ordered = sorted(
                (row for row in rows if row[time.key] is not None),
                key=lambda row: row[time.key],
            )
        for row in ordered:
            series = self._series_key(row) if time is not None else ()
            running = totals.setdefault(series, {})
            for name in self.report.cumulative:
                value = row.get(name) or 0
                running[name] = running.get(name, 0) + value
                row[f"{name}_cumulative"] = running[name]

    def _present(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        others = row.pop("_others", False)
        for plan in self.dims:
            value = row.pop(plan.key)
            if plan.bucket is not None and value is not None:
                value = bucket_label(value, plan.bucket, self.timezone)
            top = self.report.top
            if (
                others
                and top is not None
                and plan.key == (top.dimension or plan.key)
                and (plan.bucket is None)
            ):
                value = self.others_label
            out[plan.key] = value
        out.update(row)
        if others:
            out["_others"] = True
        if self.report.drill is not None and not others:
            out["_drill"] = self._drill(out)
        return out

    def _drill(self, row: Mapping[str, Any]) -> dict[str, Any]:
        drill = self.report.drill
        assert drill is not None
        if drill.report is not None:
            return {
                "report": drill.report,
                "params": {name: row.get(dimension) for name, dimension in drill.params.items()},
            }
        conditions: list[Any] = []
        if self.report.filter is not None:
            conditions.append(self.report.filter)
        tz = _zone(self.timezone)
        for parameter in self.report.parameters:
            value = self.values.get(parameter.name)
            if parameter.field is None or value is None:
                continue
            if isinstance(value, DateRange):
                conditions.append(
                    _range_rule(parameter.field, value.start, value.end + dt.timedelta(days=1), tz)
                )
            elif isinstance(value, list):
                conditions.append({"in": [{"var": parameter.field}, value]})
            else:
                conditions.append({"==": [{"var": parameter.field}, _json_value(value)]})
        for plan in self.dims:
            value = row[plan.key]
            if plan.bucket is not None and value is not None:
                key = _key_from_label(value, plan.bucket)
                end = bucket_end(key, plan.bucket)
                conditions.append(_range_rule(plan.path, key, end, tz, plan.ref.storage))
            else:
                conditions.append({"==": [{"var": plan.path}, _json_value(value)]})
        rule: Any = conditions[0] if len(conditions) == 1 else {"and": conditions}
        return {"entity": self.report.entity, "filter": rule}

    def _columns(self) -> list[ResultColumn]:
        locale = self.site.config.locale
        columns = []
        for plan in self.dims:
            definition = next(d for d in self.report.dimensions if d.key == plan.key)
            field_label = (
                self.site.entity(plan.ref.entity).field(plan.ref.field)
                if plan.ref.type_name
                else None
            )
            label = translate(
                definition.label or (field_label.label if field_label else None),
                locale,
                fallback=plan.key,
            )
            kind = "text" if plan.bucket else _storage_kind(plan.ref.storage)
            columns.append(
                ResultColumn(
                    key=plan.key, label=label, role="dimension", type=kind, bucket=plan.bucket
                )
            )
        for measure in self.measures:
            label = translate(measure.definition.label, locale, fallback=measure.key)
            columns.append(
                ResultColumn(key=measure.key, label=label, role="measure", type=measure.value_kind)
            )
            if self.compiled.compares:
                columns.append(
                    ResultColumn(
                        key=f"{measure.key}_previous",
                        label=f"{label} ({'上期' if locale.startswith('zh') else 'previous'})",
                        role="measure",
                        type=measure.value_kind,
                    )
                )
                columns.append(
                    ResultColumn(
                        key=f"{measure.key}_change",
                        label=f"{label} ({'环比' if locale.startswith('zh') else 'change'})",
                        role="measure",
                        type="float",
                    )
                )
        for name in self.report.cumulative:
            running = next(m for m in self.measures if m.key == name)
            label = translate(running.definition.label, locale, fallback=name)
            columns.append(
                ResultColumn(
                    key=f"{name}_cumulative",
                    label=f"{label} ({'累计' if locale.startswith('zh') else 'cumulative'})",
                    role="measure",
                    type=running.value_kind,
                )
            )
        return columns


def _zone(name: str) -> dt.tzinfo:
    import zoneinfo

    return zoneinfo.ZoneInfo(name)


def _storage_kind(storage: str) -> str:
    return {
        "integer": "int",
        "link": "int",
        "decimal": "decimal",
        "boolean": "bool",
        "date": "date",
        "datetime": "datetime",
    }.get(storage, "text")


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def _key_from_label(label: str, bucket: str) -> BucketKey:
    if bucket == "hour":
        return dt.datetime.fromisoformat(label).replace(tzinfo=None)
    return dt.date.fromisoformat(label)


def _range_rule(
    path: str, start: BucketKey, end: BucketKey, tz: dt.tzinfo, storage: str = "datetime"
) -> dict[str, Any]:
    """``start <= path < end`` as JsonLogic (local midnights as instants for datetimes)."""

    def bound(moment: BucketKey) -> str:
        if storage == "date":
            return (moment.date() if isinstance(moment, dt.datetime) else moment).isoformat()
        if not isinstance(moment, dt.datetime):
            moment = dt.datetime.combine(moment, dt.time())
        return moment.replace(tzinfo=tz).astimezone(dt.UTC).isoformat()

    return {
        "and": [
            {">=": [{"var": path}, bound(start)]},
            {"<": [{"var": path}, bound(end)]},
        ]
    }
