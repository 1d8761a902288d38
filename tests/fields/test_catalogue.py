"""The built-in catalogue as a whole: registration, labels, options, operators, one entity
with every new type through the API on SQLite and PostgreSQL, and the documentation table."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi

from jimu.fields import STORAGE_KINDS, FieldType
from jimu.fields.builtin import BUILTIN_FIELD_TYPES
from jimu.meta import FieldDef
from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.fields.helpers import TYPES, assert_bad_definition, create, definition, read

ROOT = Path(__file__).resolve().parents[2]
FOUNDATION = [
    "text",
    "long_text",
    "email",
    "url",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "select",
    "json",
    "link",
]
NEW = [
    "rich_text",
    "currency",
    "percent",
    "time",
    "duration",
    "phone",
    "multi_select",
    "tags",
    "rating",
    "color",
    "barcode",
    "geolocation",
    "region",
    "attachment",
    "image",
]
#: Types whose values live in rows of other tables (test_multi_link.py, test_child_table.py).
RELATED = ["multi_link", "child_table"]
#: Types the kernel fills in, and the password type (tested in test_computed_types.py).
KERNEL_FILLED = [
    "formula",
    "auto_number",
    "created_time",
    "modified_time",
    "password",
    "lookup",
    "rollup",
]
#: Types that hold a person, a jimu_user id (tested in test_people.py).
PEOPLE = ["user", "created_by", "modified_by"]


def test_every_type_is_registered_with_labels_and_a_widget(new_site: Callable[..., Site]) -> None:
    site = new_site()
    registry = site.plugins.field_types
    assert set(FOUNDATION + NEW + RELATED + KERNEL_FILLED + PEOPLE) <= set(registry.names())
    for name in FOUNDATION + NEW + RELATED + KERNEL_FILLED + PEOPLE:
        kind = registry[name]
        assert registry.owner(name) == "jimu.fields"
        assert kind.storage in STORAGE_KINDS
        assert isinstance(kind.label, dict) and kind.label["en"] and kind.label["zh-CN"], name
        assert kind.widget, name
    assert {cls.name for cls in BUILTIN_FIELD_TYPES} == set(
        FOUNDATION + NEW + RELATED + KERNEL_FILLED + PEOPLE
    )
    for name in RELATED:  # no column of their own, yet written through the API
        assert registry[name].virtual and registry[name].writable and registry[name].relation


def _sample_options(name: str) -> dict[str, Any]:
    samples: dict[str, dict[str, Any]] = {
        "select": {"choices": ["a"]},
        "multi_select": {"choices": ["a"]},
        "link": {"target": "x"},
        "multi_link": {"target": "x"},
        "child_table": {"entity": "x", "parent_field": "y"},
    }
    return samples.get(name, {})


@pytest.mark.parametrize("name", FOUNDATION + NEW + RELATED)
def test_filter_operators_exist_in_the_rule_engine(
    name: str, new_site: Callable[..., Site]
) -> None:
    site = new_site()
    operators = set(site.rules.names())
    field = definition(name, **_sample_options(name))
    offered = TYPES[name].filter_operators(field)
    assert offered and set(offered) <= operators, set(offered) - operators


@pytest.mark.parametrize("name", NEW + RELATED)
def test_unknown_options_are_refused(name: str, new_site: Callable[..., Site]) -> None:
    options = {**_sample_options(name), "colour": "red"}
    assert_bad_definition(
        new_site,
        {"name": "f", "type": name, "options": options},
        "fields[0].options",
        f"unknown option 'colour' for a {name} field",
    )


def test_normalize_defaults_to_the_value_itself() -> None:
    class Plain(FieldType):
        name = "plain"
        storage = "text"

    value = ["x"]
    assert Plain().normalize(FieldDef(name="p", type="plain"), value) is value
    assert TYPES["text"].normalize(definition("text"), " a ") == " a "


def test_to_db_stores_the_canonical_form_even_without_normalize() -> None:
    phone = TYPES["phone"]
    field = definition("phone")
    assert phone.to_db(field, "138 0013 8000", "sqlite") == "+8613800138000"
    assert TYPES["duration"].to_db(definition("duration"), "1h", "postgres") == 3600
    assert TYPES["tags"].to_db(definition("tags"), [" a", "a"], "sqlite") == '["a"]'
    assert TYPES["currency"].to_db(definition("currency"), Decimal("1.5"), "sqlite") == "1.50"
    assert TYPES["region"].to_db(definition("region"), "浙江 杭州 西湖", "sqlite") == "330106"


EVERYTHING = [
    {"name": "body", "type": "rich_text"},
    {"name": "price", "type": "currency", "required": True},
    {"name": "rate", "type": "percent", "default": "0.1"},
    {"name": "opens", "type": "time"},
    {"name": "took", "type": "duration"},
    {"name": "mobile", "type": "phone", "unique": True},
    {"name": "sizes", "type": "multi_select", "options": {"choices": ["S", "M", "L"]}},
    {"name": "tags", "type": "tags", "default": []},
    {"name": "stars", "type": "rating"},
    {"name": "colour", "type": "color", "indexed": True},
    {"name": "ean", "type": "barcode"},
    {"name": "spot", "type": "geolocation"},
    {"name": "area", "type": "region"},
]
WRITTEN = {
    "body": "<p>hi<script>x</script></p>",
    "price": "19.9",
    "opens": "9:00",
    "took": "1:30:00",
    "mobile": "13800138000",
    "sizes": ["L", "S"],
    "tags": [" new "],
    "stars": 4,
    "colour": "#ABCDEF",
    "ean": "6901234567892",
    "spot": {"lat": 31.2, "lng": 121.5},
    "area": "上海市 浦东新区",
}
STORED = {
    "body": "<p>hi</p>",
    "price": "19.90",
    "rate": "0.1000",
    "opens": "09:00",
    "took": 5400,
    "mobile": "+8613800138000",
    "sizes": ["S", "L"],
    "tags": ["new"],
    "stars": 4,
    "colour": "#abcdef",
    "ean": "6901234567892",
    "spot": {"lat": 31.2, "lng": 121.5},
    "area": "310115",
}


def test_one_entity_with_every_new_type(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        response = client.post(
            "/api/v1/meta/entities", json={"name": "product", "fields": EVERYTHING}
        )
        assert response.status_code == 201, response.text
        record = create(client, WRITTEN, "product")
        assert {name: record[name] for name in STORED} == STORED
        assert {name: read(client, record["id"], "product")[name] for name in STORED} == STORED
        empty = create(client, {"price": "0"}, "product")
        assert empty["rate"] == "0.1000" and empty["tags"] == [] and empty["area"] is None
        # a PATCH normalises like a create
        patched = client.patch(
            f"/api/v1/records/product/{empty['id']}",
            json={"took": "45m", "colour": "F00", "area": "330106000000", "price": 3},
        )
        assert patched.status_code == 200, patched.text
        body = patched.json()
        assert (body["took"], body["colour"], body["area"], body["price"]) == (
            2700,
            "#ff0000",
            "330106",
            "3.00",
        )
        # bulk writes go through the same path; errors name the item and field
        bulk = client.post(
            "/api/v1/records/product/bulk",
            json={"create": [{"price": "1"}, {"price": "1", "stars": 9}]},
        )
        assert bulk.status_code == 422, bulk.text
        assert bulk.json()["errors"][0]["field"] == "create[1].stars"
        # a sort and a cursor over normalised values
        first = client.get("/api/v1/records/product", params={"sort": "colour", "limit": 1})
        assert first.status_code == 200, first.text
        cursor = first.json()["page"]["next_cursor"]
        rest = client.get(
            "/api/v1/records/product", params={"sort": "colour", "limit": 1, "cursor": cursor}
        )
        assert rest.status_code == 200, rest.text
        assert [first.json()["data"][0]["colour"], rest.json()["data"][0]["colour"]] == [
            "#abcdef",
            "#ff0000",
        ]
        schema = client.get("/schema").json()
        validate_openapi(schema)
        created = schema["components"]["schemas"]["ProductCreate"]["properties"]
        assert set(STORED) <= set(created)


def test_bad_defaults_are_refused(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "p", "type": "phone", "default": "12345"},
        "fields[0].default",
        "is not a valid phone number",
    )
    assert_bad_definition(
        new_site,
        {"name": "t", "type": "time", "default": "25:00"},
        "fields[0].default",
        "is not a time of day",
    )


def test_the_documentation_lists_every_built_in_type() -> None:
    text = (ROOT / "docs" / "concepts" / "field-types.md").read_text()
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert {cls.name for cls in BUILTIN_FIELD_TYPES} <= rows
    for cls in BUILTIN_FIELD_TYPES:
        kind = cls()
        row = re.search(rf"^\| `{kind.name}` \| ([a-z]+) \| `([a-z_]+)` \|", text, re.MULTILINE)
        assert row, kind.name
        assert (row[1], row[2]) == (kind.storage, kind.widget), kind.name
