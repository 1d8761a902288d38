"""tags: free labels, trimmed and deduplicated, a JSON array."""

from __future__ import annotations

from collections.abc import Callable

from jimu.site import Site
from tests.fields.helpers import (
    accept,
    assert_bad_definition,
    assert_refused,
    create,
    entity,
    fmt,
    labels,
    parse,
    read,
    reason,
)


def test_valid_values_are_trimmed_and_deduplicated() -> None:
    assert accept("tags", [" vip ", "老客", "vip", "", "  "]) == ["vip", "老客"]
    assert accept("tags", ["big   spender"]) == ["big spender"]
    assert accept("tags", []) == []
    assert accept("tags", ["a", "b", "a"], max_count=2) == ["a", "b"]


def test_invalid_values() -> None:
    assert reason("tags", ["a", "b", "c"], max_count=2) == "has 3 tags; at most 2 are allowed"
    assert reason("tags", ["x" * 33]) == f"tag {'x' * 33!r} is longer than 32 characters"
    assert "write it as separate tags" in reason("tags", ["vip,new"])
    assert "Expected `array`" in reason("tags", "vip")
    assert "Expected `str`" in reason("tags", [1])


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "t", "type": "tags", "options": {"max_length": 0}},
        "fields[0].options.max_length",
        "from 1 to 255",
    )
    assert_bad_definition(
        new_site,
        {"name": "t", "type": "tags", "options": {"color": "red"}},
        "fields[0].options",
        "unknown option 'color'",
    )


def test_cells() -> None:
    assert parse("tags", "vip, 老客、新客;团购") == ["vip", "老客", "新客", "团购"]
    assert parse("tags", " vip\n老客 ") == ["vip", "老客"]
    assert parse("tags", '["a b", "c"]') == ["a b", "c"]
    assert parse("tags", 2024.0) == ["2024"]
    assert parse("tags", "  ") is None
    assert fmt("tags", ["vip", "老客"]) == "vip, 老客"
    assert fmt("tags", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields = [{"name": "tags", "type": "tags", "options": {"max_count": 3}}]
    with entity(new_site, fields) as client:
        vip = create(client, {"label": "vip", "tags": [" vip", "vip ", "老客"]})
        assert vip["tags"] == ["vip", "老客"]
        create(client, {"label": "new", "tags": ["新客"]})
        create(client, {"label": "none"})
        assert read(client, vip["id"])["tags"] == ["vip", "老客"]
        assert labels(client, {"has_tag": [{"var": "tags"}, "vip"]}) == ["vip"]
        assert labels(client, {"has_tag": [{"var": "tags"}, "老客"]}) == ["vip"]
        assert labels(client, {"missing": "tags"}) == ["none"]
        assert_refused(client, {"tags": ["a", "b", "c", "d"]}, "tags", "at most 3")
