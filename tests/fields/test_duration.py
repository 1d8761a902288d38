"""duration: whole seconds in an integer column; text input such as 1h30m or 1:30:00."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from jimu.fields.cells import CellError
from jimu.fields.times import format_duration
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


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        (5400, 5400),
        ("5400", 5400),
        ("1:30:00", 5400),
        ("01:30:00", 5400),
        ("1:30", 5400),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("90 min", 5400),
        ("1 hour 30 minutes", 5400),
        ("1小时30分", 5400),
        ("1小时30分钟", 5400),
        ("PT1H30M", 5400),
        ("2d", 172800),
        ("1天2小时", 93600),
        ("45s", 45),
        ("0", 0),
        ("26:00:00", 93600),
    ],
)
def test_valid_values_become_seconds(given: object, seconds: int) -> None:
    assert accept("duration", given) == seconds


def test_invalid_values() -> None:
    assert "is not a duration" in reason("duration", "soon")
    assert "is not a duration" in reason("duration", "1h30x")
    assert "more than 59" in reason("duration", "1:75")
    assert "whole number of seconds" in reason("duration", "1.5s")
    assert "Expected `int` >= 0" in reason("duration", -5)
    assert "Expected `int | str`" in reason("duration", 1.5)
    assert "longer than 100 years" in reason("duration", "100000d")


def test_import_cells() -> None:
    assert parse("duration", "1:30:00") == 5400
    assert parse("duration", " 1h30m ") == 5400
    assert parse("duration", 90) == 90
    assert parse("duration", 90.0) == 90
    assert parse("duration", dt.timedelta(hours=1, minutes=30)) == 5400
    assert parse("duration", dt.time(0, 45)) == 2700
    assert parse("duration", "") is None
    for bad in ("later", 1.5, -3, True):
        with pytest.raises(CellError):
            parse("duration", bad)


def test_export_cells() -> None:
    assert fmt("duration", 5400) == "1:30:00"
    assert fmt("duration", 59) == "0:00:59"
    assert fmt("duration", 93600) == "26:00:00"
    assert fmt("duration", None) is None
    assert format_duration(0) == "0:00:00"
    assert parse("duration", fmt("duration", 3725)) == 3725


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "took", "type": "duration"}]) as client:
        long = create(client, {"label": "long", "took": "1h30m"})
        assert long["took"] == 5400
        create(client, {"label": "short", "took": 300})
        create(client, {"label": "clock", "took": "00:45:00"})
        create(client, {"label": "none"})
        assert read(client, long["id"])["took"] == 5400
        changed = client.patch(f"/api/v1/records/item/{long['id']}", json={"took": "2h"})
        assert changed.status_code == 200 and changed.json()["took"] == 7200
        assert labels(client, {">": [{"var": "took"}, 3600]}) == ["long"]
        assert labels(client, {"<=": [{"var": "took"}, 2700]}) == ["short", "clock", "none"]
        assert labels(client, {"missing": "took"}) == ["none"]
        assert_refused(client, {"took": "soon"}, "took", "is not a duration")
        assert_refused(client, {"took": -1}, "took", ">= 0")
