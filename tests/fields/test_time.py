"""time: a time of day, fixed-width text so that text order is time order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from jimu.fields.cells import CellError
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


def test_valid_values_become_fixed_width() -> None:
    assert accept("time", "9:30") == "09:30"
    assert accept("time", "09:30:00") == "09:30"
    assert accept("time", "23:59") == "23:59"
    assert accept("time", "9:30", seconds=True) == "09:30:00"
    assert accept("time", "07:05:09", seconds=True) == "07:05:09"


def test_invalid_values() -> None:
    for bad in ("24:00", "9.30", "12:60", "noon", "9:3", "12:00:60"):
        assert "is not a time of day" in reason("time", bad)
    assert "has seconds" in reason("time", "09:30:15")
    assert "Expected `str`" in reason("time", 930)


def test_import_cells() -> None:
    assert parse("time", "9:30") == "09:30"
    assert parse("time", dt.time(14, 5)) == "14:05"
    assert parse("time", dt.datetime(1899, 12, 30, 8, 0)) == "08:00"
    assert parse("time", 0.5) == "12:00"  # an XLSX time is a fraction of a day
    assert parse("time", 0.75, seconds=True) == "18:00:00"
    assert parse("time", "2:30 PM") == "14:30"
    assert parse("time", "12:15 am") == "00:15"
    assert parse("time", "下午3:30") == "15:30"
    assert parse("time", "上午9点") == "09:00"
    assert parse("time", "9点30分") == "09:30"
    assert parse("time", "21时05分") == "21:05"
    assert parse("time", "09:30:15") == "09:30:15"  # kept so validation can say why
    assert parse("time", " ") is None
    for bad in ("later", 1.5, "13:00 PM", "25:00"):
        with pytest.raises(CellError, match="is not a time of day"):
            parse("time", bad)


def test_export_cells() -> None:
    assert fmt("time", "09:30") == "09:30"
    assert fmt("time", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields: list[dict[str, Any]] = [
        {"name": "opens", "type": "time"},
        {"name": "exact", "type": "time", "options": {"seconds": True}},
    ]
    with entity(new_site, fields) as client:
        early = create(client, {"label": "early", "opens": "8:00", "exact": "8:00:30"})
        assert early["opens"] == "08:00" and early["exact"] == "08:00:30"
        create(client, {"label": "late", "opens": "10:30"})
        create(client, {"label": "noon", "opens": "12:00"})
        create(client, {"label": "none"})
        assert read(client, early["id"])["opens"] == "08:00"
        # "08:00" < "10:00" although "8:00" > "10:00" as text: stored values are fixed width
        assert labels(client, {"<": [{"var": "opens"}, "10:00"]}) == ["early"]
        assert labels(client, {">=": [{"var": "opens"}, "10:30"]}) == ["late", "noon"]
        assert labels(client, {"==": [{"var": "opens"}, "12:00"]}) == ["noon"]
        listing = client.get("/api/v1/records/item", params={"sort": "-opens", "fields": "label"})
        assert [r["label"] for r in listing.json()["data"]] == ["noon", "late", "early", "none"]
        assert_refused(client, {"opens": "25:00"}, "opens", "is not a time of day")
        assert_refused(client, {"opens": "09:30:15"}, "opens", "has seconds")
