"""barcode: EAN-13, EAN-8 or UPC-A with a valid check digit, or Code 128 text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jimu.fields.text import gtin_check_digit
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

EAN13 = "6901234567892"
EAN8 = "96385074"
UPCA = "036000291452"


def test_check_digits() -> None:
    assert gtin_check_digit(EAN13[:-1]) == 2
    assert gtin_check_digit(EAN8[:-1]) == 4
    assert gtin_check_digit(UPCA[:-1]) == 2


def test_valid_values() -> None:
    assert accept("barcode", EAN13) == EAN13
    assert accept("barcode", "690 1234 56789 2") == EAN13
    assert accept("barcode", EAN8) == EAN8
    assert accept("barcode", UPCA) == UPCA
    assert accept("barcode", EAN13, format="ean13") == EAN13
    assert accept("barcode", UPCA, format="upca") == UPCA
    assert accept("barcode", "SKU-001 a/b", format="code128") == "SKU-001 a/b"


def test_invalid_values() -> None:
    assert reason("barcode", "6901234567890") == (
        "'6901234567890' has a wrong check digit for EAN-13 (expected 2, not 0)"
    )
    assert "is not an EAN-13, EAN-8 or UPC-A barcode" in reason("barcode", "12345")
    assert "is not an EAN-13 barcode (13 digits)" in reason("barcode", EAN8, format="ean13")
    assert "is not an EAN-8 barcode" in reason("barcode", "69012345678x", format="ean8")
    assert "printable ASCII" in reason("barcode", "条码", format="code128")
    assert "1 to 80 characters" in reason("barcode", "", format="code128")


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "b", "type": "barcode", "options": {"format": "qr"}},
        "fields[0].options.format",
        "format must be one of",
    )


def test_cells() -> None:
    assert parse("barcode", 6901234567892.0) == EAN13  # a number column
    assert parse("barcode", 36000291452) == UPCA  # the leading zero a number column dropped
    assert parse("barcode", 36000291452, format="ean13") == "0036000291452"
    assert parse("barcode", "'6901234567892") == EAN13
    assert parse("barcode", "690-1234-56789-2") == EAN13
    assert parse("barcode", 12345, format="code128") == "12345"
    assert parse("barcode", "") is None
    assert fmt("barcode", EAN13) == EAN13
    assert fmt("barcode", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    fields: list[dict[str, Any]] = [
        {"name": "ean", "type": "barcode"},
        {"name": "code", "type": "barcode", "options": {"format": "code128"}},
    ]
    with entity(new_site, fields) as client:
        tea = create(client, {"label": "tea", "ean": "690 1234 56789 2", "code": "TEA-01"})
        assert tea["ean"] == EAN13
        create(client, {"label": "cola", "ean": UPCA})
        create(client, {"label": "none"})
        assert read(client, tea["id"])["code"] == "TEA-01"
        assert labels(client, {"starts_with": [{"var": "ean"}, "690"]}) == ["tea"]
        assert labels(client, {"==": [{"var": "ean"}, UPCA]}) == ["cola"]
        assert labels(client, {"missing": "ean"}) == ["none"]
        assert_refused(client, {"ean": "6901234567890"}, "ean", "wrong check digit")
        assert_refused(client, {"code": "条码"}, "code", "printable ASCII")
