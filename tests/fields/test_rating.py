"""rating: a whole number of stars from 1 to max (default 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def test_valid_and_invalid_values() -> None:
    assert accept("rating", 1) == 1
    assert accept("rating", 5) == 5
    assert accept("rating", 10, max=10) == 10
    assert "Expected `int` <= 5" in reason("rating", 6)
    assert "Expected `int` >= 1" in reason("rating", 0)
    assert "Expected `int`" in reason("rating", "4")
    assert "Expected `int`" in reason("rating", 4.5)


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "r", "type": "rating", "options": {"max": 11}},
        "fields[0].options.max",
        "from 1 to 10",
    )


def test_cells() -> None:
    assert parse("rating", 4) == 4
    assert parse("rating", 4.0) == 4
    assert parse("rating", "4") == 4
    assert parse("rating", " 4/5 ") == 4
    assert parse("rating", "4.0") == 4
    assert parse("rating", "3星") == 3
    assert parse("rating", "★★★★☆") == 4
    assert parse("rating", "⭐⭐⭐") == 3
    assert parse("rating", "2 stars") == 2
    assert parse("rating", "") is None
    for bad in ("good", "4.5", 4.5, "-1"):
        with pytest.raises(CellError):
            parse("rating", bad)
    assert fmt("rating", 4) == 4
    assert fmt("rating", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields: list[dict[str, Any]] = [
        {"name": "stars", "type": "rating"},
        {"name": "score", "type": "rating", "options": {"max": 10}},
    ]
    with entity(new_site, fields) as client:
        good = create(client, {"label": "good", "stars": 5, "score": 9})
        create(client, {"label": "poor", "stars": 2, "score": 3})
        create(client, {"label": "none"})
        assert read(client, good["id"])["stars"] == 5
        assert labels(client, {">=": [{"var": "stars"}, 4]}) == ["good"]
        assert labels(client, {"in": [{"var": "score"}, [3, 4]]}) == ["poor"]
        assert labels(client, {"missing": "stars"}) == ["none"]
        assert_refused(client, {"stars": 6}, "stars", "Expected `int` <= 5")
        assert_refused(client, {"score": 0}, "score", "Expected `int` >= 1")
