"""multi_select: a JSON array of choices, in choice order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from jimu.fields.cells import CellError
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

COLOURS = ["红", "蓝", "绿", "Black"]


def test_valid_values_are_deduplicated_in_choice_order() -> None:
    assert accept("multi_select", ["绿", "红"], choices=COLOURS) == ["红", "绿"]
    assert accept("multi_select", ["蓝", "蓝"], choices=COLOURS) == ["蓝"]
    assert accept("multi_select", [], choices=COLOURS) == []


def test_invalid_values() -> None:
    assert reason("multi_select", ["紫"], choices=COLOURS).startswith("'紫' is not one of '红'")
    assert reason("multi_select", ["红", "蓝"], choices=COLOURS, max_count=1) == (
        "has 2 choices; at most 1 may be chosen"
    )
    assert "Expected `array`" in reason("multi_select", "红", choices=COLOURS)


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({}, "fields[0].options.choices", "needs a list of non-empty strings"),
        ({"choices": ["a, b"]}, "fields[0].options.choices[0]", "may not hold a comma"),
        ({"choices": ["a", "a"]}, "fields[0].options.choices[1]", "listed twice"),
        ({"choices": ["a"], "max_count": 2}, "fields[0].options.max_count", "from 1 to 1"),
    ],
)
def test_bad_options(
    new_site: Callable[..., Site], options: dict[str, object], path: str, words: str
) -> None:
    assert_bad_definition(
        new_site, {"name": "m", "type": "multi_select", "options": options}, path, words
    )


def test_cells() -> None:
    assert parse("multi_select", "红, 绿", choices=COLOURS) == ["红", "绿"]
    assert parse("multi_select", "红、绿；蓝", choices=COLOURS) == ["红", "绿", "蓝"]
    assert parse("multi_select", " black |红 ", choices=COLOURS) == ["Black", "红"]
    assert parse("multi_select", '["蓝"]', choices=COLOURS) == ["蓝"]
    assert parse("multi_select", "紫", choices=COLOURS) == ["紫"]  # validation refuses it
    assert parse("multi_select", "", choices=COLOURS) is None
    with pytest.raises(CellError, match="not a JSON array"):
        parse("multi_select", "[broken", choices=COLOURS)
    assert fmt("multi_select", ["红", "绿"], choices=COLOURS) == "红, 绿"
    assert fmt("multi_select", [], choices=COLOURS) == ""
    assert fmt("multi_select", None, choices=COLOURS) is None
    assert parse("multi_select", fmt("multi_select", ["红", "Black"]), choices=COLOURS) == [
        "红",
        "Black",
    ]


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields = [{"name": "colours", "type": "multi_select", "options": {"choices": COLOURS}}]
    with entity(new_site, fields) as client:
        both = create(client, {"label": "both", "colours": ["蓝", "红", "红"]})
        assert both["colours"] == ["红", "蓝"]
        create(client, {"label": "green", "colours": ["绿"]})
        create(client, {"label": "empty", "colours": []})
        create(client, {"label": "none"})
        assert read(client, both["id"])["colours"] == ["红", "蓝"]
        assert labels(client, {"has_tag": [{"var": "colours"}, "红"]}) == ["both"]
        assert labels(client, {"has_tag": [{"var": "colours"}, "绿"]}) == ["green"]
        assert labels(client, {"missing": "colours"}) == ["none"]
        assert_refused(client, {"colours": ["紫"]}, "colours", "'紫' is not one of")
        assert_refused(client, {"colours": "红"}, "colours", "Expected `array | null`")
