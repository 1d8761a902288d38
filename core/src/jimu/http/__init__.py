"""The HTTP layer: the Litestar app of a site.

:func:`create_app` builds one app for one site. The site's database opens in
the app's event loop at startup and closes at shutdown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State

import jimu
from jimu.auth import current_access
from jimu.http.api import api_router
from jimu.http.auth import auth_router, authenticate
from jimu.http.automation import automation_router
from jimu.http.files import files_router
from jimu.http.forms import forms_router
from jimu.http.io import io_router
from jimu.http.limits import RateLimiter
from jimu.http.openapi import narrow_for, openapi_document
from jimu.http.problems import exception_handlers, problem
from jimu.http.reports import reports_router
from jimu.site import Site

__all__ = ["create_app"]


@get("/schema", include_in_schema=False)
async def schema(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The OpenAPI document of the site's current model, as the caller may use it."""
    site: Site = request.app.state.site
    cache = request.app.state.openapi_cache
    if cache.get("version") != site.model_version:
        cache["version"] = site.model_version
        cache["document"] = openapi_document(site)
        cache["body"] = msgspec.json.encode(cache["document"])
    access = current_access()
    if access.unrestricted:
        return Response(content=cache["body"], media_type="application/json")
    narrowed = narrow_for(cache["document"], site, access)
    return Response(content=msgspec.json.encode(narrowed), media_type="application/json")


@get("/schema/openapi.json", include_in_schema=False)
async def schema_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Alias of ``/schema`` under the conventional file name."""
    return await schema.fn(request)  # type: ignore[no-any-return]


@get("/", include_in_schema=False, opt={"public": True})
async def index(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Where to go from the site's root: its API, its OpenAPI document, its entities."""
    site: Site = request.app.state.site
    return {
        "site": site.config.name,
        "jimu": jimu.__version__,
        "entities": "/api/v1/meta/entities",
        "records": {name: f"/api/v1/records/{name}" for name in sorted(site.entities)},
        "openapi": "/schema",
        "login": "/login",
        "health": "/healthz",
    }


@get("/healthz", include_in_schema=False, opt={"public": True})
async def healthz(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Liveness: the site answers and its database is reachable."""
    site: Site = request.app.state.site
    await site.db.fetch("SELECT 1 AS ok")
    return {"status": "ok", "site": site.config.name}


def _decode_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    return problem(400, f"The request body is not valid JSON: {exc}", request=request)


def create_app(site: Site | Path | str, *, debug: bool = False) -> Litestar:
    """Build the Litestar app serving ``site`` (a loaded site or its folder)."""
    loaded = site if isinstance(site, Site) else Site.load(site)
    handlers: dict[Any, Any] = {msgspec.DecodeError: _decode_error, **exception_handlers()}

    async def open_site() -> None:
        await loaded.open()

    async def close_site() -> None:
        await loaded.close()

    route_handlers: list[Any] = [
        api_router(),
        *auth_router(),
        io_router(),
        files_router(),
        forms_router(),
        reports_router(),
        automation_router(),
        index,
        schema,
        schema_json,
        healthz,
    ]
    route_handlers.extend(loaded.plugins.collect("jimu_routes", site=loaded))
    return Litestar(
        route_handlers=route_handlers,
        on_startup=[open_site],
        on_shutdown=[close_site],
        before_request=authenticate,
        exception_handlers=handlers,
        state=State(
            {
                "site": loaded,
                "openapi_cache": {},
                "form_limiter": RateLimiter(),
                "login_limiter": RateLimiter(),
            }
        ),
        openapi_config=None,
        request_max_body_size=loaded.config.max_body_bytes,
        debug=debug,
    )
