"""Chart types: each describes the data shape it needs, so a report is checked
against its chart before it runs (a pie of three dimensions is refused with a
422, not drawn wrong). Plugins add chart types through ``jimu_chart_types``;
the web UI draws them.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from jimu.errors import FieldProblem, ValidationFailed
from jimu.meta import Translatable

__all__ = ["BUILTIN_CHART_TYPES", "ChartType", "ChartTypeRegistry"]


class ChartType(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A chart type and the data shape it needs.

    ``dimensions`` and ``measures`` are the inclusive ranges of how many the
    report may have (``None`` as the maximum: no limit). ``time_dimension``
    says the first dimension must be a time bucket; ``kinds`` lists the report
    kinds it can draw (empty: aggregate reports only; ``"*"``: every kind, like
    the table); ``options`` names the
    options it understands (anything else in a report's chart options is refused).
    """

    name: str
    label: Translatable
    dimensions: tuple[int, int | None] = (0, None)
    measures: tuple[int, int | None] = (1, None)
    time_dimension: bool = False
    kinds: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    description: str = ""


_COMMON = ("title", "colors", "legend", "stacked", "format")


def _chart(
    name: str,
    en: str,
    zh: str,
    *,
    dimensions: tuple[int, int | None] = (0, None),
    measures: tuple[int, int | None] = (1, None),
    time_dimension: bool = False,
    kinds: tuple[str, ...] = (),
    options: tuple[str, ...] = (),
    description: str = "",
) -> ChartType:
    return ChartType(
        name=name,
        label={"en": en, "zh-CN": zh},
        dimensions=dimensions,
        measures=measures,
        time_dimension=time_dimension,
        kinds=kinds,
        options=(*_COMMON, *options),
        description=description,
    )


#: The kernel's chart types.
BUILTIN_CHART_TYPES: tuple[ChartType, ...] = (
    _chart(
        "number",
        "Number card with trend",
        "指标卡",
        dimensions=(0, 1),
        measures=(1, 1),
        options=("trend", "goal", "prefix", "suffix"),
        description="one number; with a time dimension, the last bucket and its trend",
    ),
    _chart("line", "Line", "折线图", dimensions=(1, 2), options=("smooth", "markers")),
    _chart("area", "Area", "面积图", dimensions=(1, 2), options=("smooth",)),
    _chart("bar", "Bar", "柱状图", dimensions=(1, 2)),
    _chart("stacked_bar", "Stacked bar", "堆叠柱状图", dimensions=(2, 2), measures=(1, 1)),
    _chart("horizontal_bar", "Horizontal bar", "条形图", dimensions=(1, 2)),
    _chart(
        "combo",
        "Combo bar and line",
        "柱线组合图",
        dimensions=(1, 1),
        measures=(2, None),
        options=("line_measures", "secondary_axis"),
    ),
    _chart("pie", "Pie", "饼图", dimensions=(1, 1), measures=(1, 1)),
    _chart("donut", "Donut", "环形图", dimensions=(1, 1), measures=(1, 1), options=("hole",)),
    _chart(
        "funnel",
        "Funnel",
        "漏斗图",
        dimensions=(0, 1),
        measures=(0, 1),
        kinds=("funnel", "aggregate"),
    ),
    _chart(
        "gauge",
        "Gauge",
        "仪表盘",
        dimensions=(0, 0),
        measures=(1, 1),
        options=("min", "max", "bands"),
    ),
    _chart(
        "progress",
        "Progress to goal",
        "目标进度",
        dimensions=(0, 0),
        measures=(1, 1),
        options=("goal",),
    ),
    _chart(
        "table",
        "Table",
        "表格",
        dimensions=(0, None),
        measures=(0, None),
        kinds=("*",),
        options=("page_size", "totals"),
    ),
    _chart(
        "pivot",
        "Pivot table",
        "透视表",
        dimensions=(2, None),
        options=("rows", "columns", "totals"),
    ),
    _chart("scatter", "Scatter", "散点图", dimensions=(0, 2), measures=(2, 3)),
    _chart(
        "heatmap",
        "Heatmap",
        "热力图",
        dimensions=(2, 2),
        measures=(1, 1),
        kinds=("aggregate", "cohort"),
    ),
    _chart("treemap", "Treemap", "矩形树图", dimensions=(1, 3), measures=(1, 1)),
    _chart(
        "sankey",
        "Sankey",
        "桑基图",
        dimensions=(2, 2),
        measures=(1, 1),
        description="flows from the first dimension's values to the second's",
    ),
    _chart("waterfall", "Waterfall", "瀑布图", dimensions=(1, 1), measures=(1, 1)),
    _chart(
        "china_map",
        "Map of China provinces",
        "中国省份地图",
        dimensions=(1, 1),
        measures=(1, 1),
        description="the dimension holds province names or region codes",
    ),
    _chart(
        "calendar_heatmap",
        "Calendar heatmap",
        "日历热力图",
        dimensions=(1, 1),
        measures=(1, 1),
        time_dimension=True,
    ),
    _chart("radar", "Radar", "雷达图", dimensions=(1, 2), measures=(1, None)),
    _chart(
        "cohort_grid",
        "Cohort retention grid",
        "留存矩阵",
        dimensions=(0, None),
        measures=(0, None),
        kinds=("cohort",),
    ),
    _chart(
        "rfm_grid",
        "RFM segments",
        "RFM 分群",
        dimensions=(0, None),
        measures=(0, None),
        kinds=("rfm",),
    ),
)


class ChartTypeRegistry:
    """The chart types of one site: the kernel's, then each plugin's."""

    def __init__(self, types: Iterable[tuple[str, ChartType]] = ()) -> None:
        self._types: dict[str, ChartType] = {}
        self._owners: dict[str, str] = {}
        for owner, chart in types:
            self.add(chart, owner)

    def add(self, chart: ChartType, owner: str) -> None:
        """Register ``chart``; a name taken twice is an error naming both owners."""
        if chart.name in self._types:
            raise ValueError(
                f"chart type {chart.name!r} is registered by both "
                f"{self._owners[chart.name]!r} and {owner!r}"
            )
        self._types[chart.name] = chart
        self._owners[chart.name] = owner

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __getitem__(self, name: str) -> ChartType:
        return self._types[name]

    def __len__(self) -> int:
        return len(self._types)

    def all(self) -> list[ChartType]:
        """Every chart type, in registration order."""
        return list(self._types.values())

    def owner(self, name: str) -> str:
        """Who registered the chart type ``name`` (``kernel`` or a plugin's name)."""
        return self._owners[name]

    def check(
        self,
        chart_type: str,
        options: dict[str, object],
        *,
        kind: str,
        dimensions: int,
        measures: int,
        time_first: bool,
        where: str = "chart",
    ) -> None:
        """Refuse (422) a chart that does not exist or does not fit the report's shape."""
        chart = self._types.get(chart_type)
        if chart is None:
            raise ValidationFailed(
                FieldProblem(
                    f"{where}.type",
                    f"unknown chart type {chart_type!r} (known: {', '.join(self._types)})",
                )
            )
        unknown = sorted(set(options) - set(chart.options))
        if unknown:
            raise ValidationFailed(
                FieldProblem(
                    f"{where}.options",
                    f"unknown option {unknown[0]!r} of a {chart_type} chart "
                    f"(known: {', '.join(chart.options)})",
                )
            )
        kinds = chart.kinds or ("aggregate",)
        if kind not in kinds and "*" not in kinds:
            raise ValidationFailed(
                FieldProblem(
                    f"{where}.type",
                    f"a {chart_type} chart cannot draw a {kind} report (it draws: {', '.join(kinds)})",
                )
            )
        if kind != "aggregate":
            return
        for what, count, (low, high) in (
            ("dimensions", dimensions, chart.dimensions),
            ("measures", measures, chart.measures),
        ):
            if count < low or (high is not None and count > high):
                wanted = (
                    f"{low}" if low == high else f"{low} to {high if high is not None else 'any'}"
                )
                raise ValidationFailed(
                    FieldProblem(
                        f"{where}.type",
                        f"a {chart_type} chart needs {wanted} {what}; the report has {count}",
                    )
                )
        if chart.time_dimension and not time_first:
            raise ValidationFailed(
                FieldProblem(
                    f"{where}.type", f"a {chart_type} chart needs a time bucket as first dimension"
                )
            )
