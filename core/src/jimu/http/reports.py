"""HTTP routes of the report engine: ad-hoc runs, saved reports, exports, dashboards.

* ``POST /api/v1/reports/run`` runs a definition sent in the body
  (``{"report": {...}, "params": {...}, "format": "json"|"csv"|"xlsx"}``);
* ``GET/POST /api/v1/meta/reports``, ``GET/DELETE /api/v1/meta/reports/{name}``;
* ``GET /api/v1/reports/{name}/data?<params>`` runs a saved report (a heavy
  one answers from its cache with the result's age, or 202 with the job
  computing it; ``refresh=true`` recomputes);
* ``GET /api/v1/reports/{name}/export?format=csv|xlsx&<params>``;
* ``GET /api/v1/meta/chart-types``, ``GET /api/v1/meta/report-kinds``;
* ``GET/POST /api/v1/meta/dashboards`` (``scope=user|site``),
  ``GET/DELETE /api/v1/meta/dashboards/{name}``,
  ``GET /api/v1/dashboards/{name}/data?<shared params>``.

Query-string values are report parameters, except the reserved ``format``,
``refresh`` and ``scope``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath
from litestar.response import Stream

from jimu.auth import current_access
from jimu.http.responses import content_disposition, decode_body, json_response, site_of
from jimu.meta import translate
from jimu.meta.reports import DashboardDef, ReportDef
from jimu.reports import ReportService
from jimu.reports.service import ReportExport

__all__ = ["report_paths", "reports_router"]

_RESERVED = {"format", "refresh", "scope"}


class _RunBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    report: ReportDef
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    format: str = "json"


def _service(request: Request[Any, Any, Any]) -> ReportService:
    return ReportService(site_of(request))


def _params(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {key: value for key, value in request.query_params.items() if key not in _RESERVED}


def _flag(request: Request[Any, Any, Any], name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def _stream(export: ReportExport) -> Stream:
    return Stream(
        content=export.content,
        media_type=export.media_type,
        headers={"Content-Disposition": content_disposition("attachment", export.filename)},
    )


@post("/reports/run", status_code=200)
async def run_report(request: Request[Any, Any, Any]) -> Response[bytes] | Stream:
    """Run a report definition sent in the body; ``format`` csv/xlsx streams a file."""
    service = _service(request)
    body = decode_body(await request.body(), _RunBody)
    result = await service.engine.run(body.report, body.params)
    if body.format == "json":
        return json_response(result)
    return _stream(service.export(result, body.format))


@get("/meta/reports")
async def list_reports(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The site's saved reports."""
    reports = await _service(request).store.reports()
    return json_response({"data": list(reports.values())})


@post("/meta/reports")
async def save_report(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create or replace a saved report (checked against the model and its chart first)."""
    service = _service(request)
    report = decode_body(await request.body(), ReportDef)
    version = await service.save_report(report)
    return json_response({**msgspec.to_builtins(report), "version": version}, 201)


@get("/meta/reports/{name:str}")
async def get_report(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """One saved report's definition."""
    return json_response(await _service(request).store.report(name))


@delete("/meta/reports/{name:str}", status_code=200)
async def delete_report(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Delete a saved report and its cached results."""
    service = _service(request)
    current_access().require_admin("reports")
    await service.store.delete_report(name)
    return json_response({"deleted": name})


@get("/reports/{name:str}/data")
async def report_data(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """A saved report's result for the query-string parameters (202 while a job computes it)."""
    run = await _service(request).run_saved(
        name, _params(request), refresh=_flag(request, "refresh")
    )
    if run.result is None:
        return json_response({"job": run.job}, 202)
    return json_response(run.result)


@get("/reports/{name:str}/export")
async def report_export(request: Request[Any, Any, Any], name: FromPath[str]) -> Stream:
    """A saved report's result as a CSV or XLSX file (``format``)."""
    service = _service(request)
    report = await service.store.report(name)
    current_access().require(report.entity, "export")
    fmt = request.query_params.get("format", "csv")
    service.export_check(fmt)
    result = await service.engine.run(report, _params(request))
    return _stream(service.export(result, fmt))


@get("/meta/chart-types")
async def chart_types(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The chart types of the site and the data shape each needs."""
    engine = _service(request).engine
    locale = site_of(request).config.locale
    return json_response(
        {
            "data": [
                {
                    **msgspec.to_builtins(chart),
                    "label": translate(chart.label, locale),
                    "owner": engine.charts.owner(chart.name),
                }
                for chart in engine.charts.all()
            ]
        }
    )


@get("/meta/report-kinds")
async def report_kinds(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The report kinds of the site (``aggregate`` and the registered ones)."""
    engine = _service(request).engine
    locale = site_of(request).config.locale
    kinds: list[dict[str, Any]] = [
        {
            "name": "aggregate",
            "label": translate({"en": "Group-by", "zh-CN": "分组汇总"}, locale),
            "owner": "kernel",
        }
    ]
    for owner, kind in engine.kinds.all():
        kinds.append(
            {
                "name": kind.name,
                "label": translate(kind.label, locale),
                "description": kind.description,
                "owner": owner,
                "options": msgspec.json.schema(kind.options_type),
            }
        )
    return json_response({"data": kinds})


@get("/meta/dashboards")
async def list_dashboards(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The site's dashboards and the signed-in user's own."""
    return json_response({"data": await _service(request).dashboards()})


@post("/meta/dashboards")
async def save_dashboard(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Save a dashboard for the user (``scope=user``, the default) or the site (``scope=site``)."""
    service = _service(request)
    dashboard = decode_body(await request.body(), DashboardDef)
    scope = request.query_params.get("scope", "user")
    version = await service.save_dashboard(dashboard, scope)
    return json_response(
        {"owner": scope, **msgspec.to_builtins(dashboard), "version": version}, 201
    )


@get("/meta/dashboards/{name:str}")
async def get_dashboard(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """The user's dashboard ``name``, else the site's."""
    owner, dashboard = await _service(request).dashboard(name)
    return json_response({"owner": owner, **msgspec.to_builtins(dashboard)})


@delete("/meta/dashboards/{name:str}", status_code=200)
async def delete_dashboard(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Delete the user's (``scope=user``) or the site's (``scope=site``) dashboard."""
    scope = request.query_params.get("scope", "user")
    await _service(request).delete_dashboard(name, scope)
    return json_response({"deleted": name, "owner": scope})


@get("/dashboards/{name:str}/data")
async def dashboard_data(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Every card of a dashboard with its data, for the shared query-string parameters."""
    view = await _service(request).dashboard_data(name, _params(request))
    return json_response(view)


def _operation(summary: str, status: str = "200", *, path: str | None = None) -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["reports"],
        "responses": {
            status: {"description": "OK"},
            "403": {"description": "Not allowed (action, field or admin right)", **problem},
            "404": {"description": "Unknown report or dashboard", **problem},
            "422": {"description": "Invalid definition or parameter, naming it", **problem},
        },
    }
    if path is not None:
        operation["parameters"] = [
            {"name": path, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return operation


def report_paths() -> dict[str, Any]:
    """The OpenAPI paths of the report routes."""
    return {
        "/api/v1/reports/run": {
            "post": _operation("Run a report definition (JSON, or a CSV/XLSX file)")
        },
        "/api/v1/meta/reports": {
            "get": _operation("List saved reports"),
            "post": _operation("Create or replace a saved report", "201"),
        },
        "/api/v1/meta/reports/{name}": {
            "get": _operation("Get a saved report", path="name"),
            "delete": _operation("Delete a saved report", path="name"),
        },
        "/api/v1/reports/{name}/data": {
            "get": {
                **_operation("A saved report's result (202 while a job computes it)", path="name"),
                "x-query": "report parameters; refresh=true recomputes a cached result",
            }
        },
        "/api/v1/reports/{name}/export": {
            "get": _operation("A saved report's result as CSV or XLSX (format)", path="name")
        },
        "/api/v1/meta/chart-types": {"get": _operation("Chart types and their data shapes")},
        "/api/v1/meta/report-kinds": {"get": _operation("Report kinds and their options")},
        "/api/v1/meta/dashboards": {
            "get": _operation("The site's dashboards and the user's own"),
            "post": _operation("Save a dashboard (scope=user or site)", "201"),
        },
        "/api/v1/meta/dashboards/{name}": {
            "get": _operation("Get a dashboard (the user's, else the site's)", path="name"),
            "delete": _operation("Delete a dashboard (scope=user or site)", path="name"),
        },
        "/api/v1/dashboards/{name}/data": {
            "get": _operation("Every card of a dashboard with its data", path="name")
        },
    }


def reports_router() -> Router:
    """The ``/api/v1`` routes of reports and dashboards."""
    return Router(
        path="/api/v1",
        route_handlers=[
            run_report,
            list_reports,
            save_report,
            get_report,
            delete_report,
            report_data,
            report_export,
            chart_types,
            report_kinds,
            list_dashboards,
            save_dashboard,
            get_dashboard,
            delete_dashboard,
            dashboard_data,
        ],
    )
