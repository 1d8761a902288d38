"""HTTP routes of import and export (see :mod:`jimu.io`).

* ``POST /api/v1/records/{entity}/import`` — a file (multipart field ``file``,
  or the raw body with ``?filename=``); options as query parameters or form
  fields. 200 with what was imported, 422 when bad rows stopped it, 202 with
  a job when the file is large (or ``background=true``).
* ``GET|POST /api/v1/records/{entity}/export`` — the list as CSV or XLSX.
* ``GET /api/v1/imports/{id}``, ``GET /api/v1/imports/{id}/report`` — an
  import's summary and its error report (CSV).
* ``GET /api/v1/records/{entity}/import/mappings``, ``GET|PUT|DELETE
  .../mappings/{name}`` — saved header-to-field mappings.
* ``GET /api/v1/jobs/{id}`` — a background job and its progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Stream

from jimu.errors import FieldProblem, ValidationFailed
from jimu.http.problems import problem
from jimu.http.responses import (
    content_disposition,
    decode_body,
    header_filename,
    json_response,
    site_of,
)
from jimu.io import (
    ExportOptions,
    ImportOptions,
    ImportStore,
    JobOutcome,
    JobRunner,
    MappingStore,
    Progress,
    Source,
    import_file,
    open_export,
    report_csv,
)
from jimu.io.mapping import parse_mapping
from jimu.store.records import SortKey

__all__ = ["BACKGROUND_BYTES", "MAX_IMPORT_BYTES", "io_router"]

#: Largest file an import accepts over HTTP.
MAX_IMPORT_BYTES = 200 * 1024 * 1024
#: Files larger than this are imported as a background job (unless ``background=false``).
BACKGROUND_BYTES = 2 * 1024 * 1024

_IMPORT_EXTRA = ("filename", "background")


# -- import -----------------------------------------------------------------------------


async def _upload(request: Request[Any, Any, Any]) -> tuple[Source, dict[str, Any]]:
    """The uploaded file and the options sent with it (query string, then form fields)."""
    params: dict[str, Any] = dict(request.query_params)
    content_type, _ = request.content_type
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = None
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if upload is not None or name != "file":
                    raise ValidationFailed(
                        FieldProblem(name, "send one file, in the form field 'file'")
                    )
                upload = value
            else:
                params[name] = value
        if upload is None:
            raise ValidationFailed(
                FieldProblem("file", "no file: send it in the form field 'file'")
            )
        data = await upload.read()
        filename = str(params.get("filename") or upload.filename or "upload")
    else:
        data = await request.body()
        header = request.headers.get("content-disposition", "")
        filename = str(params.get("filename") or header_filename(header) or "upload")
    if not data:
        raise ValidationFailed(FieldProblem("file", "is empty"))
    return Source(data=data, filename=filename), params


@post("/records/{entity:str}/import", request_max_body_size=MAX_IMPORT_BYTES)
async def import_records(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[Any]:
    """Import a CSV or spreadsheet file into ``entity``."""
    site = site_of(request)
    site.runtime(entity)
    source, params = await _upload(request)
    options = ImportOptions.from_params(params, ignore=_IMPORT_EXTRA)
    background = str(params.get("background", "auto")).lower()
    if background not in {"auto", "true", "false", "1", "0", "yes", "no"}:
        raise ValidationFailed(FieldProblem("background", "must be auto, true or false"))
    in_background = background in {"true", "1", "yes"} or (
        background == "auto" and len(source.data) > BACKGROUND_BYTES
    )
    if in_background:
        if options.mapping_name:  # a missing saved mapping is a 404 now, not a failed job later
            await MappingStore(site.db).get(entity, options.mapping_name)

        async def work(job_id: int, report: Callable[[Progress], None]) -> JobOutcome:
            outcome = await import_file(
                site, entity, source, options, progress=report, job_id=job_id
            )
            return JobOutcome(
                status="succeeded" if outcome.ok else "failed",
                result=outcome.summary(),
                error=None if outcome.ok else outcome.detail,
            )

        job = await JobRunner.of(site).submit(
            "import",
            entity,
            {"file": source.filename, "bytes": len(source.data), "options": params},
            work,
        )
        return json_response({"job": job}, 202, headers={"Location": job["url"]})
    outcome = await import_file(site, entity, source, options)
    summary = outcome.summary()
    if outcome.status == "failed" and not options.dry_run:
        extra: dict[str, Any] = {
            "errors": [{**error, "field": error["field"] or "$"} for error in outcome.errors[:100]],
            "import": summary,
        }
        return problem(422, outcome.detail, request=request, **extra)
    return json_response(summary)


@get("/imports/{import_id:int}")
async def get_import(request: Request[Any, Any, Any], import_id: FromPath[int]) -> Response[bytes]:
    """What an import did, with its first problems."""
    summary, _ = await ImportStore(site_of(request).db).get(import_id)
    return json_response(summary)


@get("/imports/{import_id:int}/report")
async def import_report(
    request: Request[Any, Any, Any], import_id: FromPath[int]
) -> Response[bytes]:
    """Every problem of an import, as a CSV file."""
    site = site_of(request)
    _, errors = await ImportStore(site.db).get(import_id)
    return Response(
        content=report_csv(errors, site.config.locale),
        media_type="text/csv",
        headers={
            "Content-Disposition": content_disposition(
                "attachment", f"import-{import_id}-errors.csv"
            )
        },
    )


# -- saved mappings ---------------------------------------------------------------------


@get("/records/{entity:str}/import/mappings")
async def list_mappings(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[bytes]:
    """The saved mappings of ``entity``."""
    site = site_of(request)
    site.runtime(entity)
    return json_response({"data": await MappingStore(site.db).saved(entity)})


@get("/records/{entity:str}/import/mappings/{name:str}")
async def get_mapping(
    request: Request[Any, Any, Any], entity: FromPath[str], name: FromPath[str]
) -> Response[bytes]:
    """One saved mapping."""
    site = site_of(request)
    site.runtime(entity)
    return json_response({"name": name, "columns": await MappingStore(site.db).get(entity, name)})


class _MappingBody(msgspec.Struct, forbid_unknown_fields=True):
    columns: dict[str, str | None]


@put("/records/{entity:str}/import/mappings/{name:str}")
async def save_mapping(
    request: Request[Any, Any, Any], entity: FromPath[str], name: FromPath[str]
) -> Response[bytes]:
    """Save a mapping (``{"columns": {header: field or null}}``) under ``name``."""
    site = site_of(request)
    rt = site.runtime(entity)
    payload = decode_body(await request.body(), _MappingBody)
    columns = parse_mapping(payload.columns, "columns")
    for header, target in columns.items():
        if target is not None and target != "id" and target not in rt.fields:
            raise ValidationFailed(
                FieldProblem(f"columns.{header}", f"{entity} has no field {target!r}")
            )
    await MappingStore(site.db).save(entity, name, columns)
    return json_response({"name": name, "columns": columns})


@delete("/records/{entity:str}/import/mappings/{name:str}", status_code=200)
async def delete_mapping(
    request: Request[Any, Any, Any], entity: FromPath[str], name: FromPath[str]
) -> Response[bytes]:
    """Forget a saved mapping."""
    site = site_of(request)
    site.runtime(entity)
    await MappingStore(site.db).delete(entity, name)
    return json_response({"deleted": name})


# -- jobs -------------------------------------------------------------------------------


@get("/jobs/{job_id:int}")
async def get_job(request: Request[Any, Any, Any], job_id: FromPath[int]) -> Response[bytes]:
    """A background job: status, progress, result."""
    return json_response(await JobRunner.of(site_of(request)).view(job_id))


# -- export -----------------------------------------------------------------------------


def _split(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in str(value).split(",") if part.strip()]


class _ExportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: str = "csv"
    filter: Any = None
    sort: list[str] = msgspec.field(default_factory=list)
    fields: list[str] | None = None
    header: str = "label"


async def _stream(request: Request[Any, Any, Any], entity: str, options: ExportOptions) -> Stream:
    export = await open_export(site_of(request), entity, options)
    return Stream(
        content=export.content,
        media_type=export.media_type,
        headers={"Content-Disposition": content_disposition("attachment", export.filename)},
    )


_EXPORT_PARAMS = {"format", "filter", "sort", "fields", "header"}


@get("/records/{entity:str}/export")
async def export_get(request: Request[Any, Any, Any], entity: FromPath[str]) -> Stream:
    """The list (``filter``, ``sort``, ``fields``) as a CSV or XLSX file (``format``)."""
    params = request.query_params
    unknown = sorted(set(params) - _EXPORT_PARAMS)
    if unknown:
        raise ValidationFailed(
            FieldProblem(
                unknown[0], f"unknown parameter (known: {', '.join(sorted(_EXPORT_PARAMS))})"
            )
        )
    rule = None
    if params.get("filter") is not None:
        try:
            rule = msgspec.json.decode(params["filter"])
        except msgspec.DecodeError as exc:
            raise ValidationFailed(FieldProblem("filter", f"is not JSON: {exc}")) from exc
    options = ExportOptions(
        format=str(params.get("format", "csv")).lower(),
        filter=rule,
        sort=[SortKey.parse(key) for key in _split(params.get("sort")) or []],
        fields=_split(params.get("fields")),
        header=str(params.get("header", "label")),
    )
    return await _stream(request, entity, options)


@post("/records/{entity:str}/export", status_code=200)
async def export_post(request: Request[Any, Any, Any], entity: FromPath[str]) -> Stream:
    """Like ``GET .../export``, with the query as a JSON body (for long filters)."""
    site_of(request).runtime(entity)
    payload = decode_body(await request.body(), _ExportBody)
    options = ExportOptions(
        format=payload.format.lower(),
        filter=payload.filter,
        sort=[SortKey.parse(key) for key in payload.sort],
        fields=payload.fields,
        header=payload.header,
    )
    return await _stream(request, entity, options)


def io_router() -> Router:
    """The ``/api/v1`` routes of import, export and jobs."""
    return Router(
        path="/api/v1",
        route_handlers=[
            import_records,
            get_import,
            import_report,
            list_mappings,
            get_mapping,
            save_mapping,
            delete_mapping,
            get_job,
            export_get,
            export_post,
        ],
    )
