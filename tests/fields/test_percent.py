"""percent: stored as a fraction (12.5% is 0.125); imports read "12.5%"."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

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


def test_valid_values_are_fractions() -> None:
    assert accept("percent", "0.125") == Decimal("0.1250")
    assert accept("percent", 1) == Decimal("1.0000")
    assert accept("percent", "-0.05") == Decimal("-0.0500")
    assert accept("percent", "0.123456", scale=4) == Decimal("0.123456")
    assert accept("percent", "0.12", scale=0) == Decimal("0.12")


def test_invalid_values() -> None:
    assert reason("percent", "0.12345") == "has more than 2 digits after the point as a percentage"
    assert reason("percent", "0.125", scale=0) == "must be a whole percentage (0.125 is 12.5%)"
    assert reason("percent", "1.5", min=0, max=1) == "must be at most 100%"
    assert reason("percent", "-0.01", min=0) == "must be at least 0%"
    assert "Invalid decimal" in reason("percent", "12.5%")


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "p", "type": "percent", "options": {"min": "low"}},
        "fields[0].options.min",
        "min must be a number",
    )


def test_import_cells() -> None:
    assert parse("percent", "12.5%") == "0.125"
    assert parse("percent", " 12.5 % ") == "0.125"
    assert parse("percent", "100%") == "1"
    assert parse("percent", "-3％") == "-0.03"
    assert parse("percent", "5‰") == "0.005"
    assert parse("percent", "0.125") == "0.125"  # a plain number is a fraction, as in Excel
    assert parse("percent", 0.125) == "0.125"  # an XLSX cell formatted as 12.5%
    assert parse("percent", 0.07 * 3) == "0.21"  # float noise of a spreadsheet formula
    assert parse("percent", 1) == "1"
    assert parse("percent", "") is None
    for bad in ("abc", "12.5%%", "%", "1e5"):
        with pytest.raises(CellError, match="is not a percentage"):
            parse("percent", bad)
    with pytest.raises(CellError):
        parse("percent", False)


def test_export_cells() -> None:
    assert fmt("percent", Decimal("0.1250")) == "12.5%"
    assert fmt("percent", Decimal("1.0000")) == "100%"
    assert fmt("percent", "0.0005") == "0.05%"
    assert fmt("percent", Decimal("-0.2")) == "-20%"
    assert fmt("percent", None) is None
    assert parse("percent", fmt("percent", Decimal("0.1250"))) == "0.125"


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields = [{"name": "discount", "type": "percent", "options": {"min": 0, "max": 1}}]
    with entity(new_site, fields) as client:
        small = create(client, {"label": "small", "discount": "0.05"})
        assert small["discount"] == "0.0500"
        big = create(client, {"label": "big", "discount": 0.875})
        assert big["discount"] == "0.8750"
        create(client, {"label": "none"})
        assert read(client, big["id"])["discount"] == "0.8750"
        assert labels(client, {">=": [{"var": "discount"}, "0.5"]}) == ["big"]
        assert labels(client, {"==": [{"var": "discount"}, 0.05]}) == ["small"]
        assert labels(client, {"missing": "discount"}) == ["none"]
        assert_refused(client, {"discount": "1.5"}, "discount", "must be at most 100%")
        assert_refused(client, {"discount": "0.12345"}, "discount", "more than 2 digits")
