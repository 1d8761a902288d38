"""The OpenAPI document of a site, generated from its live model.

Each entity gets its own record schemas (what a create accepts, what a patch
accepts, what a read returns) from the same msgspec structs that validate
requests, so the document cannot drift from the behaviour. It is rebuilt when
the model changes. Each caller sees it narrowed to what they may do
(:func:`narrow_for`).
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

import jimu
from jimu.auth import ACTIONS, Access
from jimu.http.reports import report_paths
from jimu.meta import translate
from jimu.site import Site

__all__ = ["narrow_for", "openapi_document"]

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _responses(ok: dict[str, Any], status: str = "200") -> dict[str, Any]:
    problem = {"content": {"application/problem+json": {"schema": _PROBLEM}}}
    return {
        status: ok,
        "400": {"description": "Malformed JSON", **problem},
        "404": {"description": "Unknown entity or record", **problem},
        "409": {"description": "Conflict (a unique value taken, a name in use)", **problem},
        "413": {"description": "Body too large", **problem},
        "422": {"description": "Invalid input, naming the field", **problem},
    }


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _operation(summary: str, status: str = "200", *, named: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["metadata"],
        "responses": _responses({"description": "OK"}, status),
    }
    if named:
        operation["parameters"] = [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return operation


def _metadata_paths() -> dict[str, Any]:
    """The routes that change the model and the site's plugins."""
    return {
        "/api/v1/meta/entities": {
            "get": _operation("List entities"),
            "post": _operation("Create an entity", "201"),
        },
        "/api/v1/meta/entities/{name}": {
            "get": _operation("Get an entity", named=True),
            "patch": _operation("Change an entity (destructive parts wait)", named=True),
            "delete": _operation("Delete a site-owned entity", named=True),
        },
        "/api/v1/meta/entities/{name}/fields": {
            "post": _operation("Add a field to a live entity", "201", named=True),
        },
        "/api/v1/meta/migrations": {"get": _operation("Schema changes waiting for jimu migrate")},
        "/api/v1/meta/plugins": {"get": _operation("Plugins loaded on the site")},
        "/api/v1/meta/automations": {
            "get": _operation("List automations"),
            "post": _operation("Create an automation (422 names the step at fault)", "201"),
        },
        "/api/v1/meta/automations/{name}": {
            "get": _operation("Get an automation", named=True),
            "put": _operation("Replace an automation (a new version)", named=True),
            "delete": _operation("Delete an automation (runs in flight finish)", named=True),
        },
        "/api/v1/meta/automations/{name}/versions": {
            "get": _operation("Versions of an automation", named=True)
        },
        "/api/v1/automations/{name}/run": {
            "post": _operation("Start a manual automation for records", "202", named=True)
        },
        "/api/v1/automations/{name}/webhook": {
            "post": _operation("Inbound webhook (X-Jimu-Signature)", "202", named=True)
        },
        "/api/v1/automations/runs": {"get": _operation("Automation runs, newest first")},
        "/api/v1/automations/runs/{id}": {
            "get": {
                **_operation("One run with each step: input, outcome, error, timing"),
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
            }
        },
        "/api/v1/automations/{name}/explain": {
            "get": _operation("Why a record would or would not start an automation", named=True)
        },
        "/api/v1/inbox": {"get": _operation("The acting user's in-app messages")},
        "/api/v1/meta/forms": {
            "get": _operation("List forms (and forms that broke)"),
            "post": _operation("Create a form", "201"),
        },
        "/api/v1/meta/forms/{name}": {
            "get": _operation("Get a form", named=True),
            "put": _operation("Replace a form", named=True),
            "delete": _operation("Delete a site form", named=True),
        },
        "/api/v1/forms/{name}": {
            "get": _operation("A form with its fields, for rendering", named=True)
        },
        "/api/v1/forms/{name}/validate": {
            "post": _operation(
                "Check a submission or one step (?step=N); writes nothing", named=True
            )
        },
        "/api/v1/forms/{name}/submit": {
            "post": _operation("Create a record through a form", "201", named=True)
        },
        "/api/v1/public/forms/{name}": {"get": _operation("A public form (anonymous)", named=True)},
        "/api/v1/public/forms/{name}/submit": {
            "post": _operation(
                "Submit a public form (anonymous, rate limited, captcha when asked)",
                "201",
                named=True,
            )
        },
        "/api/v1/files": {"post": _operation("Upload a file (multipart or raw body)", "201")},
        "/api/v1/files/{file_id}": {
            "get": {
                **_operation("Download a file"),
                "parameters": [
                    {
                        "name": "file_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
            }
        },
        "/api/v1/meta/plugins/{name}": {
            "post": _operation("Enable an installed plugin", "201", named=True),
            "delete": _operation("Disable a plugin (its data is kept)", named=True),
        },
    }


def _title(entity: str) -> str:
    return "".join(part.title() for part in entity.split("_"))


def _related_schemas(site: Site, components: dict[str, Any]) -> None:
    """What multi-link and child-table fields hold, which their structs cannot say.

    A multi-link reads as its sorted ids; a child table is written as rows of
    the child entity (with ``id`` to change an existing row) and reads as the
    child records.
    """
    for name in sorted(site.entities):
        runtime = site.runtime(name)
        title = _title(name)
        for field in runtime.related:
            definition = runtime.fields[field]
            if runtime.types[field].relation == "links":
                read: dict[str, Any] = {"type": "array", "items": {"type": "integer"}}
                write = None
            else:
                child = _title(definition.options["entity"])
                read = {"type": "array", "items": {"$ref": f"#/components/schemas/{child}Record"}}
                write = {
                    "type": "array",
                    "items": {
                        "allOf": [
                            {"$ref": f"#/components/schemas/{child}Patch"},
                            {
                                "type": "object",
                                "properties": {"id": {"type": "integer", "minimum": 1}},
                            },
                        ]
                    },
                    "description": "The whole list: a row with id changes that row, a row "
                    "without creates one, a row left out is deleted",
                }
            components[f"{title}Record"]["properties"][field] = {"anyOf": [read, {"type": "null"}]}
            if write is None:
                continue
            for kind in ("Create", "Patch"):
                properties = components[f"{title}{kind}"]["properties"]
                if field in properties:
                    properties[field] = {"anyOf": [write, {"type": "null"}]}


def openapi_document(site: Site) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document for ``site`` as it is now."""
    structs: list[Any] = []
    paths: dict[str, Any] = {}
    for name in sorted(site.entities):
        runtime = site.runtime(name)
        title = "".join(part.title() for part in name.split("_"))
        read_fields = [
            ("id", int),
            ("created_at", Any),
            ("updated_at", Any),
            *[
                (f, runtime.python_type(f) | None)
                for f in runtime.fields
                if f not in runtime.secret
            ],
        ]
        read_struct = msgspec.defstruct(f"{title}Record", read_fields, kw_only=True)
        structs.extend([runtime.create_struct, runtime.patch_struct, read_struct])
        record = {"$ref": f"#/components/schemas/{title}Record"}
        label = translate(runtime.entity.label, site.config.locale, name)
        page = {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": record},
                "page": {"$ref": "#/components/schemas/PageInfo"},
            },
        }
        list_params = [
            {
                "name": "filter",
                "in": "query",
                "schema": {"type": "string"},
                "description": "JsonLogic rule as JSON",
            },
            {
                "name": "sort",
                "in": "query",
                "schema": {"type": "string"},
                "description": "Comma-separated fields; '-' for descending",
            },
            {"name": "fields", "in": "query", "schema": {"type": "string"}},
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "count", "in": "query", "schema": {"enum": ["capped", "exact", "none"]}},
        ]
        ok = {"description": "OK", "content": {"application/json": {"schema": record}}}
        paths[f"/api/v1/records/{name}"] = {
            "get": {
                "summary": f"List {label}",
                "tags": [name],
                "parameters": list_params,
                "responses": _responses(
                    {"description": "A page", "content": {"application/json": {"schema": page}}}
                ),
            },
            "post": {
                "summary": f"Create a {label} record",
                "tags": [name],
                "requestBody": _json_body(f"#/components/schemas/{title}Create"),
                "responses": _responses(
                    {"description": "Created", "content": ok["content"]}, "201"
                ),
            },
        }
        record_id = [
            {"name": "record_id", "in": "path", "required": True, "schema": {"type": "integer"}}
        ]
        paths[f"/api/v1/records/{name}/{{record_id}}"] = {
            "get": {
                "summary": f"Get a {label} record",
                "tags": [name],
                "parameters": record_id,
                "responses": _responses(ok),
            },
            "patch": {
                "summary": f"Update a {label} record",
                "tags": [name],
                "parameters": record_id,
                "requestBody": _json_body(f"#/components/schemas/{title}Patch"),
                "responses": _responses(ok),
            },
            "delete": {
                "summary": f"Delete a {label} record",
                "tags": [name],
                "parameters": record_id,
                "responses": _responses(ok),
            },
        }
        paths[f"/api/v1/records/{name}/query"] = {
            "post": {
                "summary": f"Query {label}",
                "tags": [name],
                "requestBody": _json_body("#/components/schemas/QueryBody"),
                "responses": _responses(
                    {"description": "A page", "content": {"application/json": {"schema": page}}}
                ),
            }
        }
        update_item = {
            "allOf": [
                {"$ref": f"#/components/schemas/{title}Patch"},
                {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
            ]
        }
        bulk_body = {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "create": {
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/{title}Create"},
                },
                "update": {"type": "array", "items": update_item},
                "delete": {"type": "array", "items": {"type": "integer"}},
            },
        }
        paths[f"/api/v1/records/{name}/bulk"] = {
            "post": {
                "summary": f"Create, update and delete many {label} records, all or nothing",
                "tags": [name],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": bulk_body}},
                },
                "responses": _responses({"description": "Ids created, updated and deleted"}),
            }
        }
    _, components = msgspec.json.schema_components(
        structs, ref_template="#/components/schemas/{name}"
    )
    _related_schemas(site, components)
    components["Problem"] = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "incident": {
                "type": "string",
                "description": "Set on 5xx: quote it to the site's operator",
            },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                },
            },
        },
    }
    components["PageInfo"] = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "next_cursor": {"type": ["string", "null"]},
            "total": {"type": "integer"},
            "total_exact": {"type": "boolean"},
        },
    }
    components["QueryBody"] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "filter": {"description": "JsonLogic rule over the entity's fields"},
            "sort": {"type": "array", "items": {"type": "string"}},
            "fields": {"type": "array", "items": {"type": "string"}},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "cursor": {"type": "string"},
            "count": {"enum": ["capped", "exact", "none"]},
        },
    }
    paths.update(_metadata_paths())
    paths.update(report_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{site.config.name} — Jimu API", "version": jimu.__version__},
        "paths": paths,
        "components": {"schemas": components},
    }


_METHOD_ACTION = {"get": "read", "post": "create", "patch": "update", "delete": "delete"}


def narrow_for(document: dict[str, Any], site: Site, access: Access) -> dict[str, Any]:
    """``document`` as ``access`` may use it: only its entities, operations and fields.

    Entities the principal may do nothing with disappear; operations they may
    not take (create, update, delete, query) are removed; fields they may not
    read leave the record schemas, and fields they may not write leave the
    create and update schemas. The full document is never changed in place.
    """
    narrowed = copy.deepcopy(document)
    paths: dict[str, Any] = narrowed["paths"]
    schemas: dict[str, Any] = narrowed["components"]["schemas"]
    for name in site.entities:
        title = _title(name)
        prefix = f"/api/v1/records/{name}"
        entity_paths = [p for p in paths if p == prefix or p.startswith(prefix + "/")]
        if not any(access.allows(name, action) for action in ACTIONS):
            for path in entity_paths:
                del paths[path]
            for suffix in ("Record", "Create", "Patch"):
                schemas.pop(f"{title}{suffix}", None)
            continue
        for path in entity_paths:
            operations = paths[path]
            for method in list(operations):
                action = "read" if path.endswith("/query") else _METHOD_ACTION.get(method)
                if path.endswith("/bulk"):
                    allowed = any(access.allows(name, a) for a in ("create", "update", "delete"))
                else:
                    allowed = action is None or access.allows(name, action)
                if not allowed:
                    del operations[method]
            if not operations:
                del paths[path]
        readable = access.readable_fields(name)
        writable = access.writable_fields(name)
        for suffix, keep in (("Record", readable), ("Create", writable), ("Patch", writable)):
            schema = schemas.get(f"{title}{suffix}")
            if keep is None or schema is None:
                continue
            allowed_fields = keep | ({"id"} if suffix == "Record" else set())
            properties = schema.get("properties", {})
            for field in [f for f in properties if f not in allowed_fields]:
                del properties[field]
            if "required" in schema:
                schema["required"] = [f for f in schema["required"] if f in allowed_fields]
    return narrowed
