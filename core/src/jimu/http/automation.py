"""Automation routes: definitions, starting runs by hand or by webhook, the run log, the inbox.

* ``GET/POST /api/v1/meta/automations``, ``GET/PUT/DELETE /api/v1/meta/automations/{name}``,
  ``GET /api/v1/meta/automations/{name}/versions``
* ``POST /api/v1/automations/{name}/run`` (manual trigger: ``{"record_ids": [...]}``)
* ``POST /api/v1/automations/{name}/webhook`` (inbound webhook; ``X-Jimu-Signature:
  sha256=<hex HMAC-SHA256 of the body under the trigger's secret>``)
* ``GET /api/v1/automations/runs`` (``?automation=&entity=&record_id=&status=&before=&limit=``),
  ``GET /api/v1/automations/runs/{id}`` (every step: input, outcome, error, timing),
  ``GET /api/v1/automations/{name}/explain?record_id=`` (why a record would or would not start it)
* ``GET /api/v1/inbox`` (the acting user's in-app messages; ``?user_id=`` for the system)
"""

from __future__ import annotations

import hmac
from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath

from jimu.auth import current_access
from jimu.automation.actions import SIGNATURE_HEADER, sign
from jimu.automation.engine import AutomationEngine
from jimu.automation.store import read_time
from jimu.errors import FieldProblem, Unauthorized, ValidationFailed
from jimu.http.responses import decode_body, int_query, json_response, site_of
from jimu.meta.automations import AutomationDef

__all__ = ["automation_router", "engine_of"]


class _ManualRun(msgspec.Struct, forbid_unknown_fields=True):
    record_ids: list[int]


def engine_of(request: Request[Any, Any, Any]) -> AutomationEngine:
    """The automation engine of the app's site (built on first use, after the site opened)."""
    state = request.app.state
    engine: AutomationEngine | None = state.get("automation")
    site = site_of(request)
    if engine is None or engine.site is not site or engine.plugins is not site.plugins:
        engine = AutomationEngine(site)  # plugins changed: their actions and channels too
        state["automation"] = engine
    return engine


def _view(definition: AutomationDef, version: int) -> dict[str, Any]:
    view: dict[str, Any] = msgspec.to_builtins(definition)
    view["version"] = version
    if "secret" in view.get("trigger", {}):
        view["trigger"]["secret"] = "********"  # never handed out again
    return view


# -- definitions ---------------------------------------------------------------------


@get("/meta/automations")
async def list_automations(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every automation of the site with its current version (``automations`` right)."""
    current_access().require_admin("automations")
    engine = engine_of(request)
    return json_response({"data": [_view(d, v) for d, v in await engine.definitions()]})


@post("/meta/automations")
async def create_automation(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create an automation (422 naming the step at fault; 409 when the name is taken)."""
    current_access().require_admin("automations")
    definition = decode_body(await request.body(), AutomationDef)
    version = await engine_of(request).save(definition, create=True)
    return json_response(_view(definition, version), 201)


@get("/meta/automations/{name:str}")
async def get_automation(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """One automation's current definition (``automations`` right)."""
    current_access().require_admin("automations")
    definition, version = await engine_of(request).get(name)
    return json_response(_view(definition, version))


@put("/meta/automations/{name:str}")
async def replace_automation(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """Replace an automation with a new version (runs in flight finish on theirs)."""
    current_access().require_admin("automations")
    definition = decode_body(await request.body(), AutomationDef)
    if definition.name != name:
        raise ValidationFailed.field(
            "name", f"the body names automation {definition.name!r}, the URL {name!r}"
        )
    engine = engine_of(request)
    await engine.get(name)
    if definition.trigger.kind == "webhook" and definition.trigger.secret == "********":
        current, _ = await engine.get(name)
        definition = msgspec.structs.replace(
            definition,
            trigger=msgspec.structs.replace(definition.trigger, secret=current.trigger.secret),
        )
    version = await engine.save(definition)
    return json_response(_view(definition, version))


@delete("/meta/automations/{name:str}", status_code=200)
async def delete_automation(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """Delete an automation: nothing new starts; runs in flight finish."""
    current_access().require_admin("automations")
    await engine_of(request).delete(name)
    return json_response({"deleted": name})


@get("/meta/automations/{name:str}/versions")
async def automation_versions(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """Every version of an automation (``automations`` right)."""
    current_access().require_admin("automations")
    return json_response({"data": await engine_of(request).versions(name)})


# -- starting runs -------------------------------------------------------------------


@post("/automations/{name:str}/run")
async def run_manual(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Start a manual automation for records the caller may change (a button, a selection)."""
    body = decode_body(await request.body(), _ManualRun)
    if not body.record_ids:
        raise ValidationFailed.field("record_ids", "give at least one record id")
    access = current_access()
    if not access.has_admin("automations"):
        site = site_of(request)
        definition, _ = await engine_of(request).get(name)
        entity = definition.trigger.entity
        if entity is None:
            access.require_admin("automations")
        else:
            access.require(entity, "update")
            runtime = site.runtime(entity)
            for record_id in body.record_ids:  # a record the caller cannot see is a 404
                await site.records._fetch_for_update(runtime, record_id, "update")
    runs = await engine_of(request).start_manual(name, body.record_ids)
    return json_response({"runs": runs}, 202)


@post("/automations/{name:str}/webhook", opt={"public": True})
async def run_webhook(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Start a webhook automation; the body must be signed with the trigger's secret."""
    engine = engine_of(request)
    definition, _ = await engine.get(name)
    if definition.trigger.kind != "webhook" or not definition.trigger.secret:
        raise ValidationFailed.field("name", f"automation {name!r} has no webhook trigger")
    body = await request.body()
    given = request.headers.get(SIGNATURE_HEADER.lower(), "")
    if not hmac.compare_digest(given, sign(definition.trigger.secret, body)):
        raise Unauthorized(
            f"the {SIGNATURE_HEADER} header is missing or does not match the body "
            "(sha256=<hex HMAC-SHA256 of the body under the webhook's secret>)"
        )
    try:
        payload = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError as exc:
        raise ValidationFailed(FieldProblem("$", f"the body is not JSON: {exc}")) from exc
    if not isinstance(payload, dict):
        raise ValidationFailed.field("$", "the body must be a JSON object")
    run = await engine.start_webhook(name, payload)
    return json_response({"run": run}, 202)


# -- the run log ---------------------------------------------------------------------


@get("/automations/runs")
async def list_runs(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Runs, newest first; filter by automation, entity, record_id, status; page with before."""
    current_access().require_admin("automations")
    query = request.query_params
    given = int_query(request, "limit")
    limit = 50 if given is None else given
    if not 1 <= limit <= 500:
        raise ValidationFailed.field("limit", "must be from 1 to 500")
    runs = await engine_of(request).runs(
        automation=query.get("automation"),
        entity=query.get("entity"),
        record_id=int_query(request, "record_id"),
        status=query.get("status"),
        before=int_query(request, "before"),
        limit=limit,
    )
    return json_response({"data": runs})


@get("/automations/runs/{run_id:int}")
async def get_run(request: Request[Any, Any, Any], run_id: FromPath[int]) -> Response[bytes]:
    """One run and each of its steps: input, outcome, error and timing."""
    current_access().require_admin("automations")
    return json_response(await engine_of(request).run_detail(run_id))


@get("/automations/{name:str}/explain")
async def explain(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Why a record would or would not start an automation now, and its runs so far."""
    current_access().require_admin("automations")
    record_id = int_query(request, "record_id")
    if record_id is None:
        raise ValidationFailed.field("record_id", "give the record's id")
    return json_response(await engine_of(request).explain(name, record_id))


# -- the inbox -------------------------------------------------------------------------


@get("/inbox")
async def inbox(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The in-app messages of the acting user (newest first)."""
    from jimu.auth import current_actor

    actor = current_actor()
    user_id = actor.id if actor.kind in ("user", "token") else int_query(request, "user_id")
    if user_id is None:
        raise ValidationFailed.field("user_id", "give the user whose inbox to read")
    site = site_of(request)
    rows = await site.db.fetch(
        "SELECT id, title, body, entity, record_id, created_at, read_at FROM jimu_inbox "
        "WHERE user_id = {} ORDER BY id DESC LIMIT 100",
        [user_id],
    )
    return json_response(
        {
            "data": [
                {
                    **row,
                    "created_at": read_time(row["created_at"]),
                    "read_at": read_time(row["read_at"]),
                }
                for row in rows
            ]
        }
    )


def automation_router() -> Router:
    """The ``/api/v1`` routes of automations."""
    return Router(
        path="/api/v1",
        route_handlers=[
            list_automations,
            create_automation,
            get_automation,
            replace_automation,
            delete_automation,
            automation_versions,
            run_manual,
            run_webhook,
            list_runs,
            get_run,
            explain,
            inbox,
        ],
    )
