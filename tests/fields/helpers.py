"""Shared helpers of the field-type tests: a site with one entity, problems, cells."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from jimu.fields import FieldType
from jimu.fields.builtin import BUILTIN_FIELD_TYPES
from jimu.meta import FieldDef
from jimu.site import Site
from jimu_sdk.testing import site_client

PROBLEM = "application/problem+json"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
TYPES: dict[str, FieldType] = {cls.name: cls() for cls in BUILTIN_FIELD_TYPES}


def field_type(name: str) -> FieldType:
    """The built-in field type called ``name``."""
    return TYPES[name]


def definition(type_name: str, **options: Any) -> FieldDef:
    """A field ``f`` of ``type_name`` with ``options``."""
    return FieldDef(name="f", type=type_name, options=options)


def parse(type_name: str, cell: Any, **options: Any) -> Any:
    """What an imported ``cell`` becomes for a ``type_name`` field."""
    return TYPES[type_name].parse_cell(definition(type_name, **options), cell, SHANGHAI)


def fmt(type_name: str, value: Any, **options: Any) -> Any:
    """What an exported ``value`` of a ``type_name`` field becomes."""
    return TYPES[type_name].format_cell(definition(type_name, **options), value, SHANGHAI)


def accept(type_name: str, value: Any, **options: Any) -> Any:
    """Validate ``value`` like the API does (decode, validate, normalize); return what is stored.

    Raises ``AssertionError`` with the reason when the value is refused.
    """
    import msgspec

    field = definition(type_name, **options)
    kind = TYPES[type_name]
    kind.check_options(field, "fields[0]")
    decoded = msgspec.json.decode(msgspec.json.encode(value), type=kind.input_type(field))
    reason = kind.validate(field, decoded)
    assert reason is None, reason
    normal = kind.normalize(field, decoded)
    again = msgspec.json.decode(msgspec.json.encode(normal), type=kind.input_type(field))
    assert kind.validate(field, again) is None, "the normalised value must validate again"
    assert kind.normalize(field, again) == normal, "normalize must be idempotent"
    return normal


def reason(type_name: str, value: Any, **options: Any) -> str:
    """Why ``value`` is refused (msgspec's or the type's message)."""
    import msgspec

    field = definition(type_name, **options)
    kind = TYPES[type_name]
    try:
        decoded = msgspec.json.decode(msgspec.json.encode(value), type=kind.input_type(field))
    except msgspec.ValidationError as exc:
        return str(exc)
    problem = kind.validate(field, decoded)
    assert problem is not None, f"{value!r} was accepted"
    return problem


@contextmanager
def entity(
    new_site: Callable[..., Site], fields: Sequence[Mapping[str, Any]], name: str = "item"
) -> Iterator[Any]:
    """A client of a new site with one entity ``name`` holding ``fields`` (and ``label``)."""
    site = new_site()
    with site_client(site) as client:
        response = client.post(
            "/api/v1/meta/entities",
            json={"name": name, "fields": [{"name": "label", "type": "text"}, *fields]},
        )
        assert response.status_code == 201, response.text
        yield client


def create(client: Any, body: Mapping[str, Any], entity_name: str = "item") -> dict[str, Any]:
    """Create a record; return it as the API answered (201 expected)."""
    response = client.post(f"/api/v1/records/{entity_name}", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def read(client: Any, record_id: int, entity_name: str = "item") -> dict[str, Any]:
    """One record as the API reads it back."""
    response = client.get(f"/api/v1/records/{entity_name}/{record_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def labels(client: Any, rule: Any, entity_name: str = "item") -> list[str]:
    """The ``label`` of each record a JsonLogic ``filter`` selects, in id order."""
    response = client.get(
        f"/api/v1/records/{entity_name}", params={"filter": json.dumps(rule), "limit": 1000}
    )
    assert response.status_code == 200, response.text
    return [record["label"] for record in response.json()["data"]]


def assert_refused(
    client: Any, body: Mapping[str, Any], field: str, words: str = "", entity_name: str = "item"
) -> dict[str, Any]:
    """Creating ``body`` is a 422 problem whose errors name ``field`` (with ``words``)."""
    response = client.post(f"/api/v1/records/{entity_name}", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem: dict[str, Any] = response.json()
    matching = [error for error in problem["errors"] if error["field"] == field]
    assert matching, problem
    assert any(words in error["reason"] for error in matching), problem
    return problem


def assert_bad_definition(
    new_site: Callable[..., Site], field: Mapping[str, Any], path: str, words: str
) -> None:
    """An entity with ``field`` is refused with a 422 naming ``path``."""
    site = new_site()
    with site_client(site) as client:
        response = client.post(
            "/api/v1/meta/entities", json={"name": "bad", "fields": [dict(field)]}
        )
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert any(e["field"] == path and words in e["reason"] for e in errors), errors
