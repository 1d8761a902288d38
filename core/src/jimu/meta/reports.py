"""Report and dashboard definitions: plain msgspec Structs a person can diff.

A :class:`ReportDef` says *what* to compute over one source entity — measures
over dimensions, filtered, with parameters bound when it runs — and how to
show it (a chart type and its options, a drill-down target). The report engine
(:mod:`jimu.reports`) checks it against the site's model and compiles it to
one SQL query per run. A :class:`DashboardDef` lays reports out as cards on a
grid with parameters shared by every card.

Nothing here talks to a database.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from jimu.meta import Translatable

__all__ = [
    "AGGREGATES",
    "BUCKETS",
    "PARAMETER_TYPES",
    "CardDef",
    "ChartDef",
    "CompareDef",
    "DashboardDef",
    "DimensionDef",
    "DrillDef",
    "MeasureDef",
    "ParameterDef",
    "ReportDef",
    "SortDef",
    "TopDef",
]

#: Aggregations a measure may use (``expr`` measures combine other measures instead).
AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "repeat_rate")
#: Time buckets of a datetime or date dimension, in the site's time zone (weeks start Monday).
BUCKETS = ("hour", "day", "week", "month", "quarter", "year")
#: Kinds of run-time parameters.
PARAMETER_TYPES = ("date_range", "text", "integer", "decimal", "date", "boolean", "list")

#: Names of measures, dimensions and parameters: identifiers safe as SQL aliases.
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class MeasureDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A number computed per group: an aggregation of a field, or an expression.

    ``agg`` is one of :data:`AGGREGATES`; ``field`` the path it aggregates
    (``amount``, ``customer.city``; not needed by ``count``). ``filter`` (a
    JsonLogic rule over the source entity) limits the rows this measure counts,
    e.g. paid orders only. ``expr`` instead combines other measures of the
    report with JsonLogic arithmetic (``{"/": [{"var": "revenue"}, {"var": "orders"}]}``);
    a division by zero gives no value. ``repeat_rate`` is the share of distinct
    ``field`` values (customers) that occur at least twice in the group.
    """

    name: str
    agg: str | None = None
    field: str | None = None
    filter: Any = None
    expr: Any = None
    label: Translatable | None = None
    #: Digits after the point the value is rounded to (``None``: as computed).
    round: int | None = None


class DimensionDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What rows are grouped by: a field (``status``), a linked record's field
    (``customer.city``), or a time bucket of a date/datetime field."""

    field: str
    bucket: str | None = None
    #: Column name in the result (default: the field path with ``.`` as ``_``, plus the bucket).
    name: str | None = None
    label: Translatable | None = None
    #: Fill buckets without rows (time buckets only) so a line has no gaps.
    fill: bool = True

    @property
    def key(self) -> str:
        """The result column of this dimension."""
        if self.name:
            return self.name
        base = self.field.replace(".", "_")
        return f"{base}_{self.bucket}" if self.bucket else base


class ParameterDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A value given when the report runs (date range, store, channel), bound as a query
    parameter, never written into the SQL text.

    A parameter with a ``field`` filters on it: ``date_range`` keeps rows with
    ``start <= field < end`` (dates in the site's time zone), ``list`` keeps
    rows whose field is one of the values, the others keep rows equal to the
    value. Absent and not ``required``: no condition (or ``default``).
    """

    name: str
    type: str
    field: str | None = None
    required: bool = False
    default: Any = None
    label: Translatable | None = None


class SortDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Order of the result rows by a measure or dimension name."""

    by: str
    descending: bool = False


class TopDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Keep the ``n`` values of ``dimension`` ranking highest by ``by`` (a measure);
    the rest become one row labelled ``others`` (when ``others`` is true)."""

    n: int
    by: str
    dimension: str | None = None
    others: bool = True
    others_label: Translatable = "others"


class CompareDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Compare each row with the previous period of a ``date_range`` parameter.

    ``shift``: ``period`` (the range of the same length just before) or
    ``year`` (the same dates a year earlier). Each measure gains
    ``<name>_previous`` and ``<name>_change`` (relative change, ``0.25`` = +25%).
    """

    parameter: str
    shift: str = "period"


class ChartDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """How the result is shown: a registered chart type and its options."""

    type: str = "table"
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class DrillDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where a click on a row leads: another report (its parameters filled from the
    row) or the filtered list of the source records behind the row."""

    report: str | None = None
    list: bool = False
    #: For a report target: its parameter name -> this report's dimension name.
    params: dict[str, str] = msgspec.field(default_factory=dict)


class ReportDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A report: measures over dimensions of one source entity, compiled to SQL.

    ``kind`` is ``aggregate`` (a group-by) or a registered report kind
    (``funnel``, ``cohort``, ``rfm``, or a plugin's), which reads its settings
    from ``options``. ``cumulative`` names measures shown as running totals
    along the first time dimension. ``cache_seconds`` marks a heavy report: its
    result is computed by a background job and served from a cache with its age.
    """

    name: str
    entity: str
    kind: str = "aggregate"
    label: Translatable | None = None
    description: Translatable | None = None
    measures: list[MeasureDef] = msgspec.field(default_factory=list)
    dimensions: list[DimensionDef] = msgspec.field(default_factory=list)
    filter: Any = None
    parameters: list[ParameterDef] = msgspec.field(default_factory=list)
    sort: list[SortDef] = msgspec.field(default_factory=list)
    limit: int | None = None
    top: TopDef | None = None
    compare: CompareDef | None = None
    cumulative: list[str] = msgspec.field(default_factory=list)
    chart: ChartDef = msgspec.field(default_factory=ChartDef)
    drill: DrillDef | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    cache_seconds: int | None = None
    plugin: str | None = None


class CardDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One card of a dashboard: a saved report, optionally another chart, at a grid place.

    ``x``/``y`` are the top-left cell (columns 0-11), ``w``/``h`` the size in cells.
    ``params`` fixes some of the report's parameters for this card; the others
    come from the dashboard's shared parameters of the same name.
    """

    report: str
    title: Translatable | None = None
    chart: ChartDef | None = None
    x: int = 0
    y: int = 0
    w: int = 6
    h: int = 4
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class DashboardDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A grid of report cards with shared parameters (date range, store, channel).

    ``refresh_seconds`` asks viewers to reload the data that often (``None``: by hand).
    """

    name: str
    label: Translatable | None = None
    cards: list[CardDef] = msgspec.field(default_factory=list)
    parameters: list[ParameterDef] = msgspec.field(default_factory=list)
    refresh_seconds: int | None = None


#: Where a dashboard is saved: for the whole site, or for the user who saved it.
DashboardScope = Literal["site", "user"]
