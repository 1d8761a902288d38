"""Form routes: editing forms, rendering and submitting them, public forms.

* ``GET/POST /api/v1/meta/forms``, ``GET/PUT/DELETE /api/v1/meta/forms/{name}``
* ``GET /api/v1/forms/{name}`` (definition and its entity's fields, for rendering),
  ``POST /api/v1/forms/{name}/validate?step=N``, ``POST /api/v1/forms/{name}/submit``,
  ``PATCH /api/v1/forms/{name}/records/{id}``
* ``GET /api/v1/public/forms/{name}``, ``POST .../validate``, ``POST .../submit``:
  anonymous, only for forms with ``public.enabled``, rate limited per client
  address, with an optional captcha (``X-Captcha-Token``, checked by the
  ``jimu_verify_captcha`` hook).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.params import FromPath

from jimu.auth import Access, EntityGrant, RoleDef, acting_as, current_access, current_actor
from jimu.errors import (
    Conflict,
    FieldProblem,
    JimuError,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from jimu.forms import CompiledForm
from jimu.http.limits import RateLimiter
from jimu.http.responses import decode_body, int_query, json_response, site_of
from jimu.meta import translate
from jimu.meta.forms import FormDef
from jimu.site import Site

__all__ = ["forms_router"]


class CaptchaUnavailable(JimuError):
    """A form asks for a captcha but no enabled plugin verifies one (HTTP 503)."""

    status = 503
    title = "Captcha unavailable"
    type_suffix = "captcha-unavailable"


def _form_view(site: Site, form: CompiledForm) -> dict[str, Any]:
    runtime = site.runtime(form.definition.entity)
    fields = {}
    for name in form.fields:
        definition = runtime.entity.field(name)
        assert definition is not None
        field_type = site.plugins.field_types[definition.type]
        fields[name] = {
            "type": definition.type,
            "storage": field_type.storage_for(definition),
            "widget": field_type.widget,
            "required": definition.required,
            "label": definition.label,
            "options": definition.options,
        }
    return {"form": msgspec.to_builtins(form.definition), "fields": fields}


def _form(site: Site, name: str) -> CompiledForm:
    form = site.forms.get(name)
    if form is None:
        if name in site.broken_forms:
            raise NotFound(f"form {name!r} no longer fits its entity: {site.broken_forms[name]}")
        raise NotFound(f"no form named {name!r}")
    return form


def _step(request: Request[Any, Any, Any], form: CompiledForm) -> int | None:
    step = int_query(request, "step")
    if step is None:
        return None
    if not 0 <= step < len(form.definition.pages):
        raise ValidationFailed.field("step", f"must be from 0 to {len(form.definition.pages) - 1}")
    return step


async def _validate(
    site: Site, form: CompiledForm, request: Request[Any, Any, Any]
) -> dict[str, Any]:
    runtime = site.runtime(form.definition.entity)
    values = site.records.decode_input(runtime, await request.body(), partial=True)
    form.check(values, before=None, locale=site.config.locale, step=_step(request, form))
    return {"valid": True}


# -- editing forms ------------------------------------------------------------------


@get("/meta/forms")
async def list_forms(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Every form of the site (plugins' and the site's own), and forms that broke."""
    site = site_of(request)
    return json_response(
        {
            "data": [msgspec.to_builtins(f.definition) for _, f in sorted(site.forms.items())],
            "broken": site.broken_forms,
        }
    )


@post("/meta/forms")
async def create_form(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create a form (``schema`` right; 422 naming the part at fault; 409 when taken)."""
    current_access().require_admin("schema")
    site = site_of(request)
    form = decode_body(await request.body(), FormDef)
    if form.name in site.forms:
        raise Conflict(f"a form named {form.name!r} already exists; PUT to replace it")
    compiled = await site.save_form(form)
    return json_response(msgspec.to_builtins(compiled.definition), 201)


@get("/meta/forms/{name:str}")
async def get_form_definition(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """One form's definition."""
    return json_response(msgspec.to_builtins(_form(site_of(request), name).definition))


@put("/meta/forms/{name:str}")
async def replace_form(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Replace a form (a plugin's form is replaced by a site copy; the plugin's stays intact)."""
    current_access().require_admin("schema")
    site = site_of(request)
    form = decode_body(await request.body(), FormDef)
    if form.name != name:
        raise ValidationFailed.field("name", f"the body names form {form.name!r}, the URL {name!r}")
    compiled = await site.save_form(form)
    return json_response(msgspec.to_builtins(compiled.definition))


@delete("/meta/forms/{name:str}", status_code=200)
async def delete_form(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Delete one of the site's forms (``schema`` right)."""
    current_access().require_admin("schema")
    await site_of(request).delete_form(name)
    return json_response({"deleted": name})


# -- using forms ---------------------------------------------------------------------


@get("/forms/{name:str}")
async def render_form(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """A form with its fields' types, widgets and options, for rendering."""
    site = site_of(request)
    return json_response(_form_view(site, _form(site, name)))


@post("/forms/{name:str}/validate")
async def validate_form(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Check a submission (or one step of it, ``?step=N``) without writing anything."""
    site = site_of(request)
    return json_response(await _validate(site, _form(site, name), request))


@post("/forms/{name:str}/submit")
async def submit_form(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    """Create a record through a form."""
    site = site_of(request)
    form = _form(site, name)
    record = await site.records.create(form.definition.entity, await request.body(), form=name)
    return json_response(record, 201)


@patch("/forms/{name:str}/records/{record_id:int}")
async def update_through_form(
    request: Request[Any, Any, Any], name: FromPath[str], record_id: FromPath[int]
) -> Response[bytes]:
    """Change a record through a form (its read-only and visibility rules apply)."""
    site = site_of(request)
    form = _form(site, name)
    record = await site.records.update(
        form.definition.entity, record_id, await request.body(), form=name
    )
    return json_response(record)


# -- public forms --------------------------------------------------------------------


def _public_form(site: Site, name: str) -> CompiledForm:
    form = site.forms.get(name)
    public = form.definition.public if form is not None else None
    if form is None or public is None or not public.enabled:
        raise NotFound(f"no public form named {name!r}")  # never reveal private forms
    return form


async def _guard(request: Request[Any, Any, Any], site: Site, form: CompiledForm) -> None:
    public = form.definition.public
    assert public is not None
    client = request.client.host if request.client else "unknown"
    limiter: RateLimiter = request.app.state.form_limiter
    wait = limiter.check((form.name, client), public.rate_limit, public.window_seconds)
    if wait is not None:
        seconds = int(wait) + 1
        raise TooManyRequests(
            f"too many submissions of form {form.name!r} from this address; try again in {seconds} s",
            seconds,
        )
    if public.captcha:
        token = request.headers.get("x-captcha-token", "")
        results = await site.plugins.call_async(
            "jimu_verify_captcha", site=site, form=form.definition, token=token, client=client
        )
        verdict = next((result for result in results if result is not None), None)
        if verdict is None:
            raise CaptchaUnavailable(
                "this form asks for a captcha, but no enabled plugin verifies captchas"
            )
        if not verdict:
            raise ValidationFailed(
                FieldProblem("captcha", "the captcha answer is missing or wrong")
            )


@get("/public/forms/{name:str}", opt={"public": True})
async def render_public_form(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """A public form for rendering (anonymous)."""
    site = site_of(request)
    return json_response(_form_view(site, _public_form(site, name)))


@post("/public/forms/{name:str}/validate", opt={"public": True})
async def validate_public_form(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """Check a step of a public form (anonymous; not rate limited, writes nothing)."""
    site = site_of(request)
    return json_response(await _validate(site, _public_form(site, name), request))


@post("/public/forms/{name:str}/submit", opt={"public": True})
async def submit_public_form(
    request: Request[Any, Any, Any], name: FromPath[str]
) -> Response[bytes]:
    """Submit a public form anonymously: rate limited, captcha when asked, then the form's rules."""
    site = site_of(request)
    form = _public_form(site, name)
    await _guard(request, site, form)
    entity = form.definition.entity
    # the anonymous public may create this entity's records with this form's fields, nothing else
    grant = EntityGrant(
        actions=["create"], fields=dict.fromkeys(form.fields, "write"), default_field="none"
    )
    access = Access(site, roles=[RoleDef(name="public_form", grants={entity: grant})])
    with acting_as(current_actor(), access):
        record = await site.records.create(entity, await request.body(), form=name)
    public = form.definition.public
    assert public is not None
    return json_response(
        {
            "id": record["id"],
            "message": translate(public.success_message, site.config.locale, "Thank you!"),
        },
        201,
    )


def forms_router() -> Router:
    """The ``/api/v1`` routes of forms."""
    return Router(
        path="/api/v1",
        route_handlers=[
            list_forms,
            create_form,
            get_form_definition,
            replace_form,
            delete_form,
            render_form,
            validate_form,
            submit_form,
            update_through_form,
            render_public_form,
            validate_public_form,
            submit_public_form,
        ],
    )
