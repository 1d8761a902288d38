"""phone: validated with phonenumbers, stored in E.164; mainland mobiles need no +86."""

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


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("021-6288 8888", "+862162888888"),
        ("(010) 8888 6666", "+861088886666"),
        ("+852 6123 4567", "+85261234567"),
        ("+1 650-253-0000", "+16502530000"),
    ],
)
def test_valid_numbers_become_e164(given: str, stored: str) -> None:
    assert accept("phone", given) == stored


def test_region_option() -> None:
    assert accept("phone", "6123 4567", region="HK") == "+85261234567"
    # a mainland mobile is accepted without +86 whatever the region
    assert accept("phone", "13912345678", region="HK") == "+8613912345678"
    assert accept("phone", "(650) 253-0000", region="US") == "+16502530000"


def test_invalid_numbers() -> None:
    for bad in ("12345", "1380013800", "138001380001", "phone", "+86 021 1"):
        assert "is not a valid phone number" in reason("phone", bad)
    assert "is not a mobile number" in reason("phone", "021-62888888", mobile_only=True)
    assert accept("phone", "13800138000", mobile_only=True) == "+8613800138000"
    assert "Expected `str`" in reason("phone", 13800138000)


def test_bad_options(new_site: Callable[..., Site]) -> None:
    assert_bad_definition(
        new_site,
        {"name": "p", "type": "phone", "options": {"region": "China"}},
        "fields[0].options.region",
        "not a region",
    )


def test_import_cells() -> None:
    assert parse("phone", 13800138000.0) == "+8613800138000"  # a number column
    assert parse("phone", 13800138000) == "+8613800138000"
    assert parse("phone", 8613800138000) == "+8613800138000"
    assert parse("phone", "'13800138000") == "+8613800138000"  # Excel's text marker
    assert parse("phone", " 138 0013 8000 ") == "+8613800138000"
    assert parse("phone", "tel:+8613800138000") == "+8613800138000"
    assert parse("phone", "12345") == "12345"  # left for validation to refuse
    assert parse("phone", "") is None
    for bad in (1.5, True, -1):
        with pytest.raises(CellError):
            parse("phone", bad)


def test_export_cells() -> None:
    assert fmt("phone", "+8613800138000") == "+8613800138000"
    assert fmt("phone", None) is None


def test_through_the_api(new_site: Callable[..., Site]) -> None:
    with entity(new_site, [{"name": "mobile", "type": "phone", "unique": True}]) as client:
        wang = create(client, {"label": "wang", "mobile": "138 0013 8000"})
        assert wang["mobile"] == "+8613800138000"
        create(client, {"label": "hk", "mobile": "+852 6123 4567"})
        create(client, {"label": "none"})
        assert read(client, wang["id"])["mobile"] == "+8613800138000"
        assert labels(client, {"starts_with": [{"var": "mobile"}, "+86"]}) == ["wang"]
        assert labels(client, {"==": [{"var": "mobile"}, "+85261234567"]}) == ["hk"]
        assert_refused(client, {"mobile": "12345"}, "mobile", "is not a valid phone number")
        # the same number written differently is the same value
        duplicate = client.post("/api/v1/records/item", json={"mobile": "+86 13800138000"})
        assert duplicate.status_code == 409, duplicate.text
