"""currency: an exact amount in one ISO 4217 currency, scale by currency."""

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


def test_valid_amounts_take_the_currency_scale() -> None:
    assert accept("currency", "1234.5") == Decimal("1234.50")
    assert accept("currency", 12) == Decimal("12.00")
    assert accept("currency", "0.10") == Decimal("0.10")
    assert accept("currency", "1500", currency="JPY") == Decimal("1500")
    assert accept("currency", "1.250", currency="KWD") == Decimal("1.250")
    assert accept("currency", "9.1234", scale=4) == Decimal("9.1234")
    assert accept("currency", "-3.5", currency="USD") == Decimal("-3.50")
    assert accept("currency", "1.2300") == Decimal("1.23")  # zeros past the scale are harmless
    big = "1" + "0" * 34 + ".5"  # 38 digits: beyond the default decimal context
    assert accept("currency", big, precision=38) == Decimal(big + "0")


def test_invalid_amounts() -> None:
    assert (
        reason("currency", "1.005") == "CNY amounts have at most 2 digits after the decimal point"
    )
    assert reason("currency", "10.5", currency="JPY") == "JPY amounts are whole numbers"
    assert reason("currency", "-1", min=0) == "must be at least ¥0.00"
    assert reason("currency", "100000", max="99999.99") == "must be at most ¥99,999.99"
    assert "too large" in reason("currency", "1000000", precision=8)
    assert "Expected `decimal`" in reason("currency", True)


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "p", "type": "currency", "options": {"currency": "RMB"}},
        "fields[0].options.currency",
        "not an ISO 4217 currency code",
    )


def test_import_cells() -> None:
    assert parse("currency", "¥1,234.50") == "1234.50"
    assert parse("currency", " ￥1,234.5 ") == "1234.5"
    assert parse("currency", "1234.50元") == "1234.50"
    assert parse("currency", "CNY 88") == "88"
    assert parse("currency", "RMB1,000") == "1000"
    assert parse("currency", "-¥12.00") == "-12.00"
    assert parse("currency", "¥-12.00") == "-12.00"
    assert parse("currency", "(¥12.00)") == "-12.00"
    assert parse("currency", 1234.5) == "1234.5"
    assert parse("currency", 0.1 + 0.2) == "0.3"  # a spreadsheet's float noise
    assert parse("currency", 15) == "15"
    assert parse("currency", "$1,234.50", currency="USD") == "1234.50"
    assert parse("currency", "¥1,500", currency="JPY") == "1500"
    assert parse("currency", "") is None
    for bad in ("$12", "12,34", "abc", "¥1.2.3", "12 欧元"):
        with pytest.raises(CellError, match="is not an amount in CNY"):
            parse("currency", bad)
    with pytest.raises(CellError):
        parse("currency", True)


def test_export_cells() -> None:
    assert fmt("currency", Decimal("1234.5")) == "¥1,234.50"
    assert fmt("currency", Decimal("-0.5")) == "-¥0.50"
    assert fmt("currency", "1500", currency="JPY") == "¥1,500"
    assert fmt("currency", Decimal("1234567.891"), currency="KWD") == "KWD 1,234,567.891"
    assert fmt("currency", Decimal("9.99"), currency="USD") == "$9.99"
    assert fmt("currency", None) is None
    # what an export writes, an import reads back
    assert parse("currency", fmt("currency", Decimal("1234.5"))) == "1234.50"


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields = [
        {"name": "price", "type": "currency", "options": {"min": 0}},
        {"name": "yen", "type": "currency", "options": {"currency": "JPY"}},
    ]
    with entity(new_site, fields) as client:
        cheap = create(client, {"label": "cheap", "price": "9.9", "yen": 1000})
        assert cheap["price"] == "9.90" and cheap["yen"] == "1000"
        dear = create(client, {"label": "dear", "price": "123456789012.34", "yen": "98765"})
        create(client, {"label": "none"})
        for record, price in ((cheap, "9.90"), (dear, "123456789012.34")):
            assert read(client, record["id"])["price"] == price
        assert labels(client, {">": [{"var": "price"}, "100"]}) == ["dear"]
        assert labels(client, {">=": [{"var": "yen"}, 50000]}) == ["dear"]
        assert labels(client, {"==": [{"var": "price"}, 9.9]}) == ["cheap"]
        assert labels(client, {"missing": "price"}) == ["none"]
        assert_refused(client, {"price": "1.234"}, "price", "at most 2 digits")
        assert_refused(client, {"yen": "1.5"}, "yen", "whole numbers")
        assert_refused(client, {"price": "-1"}, "price", "at least ¥0.00")
        assert_refused(client, {"price": "abc"}, "price", "Invalid decimal")
