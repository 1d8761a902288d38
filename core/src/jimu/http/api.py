"""The generated REST API: metadata and records of every entity.

Routes (all JSON; errors are problem details):

* ``GET/POST /api/v1/meta/entities``, ``GET/PATCH/DELETE /api/v1/meta/entities/{name}``,
  ``POST /api/v1/meta/entities/{name}/fields``, ``GET /api/v1/meta/migrations``
* ``GET/POST /api/v1/records/{entity}``, ``GET/PATCH/DELETE /api/v1/records/{entity}/{id}``,
  ``POST /api/v1/records/{entity}/bulk``, ``POST /api/v1/records/{entity}/query``

Handlers read the raw body and hand it to the record repository, which
validates it with msgspec structs built from the entity's metadata, so a
body is parsed once and never into an intermediate dict.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post
from litestar.params import FromPath

from jimu.auth import current_access
from jimu.errors import FieldProblem, ValidationFailed
from jimu.http.responses import decode_body, json_response, site_of, whole_number
from jimu.meta import EntityDef, FieldDef
from jimu.site import Site
from jimu.store.records import DEFAULT_LIMIT, ListQuery, SortKey

__all__ = ["api_router"]


def _entity_view(site: Site, name: str) -> dict[str, Any]:
    """An entity's definition as the caller may see it (fields they cannot read left out)."""
    runtime = site.runtime(name)
    view: dict[str, Any] = msgspec.to_builtins(runtime.entity)
    readable = current_access().readable_fields(name)
    if readable is not None:
        view["fields"] = [f for f in view.get("fields", []) if f["name"] in readable]
    view["pending_fields"] = runtime.pending
    view["pending_changes"] = [c.as_dict() for c in site.pending.changes if c.entity == name]
    return view


# -- metadata ---------------------------------------------------------------


@get("/meta/entities")
async def list_entities(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The entities the caller may read, with their fields (merged plugin + site overlay)."""
    site = site_of(request)
    access = current_access()
    names = [name for name in sorted(site.entities) if access.allows(name, "read")]
    return json_response({"data": [_entity_view(site, name) for name in names]})


@post("/meta/entities")
async def create_entity(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create a site-owned entity; its table is created at once (``schema`` right)."""
    current_access().require_admin("schema")
    site = site_of(request)
    entity = decode_body(await request.body(), EntityDef)
    await site.create_entity(entity)
    return json_response(_entity_view(site, entity.name), 201)


@get("/meta/entities/{name:str}")
async def get_entity(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """One entity's definition, with fields waiting on ``jimu migrate``."""
    site = site_of(request)
    site.runtime(name)  # 404 for an unknown entity
    current_access().require(name, "read")
    return json_response(_entity_view(site, name))


@patch("/meta/entities/{name:str}")
async def update_entity(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Change label, description, title field, fields or indexes of an entity (``schema``)."""
    current_access().require_admin("schema")
    site = site_of(request)
    site.runtime(name)
    changes = decode_body(await request.body(), dict[str, Any])
    await site.update_entity(name, changes)
    return json_response(_entity_view(site, name))


@delete("/meta/entities/{name:str}", status_code=200)
async def delete_entity(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Remove a site-owned entity from the model; its table waits for ``jimu migrate``."""
    current_access().require_admin("schema")
    site = site_of(request)
    await site.delete_entity(name)
    return json_response(
        {"deleted": name, "pending_changes": [c.as_dict() for c in site.pending.changes]}
    )


@post("/meta/entities/{name:str}/fields")
async def add_field(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Add a field to a live entity; its column is added at once (``schema`` right)."""
    current_access().require_admin("schema")
    site = site_of(request)
    site.runtime(name)
    definition = decode_body(await request.body(), FieldDef)
    await site.add_field(name, definition)
    return json_response(_entity_view(site, name), 201)


@get("/meta/migrations")
async def pending_migrations(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Destructive schema changes waiting for ``jimu migrate --apply`` (``schema`` right)."""
    current_access().require_admin("schema")
    site = site_of(request)
    return json_response({"data": [change.as_dict() for change in site.pending.changes]})


@get("/meta/plugins")
async def list_plugins(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Plugins loaded on the site (built-in and enabled), with their hooks."""
    site = site_of(request)
    return json_response(
        {
            "data": [
                {
                    **msgspec.to_builtins(plugin.info),
                    "builtin": plugin.builtin,
                    "hooks": plugin.hook_names(),
                }
                for plugin in site.plugins.plugins.values()
            ]
        }
    )


@post("/meta/plugins/{name:str}")
async def enable_plugin(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Enable an installed plugin: create its tables, load its seed data, run its install hook."""
    current_access().require_admin("plugins")
    site = site_of(request)
    await site.enable_plugin(name)
    return json_response({"enabled": site.config.plugins}, 201)


@delete("/meta/plugins/{name:str}", status_code=200)
async def disable_plugin(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Disable a plugin; its tables and data are kept (``plugins`` right)."""
    current_access().require_admin("plugins")
    site = site_of(request)
    await site.disable_plugin(name)
    return json_response({"enabled": site.config.plugins})


# -- records ------------------------------------------------------------------


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _int_param(raw: str | None, name: str, default: int) -> int:
    return default if raw is None else whole_number(raw, name)


def _list_query_from_params(params: Any) -> ListQuery:
    raw_filter = params.get("filter")
    rule = None
    if raw_filter is not None:
        try:
            rule = msgspec.json.decode(raw_filter)
        except msgspec.DecodeError as exc:
            raise ValidationFailed(FieldProblem("filter", f"is not JSON: {exc}")) from exc
    return ListQuery(
        filter=rule,
        sort=[SortKey.parse(key) for key in _split(params.get("sort")) or []],
        fields=_split(params.get("fields")),
        limit=_int_param(params.get("limit"), "limit", DEFAULT_LIMIT),
        cursor=params.get("cursor"),
        count=params.get("count", "capped"),
    )


class _QueryBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    filter: Any = None
    sort: list[str] = msgspec.field(default_factory=list)
    fields: list[str] | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    count: str = "capped"


@get("/records/{entity:str}")
async def list_records(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[bytes]:
    """A page of records: ``filter`` (JsonLogic JSON), ``sort``, ``fields``, ``limit``, ``cursor``, ``count``."""
    site = site_of(request)
    site.runtime(entity)
    page = await site.records.query(entity, _list_query_from_params(request.query_params))
    return json_response(page)


@post("/records/{entity:str}/query")
async def query_records(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[bytes]:
    """Like the list, with the query in a JSON body (for long filters)."""
    site = site_of(request)
    site.runtime(entity)
    body = decode_body(await request.body(), _QueryBody)
    query = ListQuery(
        filter=body.filter,
        sort=[SortKey.parse(key) for key in body.sort],
        fields=body.fields,
        limit=body.limit,
        cursor=body.cursor,
        count=body.count,
    )
    return json_response(await site.records.query(entity, query), 200)


@post("/records/{entity:str}")
async def create_record(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[bytes]:
    """Create one record."""
    site = site_of(request)
    site.runtime(entity)
    form = request.query_params.get("form")
    return json_response(await site.records.create(entity, await request.body(), form=form), 201)


@post("/records/{entity:str}/bulk")
async def bulk_records(request: Request[Any, Any, Any], entity: FromPath[str]) -> Response[bytes]:
    """Create, update and delete many records, all or nothing."""
    site = site_of(request)
    site.runtime(entity)
    return json_response(await site.records.bulk(entity, await request.body()), 200)


@get("/records/{entity:str}/{record_id:int}")
async def get_record(
    request: Request[Any, Any, Any], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    """One record; ``fields`` picks the fields returned."""
    site = site_of(request)
    return json_response(
        await site.records.get(entity, record_id, _split(request.query_params.get("fields")))
    )


@patch("/records/{entity:str}/{record_id:int}")
async def update_record(
    request: Request[Any, Any, Any], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    """Change some fields of one record."""
    site = site_of(request)
    site.runtime(entity)
    form = request.query_params.get("form")
    return json_response(
        await site.records.update(entity, record_id, await request.body(), form=form)
    )


@delete("/records/{entity:str}/{record_id:int}", status_code=200)
async def delete_record(
    request: Request[Any, Any, Any], entity: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    """Delete one record; returns what was deleted."""
    site = site_of(request)
    return json_response(await site.records.delete(entity, record_id))


def api_router() -> Router:
    """The ``/api/v1`` router with the metadata and record routes."""
    return Router(
        path="/api/v1",
        route_handlers=[
            list_entities,
            create_entity,
            get_entity,
            update_entity,
            delete_entity,
            add_field,
            pending_migrations,
            list_plugins,
            enable_plugin,
            disable_plugin,
            list_records,
            query_records,
            create_record,
            bulk_records,
            get_record,
            update_record,
            delete_record,
        ],
    )
