"""color: stored as lower-case #rrggbb."""

from __future__ import annotations

from collections.abc import Callable

from jimu.site import Site
from tests.fields.helpers import (
    accept,
    assert_refused,
    create,
    entity,
    fmt,
    labels,
    parse,
    read,
    reason,
)


def test_valid_values_become_lower_case_hex() -> None:
    assert accept("color", "#1E90FF") == "#1e90ff"
    assert accept("color", "1e90ff") == "#1e90ff"
    assert accept("color", "#ABC") == "#aabbcc"
    assert accept("color", "rgb(30, 144, 255)") == "#1e90ff"


def test_invalid_values() -> None:
    for bad in ("red", "#12345", "#ggg000", "rgb(300, 0, 0)", ""):
        assert "is not a colour" in reason("color", bad)
    assert "Expected `str`" in reason("color", 0xFFFFFF)


def test_cells() -> None:
    assert parse("color", " #FF0000 ") == "#FF0000"  # normalised when written
    assert parse("color", "") is None
    assert fmt("color", "#ff0000") == "#ff0000"
    assert fmt("color", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "colour", "type": "color"}]) as client:
        red = create(client, {"label": "red", "colour": "#F00"})
        assert red["colour"] == "#ff0000"
        create(client, {"label": "blue", "colour": "0000FF"})
        assert read(client, red["id"])["colour"] == "#ff0000"
        assert labels(client, {"==": [{"var": "colour"}, "#0000ff"]}) == ["blue"]
        assert labels(client, {"in": [{"var": "colour"}, ["#ff0000", "#00ff00"]]}) == ["red"]
        assert_refused(client, {"colour": "red"}, "colour", "is not a colour")
