"""The report engine: report definitions compiled to SQL, chart types, report kinds,
dashboards.

* :class:`ReportEngine` (``ReportEngine.of(site)``) checks a
  :class:`~jimu.meta.reports.ReportDef` against the site's model and its
  chart, and runs it as one SQL query with the acting user's permissions;
* :class:`ReportKind` is the base of analyses that are not one group-by
  (the kernel's ``funnel``, ``cohort`` and ``rfm``; plugins add more with
  ``jimu_report_kinds``); :class:`ChartType` describes a chart and the data
  shape it needs (``jimu_chart_types``);
* :class:`ReportService` runs saved reports (heavy ones as background jobs
  with a cached result), keeps dashboards per site and per user, and exports
  results to CSV and XLSX.
"""

from __future__ import annotations

from jimu.reports.charts import BUILTIN_CHART_TYPES, ChartType, ChartTypeRegistry
from jimu.reports.engine import ReportEngine, ReportResult
from jimu.reports.kinds import KindRun, ReportKind, ReportKindRegistry, ResultColumn
from jimu.reports.service import ReportService

__all__ = [
    "BUILTIN_CHART_TYPES",
    "ChartType",
    "ChartTypeRegistry",
    "KindRun",
    "ReportEngine",
    "ReportKind",
    "ReportKindRegistry",
    "ReportResult",
    "ReportService",
    "ResultColumn",
]
