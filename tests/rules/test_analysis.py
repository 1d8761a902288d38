"""Static analysis: the fields a rule reads, and type checking against an entity."""

from __future__ import annotations

from typing import Any

import pytest

from jimu import rules
from jimu.rules import RuleTypeError, UnknownFieldError, check_types, fields_read

FIELD_TYPES = {
    "name": "text",
    "city": "text",
    "age": "integer",
    "total_spent": "decimal",
    "vip": "boolean",
    "birthday": "date",
    "last_order_at": "datetime",
    "tags": "json",
    "extra": "json",
    "customer": "link",
    "customer.city": "text",
}


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        ({"and": [{">=": [{"var": "total_spent"}, 1000]}, {"in": [{"var": "city"}, ["A"]]}]},
         {"total_spent", "city"}),
        ({"==": [{"var": "customer.city"}, "Hangzhou"]}, {"customer.city"}),
        ({"var": ["nickname", {"var": "name"}]}, {"nickname", "name"}),
        ({"val": ["address", "city"]}, {"address.city"}),
        ({"exists": "email"}, {"email"}),
        ({"missing": ["phone", "email"]}, {"phone", "email"}),
        ({"missing_some": [1, ["phone", "wechat"]]}, {"phone", "wechat"}),
        ({"has_tag": "vip"}, {"tags"}),
        ({"has_tag": [{"var": "labels"}, "vip"]}, {"labels"}),
        # Inside an iterator, var reads the item, not the record ...
        ({"some": [{"var": "orders"}, {">": [{"var": "amount"}, 100]}]}, {"orders"}),
        # ... unless val climbs back to the record.
        ({"all": [{"var": "orders"}, {"==": [{"var": "city"}, {"val": [[2], "city"]}]}]},
         {"orders", "city"}),
        ({"reduce": [{"var": "items"}, {"+": [{"var": "current.qty"}, {"var": "accumulator"}]}, 0]},
         {"items"}),
        ({"try": [{"/": [{"var": "a"}, {"var": "b"}]}, {"val": "type"}]}, {"a", "b"}),
        ({"if": [True, 1, 2]}, set()),
    ],
)  # fmt: skip
def test_fields_read(rule: Any, fields: set[str]) -> None:
    result = fields_read(rule)
    assert result == fields
    assert result.complete
    assert rules.compile(rule).fields_read() == fields


def test_dynamic_paths_are_noted() -> None:
    result = fields_read({"and": [{"var": "a"}, {"var": {"cat": ["b", {"var": "c"}]}}]})
    assert result == {"a", "c"}
    assert result.dynamic == ["and[1]"]
    assert not result.complete
    whole = fields_read({"!!": {"var": ""}})
    assert whole.whole_record
    assert not whole.complete
    assert fields_read({"missing": {"merge": ["a", {"var": "b"}]}}).dynamic == [""]


def test_check_types_accepts_sound_rules() -> None:
    rule = {
        "and": [
            {">=": [{"var": "total_spent"}, "1000"]},
            {">": [{"var": "birthday"}, "1990-01-01"]},
            {"<": [{"var": "last_order_at"}, "2024-05-01T12:00:00+08:00"]},
            {"==": [{"var": "customer.city"}, "Hangzhou"]},
            {"has_tag": "vip"},
            {"==": [{"var": "extra.source"}, "wechat"]},
        ]
    }
    assert check_types(rule, FIELD_TYPES) == "boolean"
    assert check_types({"+": [{"var": "age"}, 1]}, FIELD_TYPES) == "number"
    assert check_types({"cat": [{"var": "name"}]}, FIELD_TYPES) == "text"
    assert check_types({"add_days": [{"var": "birthday"}, 1]}, FIELD_TYPES) == "any"


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"and": [True, {">": [{"var": "citty"}, 1]}]}, "and[1].>[0]", 'unknown field "citty"'),
        ({"==": [{"var": "customer.country"}, "CN"]}, "==[0]", 'unknown field "customer.country"'),
        ({"missing": ["nope"]}, "", None),
    ],
)
def test_check_types_rejects_unknown_fields(rule: Any, path: str, words: str | None) -> None:
    if words is None:
        # missing() is about absent keys, so it may name fields the entity lacks.
        check_types(rule, FIELD_TYPES)
        return
    with pytest.raises(UnknownFieldError) as raised:
        check_types(rule, FIELD_TYPES)
    assert raised.value.path == path
    assert str(raised.value) == f"{path}: {words}"


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"and": [True, {">": [{"var": "birthday"}, "last year"]}]}, "and[1]",
         "compares date field \"birthday\" with 'last year', which is not a date"),
        ({"<": ["soon", {"var": "last_order_at"}]}, "", "which is not a date"),
        ({"==": [{"var": "birthday"}, 2024]}, "", "with 2024 (a number)"),
        ({"<": [{"var": "birthday"}, {"var": "age"}]}, "", 'field "age" (an integer)'),
        ({">": [{"var": "age"}, "old"]}, "", "which is not a number"),
        ({"+": [{"var": "birthday"}, 1]}, "", 'needs numbers, but field "birthday" is a date'),
        ({"diff_days": [{"var": "age"}, {"today": []}]}, "", "needs a date as argument 1"),
        ({"add_days": ["someday", 1]}, "", "'someday' is not one"),
        ({"has_tag": "vip"}, "", 'needs a json "tags" field'),
    ],
)  # fmt: skip
def test_check_types_rejects_mismatches(rule: Any, path: str, words: str) -> None:
    types = dict(FIELD_TYPES)
    if rule == {"has_tag": "vip"}:
        types["tags"] = "text"
    with pytest.raises(RuleTypeError) as raised:
        check_types(rule, types)
    assert raised.value.path == path
    assert words in raised.value.reason
