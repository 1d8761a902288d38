"""Saved reports and dashboards of a site, heavy reports as jobs, exports.

:class:`ReportService` is what the HTTP layer (and the CLI, and plugins)
call: it checks definitions before saving them, runs saved reports — a
report with ``cache_seconds`` runs as a background job whose result is kept
and served with its age — keeps dashboards per site and per user
(:func:`jimu.auth.current_actor` is the user), runs all the cards of a
dashboard with its shared parameters, and exports any result to CSV or XLSX.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import zoneinfo
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from jimu.auth import current_access, current_actor
from jimu.errors import FieldProblem, JimuError, ValidationFailed
from jimu.io.export import _csv, _xlsx, _yes_no  # the streaming writers of record exports
from jimu.io.importer import Progress
from jimu.io.jobs import JobOutcome, JobRunner
from jimu.meta import translate
from jimu.meta.reports import NAME_PATTERN, CardDef, DashboardDef, ReportDef
from jimu.reports.engine import ReportEngine, ReportResult
from jimu.reports.params import bind_parameters, check_parameter_def
from jimu.reports.store import SITE_OWNER, ReportStore, cache_key

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["EXPORT_FORMATS", "DashboardView", "ReportExport", "ReportService", "SavedRun"]

EXPORT_FORMATS = ("csv", "xlsx")
_MEDIA = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_RESULT = msgspec.json.Decoder(ReportResult)
_ENCODER = msgspec.json.Encoder(decimal_format="string")


@dataclass
class SavedRun:
    """A saved report's run: its result, or (heavy report, nothing cached yet) its job."""

    result: ReportResult | None
    job: dict[str, Any] | None = None


@dataclass
class ReportExport:
    """A report result ready to stream as a file."""

    filename: str
    media_type: str
    content: AsyncIterator[bytes]


class DashboardView(msgspec.Struct, kw_only=True):
    """A dashboard with the data of each card (or the problem that card has)."""

    dashboard: DashboardDef
    owner: str
    params: dict[str, Any]
    cards: list[dict[str, Any]]


def _principal() -> str:
    actor = current_actor()
    return f"{actor.kind}:{actor.id if actor.id is not None else ''}"


class ReportService:
    """Saved reports, dashboards, heavy-report caching and exports of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.store = ReportStore(site.db)

    @property
    def engine(self) -> ReportEngine:
        """The site's report engine (chart types and report kinds of its plugins)."""
        return ReportEngine.of(self.site)

    # -- reports -------------------------------------------------------------------

    async def save_report(self, report: ReportDef) -> int:
        """Check and save a report of the site (needs the ``reports`` admin right)."""
        current_access().require_admin("reports")
        if report.plugin is not None:
            raise ValidationFailed.field(
                "plugin", "reports saved by the site belong to the site; leave plugin out"
            )
        self.engine.check(report)
        if report.drill is not None and report.drill.report is not None:
            saved = await self.store.reports()
            if report.drill.report not in saved and report.drill.report != report.name:
                raise ValidationFailed.field(
                    "drill.report", f"no saved report named {report.drill.report!r}"
                )
        return await self.store.save_report(report)

    async def run_saved(
        self, name: str, params: Mapping[str, Any], *, refresh: bool = False
    ) -> SavedRun:
        """Run a saved report; a heavy one (``cache_seconds``) from its cache or as a job."""
        report = await self.store.report(name)
        if report.cache_seconds is None:
            return SavedRun(await self.engine.run(report, params))
        # check now, so a bad parameter is a 422 and not a failed job
        self.engine.check(report)
        bound = bind_parameters(report.parameters, params)
        current_access().require(report.entity, "report")
        key = cache_key(name, {k: str(v) for k, v in bound.items()}, _principal())
        cached = await self.store.cached(key)
        now = dt.datetime.now(dt.UTC)
        if cached is not None:
            payload, computed_at = cached
            age = (now - computed_at).total_seconds()
            if age <= report.cache_seconds and not refresh:
                result = _RESULT.decode(payload)
                result.cached = {"computed_at": computed_at, "age_seconds": round(age, 3)}
                return SavedRun(result)
        job = await self._start_job(report, dict(params), key)
        if cached is not None:  # serve the stale result while the job refreshes it
            payload, computed_at = cached
            result = _RESULT.decode(payload)
            result.cached = {
                "computed_at": computed_at,
                "age_seconds": round((now - computed_at).total_seconds(), 3),
                "stale": True,
                "job": job,
            }
            return SavedRun(result, job)
        return SavedRun(None, job)

    async def _start_job(
        self, report: ReportDef, params: dict[str, Any], key: str
    ) -> dict[str, Any]:
        engine = self.engine
        store = self.store

        async def work(job_id: int, report_progress: Callable[[Progress], None]) -> JobOutcome:
            report_progress(Progress(phase="running"))
            result = await engine.run(report, params)
            await store.store_result(key, report.name, _ENCODER.encode(result), result.computed_at)
            report_progress(
                Progress(phase="done", processed=len(result.rows), total=len(result.rows))
            )
            return JobOutcome(
                status="succeeded",
                result={
                    "report": report.name,
                    "rows": len(result.rows),
                    "data_url": self.data_url(report.name),
                },
            )

        runner = JobRunner.of(self.site)
        return await runner.submit(
            "report", report.entity, {"report": report.name, "params": params}, work
        )

    @staticmethod
    def data_url(name: str) -> str:
        """Where a saved report's data is read."""
        return f"/api/v1/reports/{name}/data"

    # -- dashboards ----------------------------------------------------------------

    def _owner(self, scope: str) -> int:
        if scope == "site":
            return SITE_OWNER
        if scope != "user":
            raise ValidationFailed.field("scope", "must be site or user")
        actor = current_actor()
        if actor.id is None or actor.kind not in ("user", "token"):
            raise ValidationFailed.field(
                "scope", "only a signed-in user has dashboards of their own; save it for the site"
            )
        return actor.id

    def _viewer(self) -> int:
        actor = current_actor()
        return actor.id if actor.id is not None and actor.kind in ("user", "token") else SITE_OWNER

    async def check_dashboard(self, dashboard: DashboardDef) -> None:
        """Refuse a dashboard whose cards name unknown reports or leave the grid."""
        if not re.match(NAME_PATTERN, dashboard.name):
            raise ValidationFailed.field(
                "name", f"{dashboard.name!r} is not a valid dashboard name"
            )
        if dashboard.refresh_seconds is not None and dashboard.refresh_seconds < 10:
            raise ValidationFailed.field("refresh_seconds", "must be at least 10")
        for position, parameter in enumerate(dashboard.parameters):
            check_parameter_def(parameter, f"parameters[{position}]")
        reports = await self.store.reports()
        for position, card in enumerate(dashboard.cards):
            where = f"cards[{position}]"
            report = reports.get(card.report)
            if report is None:
                raise ValidationFailed.field(
                    f"{where}.report", f"no saved report named {card.report!r}"
                )
            if card.x < 0 or card.y < 0 or card.w < 1 or card.h < 1 or card.x + card.w > 12:
                raise ValidationFailed.field(
                    where, "a card lies on the 12-column grid: x >= 0, w >= 1, x + w <= 12, h >= 1"
                )
            if card.chart is not None:
                self.engine.check(msgspec.structs.replace(report, chart=card.chart))
            known = {p.name for p in report.parameters}
            unknown = sorted(set(card.params) - known)
            if unknown:
                raise ValidationFailed.field(
                    f"{where}.params.{unknown[0]}", f"report {card.report!r} has no such parameter"
                )

    async def save_dashboard(self, dashboard: DashboardDef, scope: str = "user") -> int:
        """Save a dashboard for the site (``reports`` admin right) or for the acting user."""
        owner = self._owner(scope)
        if owner == SITE_OWNER:
            current_access().require_admin("reports")
        await self.check_dashboard(dashboard)
        return await self.store.save_dashboard(dashboard, owner)

    async def dashboards(self) -> list[dict[str, Any]]:
        """The site's dashboards and the acting user's own."""
        viewer = self._viewer()
        return [
            {"owner": "site" if owner == SITE_OWNER else "user", **msgspec.to_builtins(dashboard)}
            for owner, dashboard in await self.store.dashboards(viewer)
        ]

    async def dashboard(self, name: str) -> tuple[str, DashboardDef]:
        """The acting user's dashboard ``name``, else the site's."""
        owner, dashboard = await self.store.dashboard(name, self._viewer())
        return ("site" if owner == SITE_OWNER else "user"), dashboard

    async def delete_dashboard(self, name: str, scope: str = "user") -> None:
        """Delete the site's or the acting user's dashboard ``name``."""
        owner = self._owner(scope)
        if owner == SITE_OWNER:
            current_access().require_admin("reports")
        await self.store.delete_dashboard(name, owner)

    async def dashboard_data(self, name: str, params: Mapping[str, Any]) -> DashboardView:
        """Every card's data, its report run with the dashboard's shared parameters.

        A card whose report fails (the user may not see it, its entity
        changed) carries that problem instead of data; the other cards still show.
        """
        owner, dashboard = await self.dashboard(name)
        shared = bind_parameters(dashboard.parameters, params)
        raw_shared = {key: params[key] for key in shared if key in params}
        for parameter in dashboard.parameters:
            if parameter.name in shared and parameter.name not in raw_shared:
                raw_shared[parameter.name] = parameter.default
        cards = []
        for card in dashboard.cards:
            cards.append(await self._card(card, raw_shared))
        return DashboardView(dashboard=dashboard, owner=owner, params=raw_shared, cards=cards)

    async def _card(self, card: CardDef, shared: Mapping[str, Any]) -> dict[str, Any]:
        view: dict[str, Any] = msgspec.to_builtins(card)
        try:
            report = await self.store.report(card.report)
            if card.chart is not None:
                report = msgspec.structs.replace(report, chart=card.chart)
            wanted = {p.name for p in report.parameters}
            params = {k: v for k, v in shared.items() if k in wanted}
            params.update(card.params)
            if report.cache_seconds is None:
                view["data"] = await self.engine.run(report, params)
            else:
                run = await self.run_saved(card.report, params)
                view["data"] = run.result
                view["job"] = run.job
        except JimuError as exc:
            view["problem"] = {"status": exc.status, "detail": exc.detail, **exc.extra}
        return view

    # -- export -----------------------------------------------------------------------

    @staticmethod
    def export_check(fmt: str) -> None:
        """Refuse (422) an export format other than CSV and XLSX."""
        if fmt not in EXPORT_FORMATS:
            raise ValidationFailed(
                FieldProblem("format", f"{fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
            )

    def export(self, result: ReportResult, fmt: str) -> ReportExport:
        """Stream ``result`` as CSV (UTF-8 with BOM, Excel-friendly) or XLSX."""
        self.export_check(fmt)
        tz = zoneinfo.ZoneInfo(self.site.config.timezone)
        headers = [column.label for column in result.columns]
        keys = [column.key for column in result.columns]

        def cell(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.astimezone(tz).replace(tzinfo=None)
            if isinstance(value, float):
                return round(value, 10)
            if isinstance(value, decimal.Decimal | int | str | bool | dt.date) or value is None:
                return value
            return str(value)

        async def pages() -> AsyncIterator[list[list[Any]]]:
            for start in range(0, len(result.rows), 1000):
                yield [
                    [cell(row.get(key)) for key in keys]
                    for row in result.rows[start : start + 1000]
                ]

        stamp = dt.datetime.now(tz).strftime("%Y%m%d-%H%M%S")
        filename = f"{result.report}-{stamp}.{fmt}"
        if fmt == "csv":
            content = _csv(headers, pages(), yes_no=_yes_no(self.site.config.locale))
        else:
            title = result.label or result.report
            content = _xlsx(headers, pages(), translate(title, self.site.config.locale))
        return ReportExport(filename=filename, media_type=_MEDIA[fmt], content=content)
