"""The kernel's report kinds: conversion funnel, cohort retention, RFM segmentation.

Each runs as one SQL query (common table expressions) over the report's
source entity, with the report's filter, parameters and the user's row
conditions applied to the source rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import msgspec

from jimu.errors import FieldProblem, ValidationFailed
from jimu.meta import Translatable, translate
from jimu.meta.reports import ReportDef
from jimu.reports.compiler import group_key
from jimu.reports.kinds import KindRun, ReportKind, ResultColumn
from jimu.reports.params import value_param
from jimu.reports.paths import PathResolver
from jimu.reports.timebuckets import bucket_key, bucket_label

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["BUILTIN_KINDS", "CohortKind", "FunnelKind", "RfmKind", "rfm_segment"]


def _column(key: str, labels: tuple[str, str], role: str, kind: str, zh: bool) -> ResultColumn:
    """A result column labelled in Chinese (``labels[0]``) or English (``labels[1]``)."""
    return ResultColumn(key=key, label=labels[0] if zh else labels[1], role=role, type=kind)


def _zh(site: Site) -> bool:
    return site.config.locale.lower().startswith("zh")


def _time_field(paths: PathResolver, path: str, where: str) -> None:
    ref = paths.resolve(path, where, "measure")
    if ref.storage not in ("date", "datetime"):
        raise ValidationFailed(
            FieldProblem(where, f"needs a date or datetime field; {path!r} is {ref.storage}")
        )


# -- funnel -------------------------------------------------------------------------------


class FunnelStep(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One step: the records (a JsonLogic rule over the event entity) that count as taking it."""

    filter: Any
    label: Translatable | None = None


class FunnelOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``actor``: who moves through the funnel (``customer``); ``time``: when an event
    happened; ``steps`` in order; ``window_days``: how long after the first step the
    later steps still count."""

    actor: str
    steps: list[FunnelStep]
    time: str = "created_at"
    window_days: int | None = None


class FunnelKind(ReportKind):
    """Ordered steps over event records: how many actors reach each step, in order.

    An actor reaches step *k* when one of its events matches step *k* at or
    after the moment it reached step *k-1* (and within ``window_days`` of
    its first step).
    """

    name = "funnel"
    label: ClassVar[Translatable] = {"en": "Conversion funnel", "zh-CN": "转化漏斗"}
    options_type = FunnelOptions
    description = "ordered steps over event records, conversion per step"

    def check(self, site: Site, report: ReportDef, options: Any, paths: PathResolver) -> None:
        assert isinstance(options, FunnelOptions)
        if not 2 <= len(options.steps) <= 20:
            raise ValidationFailed(FieldProblem("options.steps", "a funnel has 2 to 20 steps"))
        if options.window_days is not None and options.window_days < 1:
            raise ValidationFailed(FieldProblem("options.window_days", "must be at least 1"))
        paths.resolve(options.actor, "options.actor", "group by")
        _time_field(paths, options.time, "options.time")

    async def run(self, run: KindRun) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        options: FunnelOptions = run.options
        actor = run.field(options.actor, "options.actor", "group by")
        time = run.field(options.time, "options.time")
        select = [f"{actor.sql} AS a", f"{time.sql} AS t"]
        params: list[Any] = []
        for position, step in enumerate(options.steps):
            sql, values = run.condition(step.filter, f"options.steps[{position}].filter")
            select.append(f"CASE WHEN {sql} THEN 1 ELSE 0 END AS s{position}")
            params.extend(values)
        conditions, where_params = run.where()
        conditions.append(f"{actor.sql} IS NOT NULL")
        conditions.append(f"{time.sql} IS NOT NULL")
        ctes = [
            f"ev AS (SELECT {', '.join(select)} FROM {run.runtime.quoted}{run.paths.join_sql()}"
            f" WHERE {' AND '.join(conditions)})",
            "f0 AS (SELECT a, MIN(t) AS t, MIN(t) AS t0 FROM ev WHERE s0 = 1 GROUP BY a)",
        ]
        params.extend(where_params)
        for position in range(1, len(options.steps)):
            window = ""
            if options.window_days is not None:
                if run.dialect == "sqlite":
                    window = (
                        " AND julianday(substr(ev.t, 1, 19)) - julianday(substr(prev.t0, 1, 19))"
                        " <= {}"
                    )
                else:
                    window = " AND ev.t <= prev.t0 + make_interval(days => {})"
                params.append(options.window_days)
            ctes.append(
                f"f{position} AS (SELECT ev.a, MIN(ev.t) AS t, MIN(prev.t0) AS t0 FROM ev "
                f"JOIN f{position - 1} AS prev ON ev.a = prev.a AND ev.t >= prev.t{window} "
                f"WHERE ev.s{position} = 1 GROUP BY ev.a)"
            )
        counts = ", ".join(
            f"(SELECT COUNT(*) FROM f{position}) AS c{position}"
            for position in range(len(options.steps))
        )
        rows = await run.fetch(f"WITH {', '.join(ctes)} SELECT {counts}", params)
        found = rows[0] if rows else {}
        locale = run.site.config.locale
        result = []
        first = int(found.get("c0") or 0)
        before = first
        for position, step in enumerate(options.steps):
            count = int(found.get(f"c{position}") or 0)
            result.append(
                {
                    "step": position + 1,
                    "label": translate(step.label, locale, fallback=f"step {position + 1}"),
                    "count": count,
                    "conversion": count / first if first else None,
                    "step_conversion": count / before if before else None,
                }
            )
            before = count
        zh = _zh(run.site)
        columns = [
            _column("step", ("步骤", "step"), "dimension", "int", zh),
            _column("label", ("名称", "label"), "dimension", "text", zh),
            _column("count", ("人数", "count"), "measure", "int", zh),
            _column(
                "conversion", ("总转化率", "conversion from first step"), "measure", "float", zh
            ),
            _column(
                "step_conversion",
                ("步骤转化率", "conversion from previous step"),
                "measure",
                "float",
                zh,
            ),
        ]
        return columns, result


# -- cohort retention ------------------------------------------------------------------------


class CohortOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``actor``: who is retained; ``time``: when they were active; cohorts by the
    ``bucket`` of each actor's first activity; ``periods`` columns after it."""

    actor: str
    time: str = "created_at"
    bucket: Literal["day", "week", "month"] = "month"
    periods: int = 12


def _offset(cohort: dt.date, active: dt.date, bucket: str) -> int:
    if bucket == "month":
        return (active.year - cohort.year) * 12 + active.month - cohort.month
    days = (active - cohort).days
    return days // 7 if bucket == "week" else days


class CohortKind(ReportKind):
    """Cohort retention: actors grouped by the bucket of their first activity, and how
    many of each cohort are active again 1, 2, ... buckets later."""

    name = "cohort"
    label: ClassVar[Translatable] = {"en": "Cohort retention", "zh-CN": "留存分析"}
    options_type = CohortOptions
    description = "actors by the period of their first activity, active again N periods later"

    def check(self, site: Site, report: ReportDef, options: Any, paths: PathResolver) -> None:
        assert isinstance(options, CohortOptions)
        if not 1 <= options.periods <= 60:
            raise ValidationFailed(FieldProblem("options.periods", "must be from 1 to 60"))
        paths.resolve(options.actor, "options.actor", "group by")
        _time_field(paths, options.time, "options.time")

    async def run(self, run: KindRun) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        options: CohortOptions = run.options
        actor = run.field(options.actor, "options.actor", "group by")
        time = run.field(options.time, "options.time")
        bucket, bucket_params = run.bucket(time, options.bucket)
        conditions, where_params = run.where()
        conditions.append(f"{actor.sql} IS NOT NULL")
        conditions.append(f"{time.sql} IS NOT NULL")
        sql = (
            f"WITH ev AS (SELECT {actor.sql} AS a, {bucket} AS b FROM {run.runtime.quoted}"
            f"{run.paths.join_sql()} WHERE {' AND '.join(conditions)}), "
            "firsts AS (SELECT a, MIN(b) AS c FROM ev GROUP BY a) "
            "SELECT firsts.c AS cohort, ev.b AS active, COUNT(DISTINCT ev.a) AS n "
            "FROM ev JOIN firsts ON firsts.a = ev.a GROUP BY firsts.c, ev.b"
        )
        rows = await run.fetch(sql, [*bucket_params, *where_params])
        counts: dict[dt.date, dict[int, int]] = {}
        latest: dt.date | None = None
        for found in rows:
            cohort = bucket_key(found["cohort"], options.bucket)
            active = bucket_key(found["active"], options.bucket)
            assert isinstance(cohort, dt.date) and isinstance(active, dt.date)
            latest = active if latest is None or active > latest else latest
            offset = _offset(cohort, active, options.bucket)
            counts.setdefault(cohort, {})[offset] = int(found["n"])
        result = []
        for cohort in sorted(counts):
            size = counts[cohort].get(0, 0)
            row: dict[str, Any] = {
                "cohort": bucket_label(cohort, options.bucket, run.timezone),
                "size": size,
            }
            assert latest is not None
            observed = _offset(cohort, latest, options.bucket)
            for offset in range(options.periods):
                if offset > observed:
                    row[f"period_{offset}"] = None
                    row[f"period_{offset}_rate"] = None
                    continue
                active_count = counts[cohort].get(offset, 0)
                row[f"period_{offset}"] = active_count
                row[f"period_{offset}_rate"] = active_count / size if size else None
            result.append(row)
        zh = _zh(run.site)
        columns = [
            ResultColumn(
                key="cohort",
                label="批次" if zh else "cohort",
                role="dimension",
                type="text",
                bucket=options.bucket,
            ),
            _column("size", ("人数", "size"), "measure", "int", zh),
        ]
        for offset in range(options.periods):
            columns.append(
                ResultColumn(key=f"period_{offset}", label=f"+{offset}", role="measure", type="int")
            )
            columns.append(
                ResultColumn(
                    key=f"period_{offset}_rate",
                    label=f"+{offset} %",
                    role="measure",
                    type="float",
                )
            )
        return columns, result


# -- RFM -----------------------------------------------------------------------------------


#: Segment by recency score (rows, 5 = most recent) and frequency score (columns, 1..5).
_SEGMENTS: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    3: ("about_to_sleep", "need_attention", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
}

#: Segment names people read, per locale.
SEGMENT_LABELS: dict[str, dict[str, str]] = {
    "champions": {"en": "Champions", "zh-CN": "重要价值客户"},
    "loyal": {"en": "Loyal", "zh-CN": "忠诚客户"},
    "potential_loyalists": {"en": "Potential loyalists", "zh-CN": "潜力客户"},
    "new_customers": {"en": "New customers", "zh-CN": "新客户"},
    "promising": {"en": "Promising", "zh-CN": "有望客户"},
    "need_attention": {"en": "Need attention", "zh-CN": "需关注客户"},
    "about_to_sleep": {"en": "About to sleep", "zh-CN": "即将沉睡客户"},
    "at_risk": {"en": "At risk", "zh-CN": "流失风险客户"},
    "cannot_lose_them": {"en": "Cannot lose them", "zh-CN": "重要挽留客户"},
    "hibernating": {"en": "Hibernating", "zh-CN": "沉睡客户"},
    "lost": {"en": "Lost", "zh-CN": "已流失客户"},
}


def rfm_segment(recency: int, frequency: int) -> str:
    """The segment of a customer with these recency and frequency scores (1-5)."""
    return _SEGMENTS[recency][frequency - 1]


class RfmOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``customer``: who is scored (a link of the order entity); ``time``: when an
    order was placed; ``amount``: what it was worth; ``as_of``: the day recency is
    measured to (default: today in the site's time zone); ``output``: one row per
    ``segment`` or per ``customer``."""

    customer: str
    amount: str
    time: str = "created_at"
    as_of: dt.date | None = None
    output: Literal["segments", "customers"] = "segments"


class RfmKind(ReportKind):
    """RFM scoring: quintiles (1-5) of recency, frequency and monetary value per customer,
    and the customers' segments ("champions", "at risk", "hibernating", ...).

    A score is the quintile of the customer's value among all customers, ties
    sharing a score: ``ceil(5 * share of customers with a value at most this one)``
    (for recency, the later the last order the higher the score).
    """

    name = "rfm"
    label: ClassVar[Translatable] = {"en": "RFM segmentation", "zh-CN": "RFM 客户分群"}
    options_type = RfmOptions
    description = "recency, frequency and monetary quintiles per customer, and segments"

    def check(self, site: Site, report: ReportDef, options: Any, paths: PathResolver) -> None:
        assert isinstance(options, RfmOptions)
        paths.resolve(options.customer, "options.customer", "group by")
        _time_field(paths, options.time, "options.time")
        amount = paths.resolve(options.amount, "options.amount", "measure")
        if amount.storage not in ("integer", "decimal"):
            raise ValidationFailed(
                FieldProblem("options.amount", f"needs a number field; {options.amount!r} is not")
            )

    async def run(self, run: KindRun) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        options: RfmOptions = run.options
        customer = run.field(options.customer, "options.customer", "group by")
        time = run.field(options.time, "options.time")
        amount = run.field(options.amount, "options.amount")
        zone = zoneinfo.ZoneInfo(run.timezone)
        as_of = options.as_of or dt.datetime.now(zone).date()
        end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        end_param = value_param(
            time.storage,
            end if time.storage == "datetime" else as_of + dt.timedelta(days=1),
            run.dialect,
        )
        if run.dialect == "sqlite":
            recency = "julianday({}) - julianday(substr(last, 1, 19))"
        elif time.storage == "datetime":
            recency = "EXTRACT(EPOCH FROM (CAST({} AS TIMESTAMPTZ) - last)) / 86400.0"
        else:
            recency = "CAST(CAST({} AS DATE) - last AS DOUBLE PRECISION)"
        conditions, where_params = run.where()
        conditions.append(f"{customer.sql} IS NOT NULL")
        conditions.append(f"{time.sql} IS NOT NULL")
        conditions.append(f"{time.sql} < {{}}")
        where_params.append(end_param)
        money = f"COALESCE({amount.sql}, 0)"
        per = (
            f"per AS (SELECT {customer.sql} AS c, MAX({time.sql}) AS last, COUNT(*) AS f, "
            f"SUM({money}) AS m FROM {run.runtime.quoted}{run.paths.join_sql()} "
            f"WHERE {' AND '.join(conditions)} GROUP BY {group_key(customer.sql, run.dialect)})"
        )
        scored = (
            "scored AS (SELECT c, last, f, m, "
            "(5 * COUNT(*) OVER (ORDER BY last) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS r, "
            "(5 * COUNT(*) OVER (ORDER BY f) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS fs, "
            + (
                "(5 * COUNT(*) OVER (ORDER BY m) + COUNT(*) OVER () - 1) / COUNT(*) OVER () AS ms, "
                if options.output == "customers"
                else ""
            )
            + f"{recency} AS days FROM per)"
        )
        zh = _zh(run.site)
        locale = run.site.config.locale
        if options.output == "customers":
            limit = run.report.limit or 1000
            sql = (
                f"WITH {per}, {scored} SELECT c, last, f, m, r, fs, ms, days FROM scored "
                f"ORDER BY r DESC, fs DESC, ms DESC, c LIMIT {int(limit)}"
            )
            rows = await run.fetch(sql, [*where_params, end_param])
            customers = []
            for row in rows:
                segment = rfm_segment(int(row["r"]), int(row["fs"]))
                customers.append(
                    {
                        "customer": row["c"],
                        "recency_days": round(float(row["days"]), 2),
                        "frequency": int(row["f"]),
                        "monetary": _money(row["m"], amount.scale),
                        "r": int(row["r"]),
                        "f": int(row["fs"]),
                        "m": int(row["ms"]),
                        "segment": segment,
                        "segment_label": translate(SEGMENT_LABELS[segment], locale),
                    }
                )
            columns = [
                _column("customer", ("客户", "customer"), "dimension", "int", zh),
                _column(
                    "recency_days",
                    ("最近购买天数", "days since last order"),
                    "measure",
                    "float",
                    zh,
                ),
                _column("frequency", ("购买次数", "orders"), "measure", "int", zh),
                _column("monetary", ("消费金额", "monetary"), "measure", "decimal", zh),
                ResultColumn(key="r", label="R", role="measure", type="int"),
                ResultColumn(key="f", label="F", role="measure", type="int"),
                ResultColumn(key="m", label="M", role="measure", type="int"),
                _column("segment", ("分群", "segment"), "dimension", "text", zh),
                _column("segment_label", ("分群名称", "segment name"), "dimension", "text", zh),
            ]
            return columns, customers
        sql = (
            f"WITH {per}, {scored} SELECT r, fs, COUNT(*) AS n, SUM(f) AS orders, SUM(m) AS money, "
            "SUM(days) AS days FROM scored GROUP BY r, fs"
        )
        rows = await run.fetch(sql, [*where_params, end_param])
        totals: dict[str, dict[str, Any]] = {}
        everyone = 0
        for row in rows:
            segment = rfm_segment(int(row["r"]), int(row["fs"]))
            entry = totals.setdefault(
                segment, {"customers": 0, "orders": 0, "monetary": 0.0, "days": 0.0}
            )
            entry["customers"] += int(row["n"])
            entry["orders"] += int(row["orders"])
            entry["monetary"] += float(row["money"] or 0)
            entry["days"] += float(row["days"] or 0)
            everyone += int(row["n"])
        result = []
        for segment in SEGMENT_LABELS:
            if segment not in totals:
                continue
            entry = totals[segment]
            count = entry["customers"]
            result.append(
                {
                    "segment": segment,
                    "segment_label": translate(SEGMENT_LABELS[segment], locale),
                    "customers": count,
                    "share": count / everyone if everyone else None,
                    "orders": entry["orders"],
                    "monetary": _money(entry["monetary"], amount.scale),
                    "avg_recency_days": round(entry["days"] / count, 2),
                    "avg_frequency": entry["orders"] / count,
                    "avg_monetary": _money(entry["monetary"] / count, amount.scale),
                }
            )
        columns = [
            _column("segment", ("分群", "segment"), "dimension", "text", zh),
            _column("segment_label", ("分群名称", "segment name"), "dimension", "text", zh),
            _column("customers", ("客户数", "customers"), "measure", "int", zh),
            _column("share", ("占比", "share"), "measure", "float", zh),
            _column("orders", ("订单数", "orders"), "measure", "int", zh),
            _column("monetary", ("消费金额", "monetary"), "measure", "decimal", zh),
            _column(
                "avg_recency_days",
                ("平均最近购买天数", "average days since last order"),
                "measure",
                "float",
                zh,
            ),
            _column("avg_frequency", ("平均购买次数", "average orders"), "measure", "float", zh),
            _column("avg_monetary", ("平均消费金额", "average monetary"), "measure", "decimal", zh),
        ]
        return columns, result


def _money(value: Any, scale: int | None) -> decimal.Decimal:
    amount = (
        value if isinstance(value, decimal.Decimal) else decimal.Decimal(repr(float(value or 0)))
    )
    return amount.quantize(decimal.Decimal(1).scaleb(-(scale if scale is not None else 2)))


#: The kernel's report kinds, registered before the plugins' ones.
BUILTIN_KINDS: tuple[ReportKind, ...] = (FunnelKind(), CohortKind(), RfmKind())
