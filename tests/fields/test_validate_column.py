"""``FieldType.validate_column`` refuses exactly what ``validate`` refuses, value by value.

Bulk writes (imports) check a column of a chunk at once; the types with a
faster column check (decimal, select, e-mail) are held here to their
``validate`` on values at every edge it draws.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from jimu.fields import FieldType
from jimu.fields.builtin import DecimalType, EmailType, SelectType
from jimu.meta import FieldDef

DECIMALS = [
    "0", "0.00", "0.000", "-0.00", "0E+3", "0E-7", "1E+2", "1.5", "1.50", "1.500", "0.001",
    "-999999.99", "999999.99", "1000000", "1234567.8", "12.3E-1", "NaN", "-Infinity",
]  # fmt: skip


def _agree(field_type: FieldType, field: FieldDef, values: list[Any]) -> list[str | None] | None:
    expected = [field_type.validate(field, v) if v is not None else None for v in values]
    got = field_type.validate_column(field, values)
    assert got == (expected if any(expected) else None)
    return got


@pytest.mark.parametrize("options", [{"precision": 8, "scale": 2}, {"min": 0, "max": 500}])
def test_decimal_column_check_agrees_with_validate(options: dict[str, Any]) -> None:
    field = FieldDef(name="amount", type="decimal", options=options)
    good = [Decimal(random.Random(7).randint(0, 50_000)) / 100, Decimal("12.30"), None] * 3
    assert _agree(DecimalType(), field, good) is None
    for text in DECIMALS:  # each edge among valid values, and on its own
        _agree(DecimalType(), field, [*good, Decimal(text)])
        _agree(DecimalType(), field, [Decimal(text)])
    reasons = _agree(DecimalType(), field, [Decimal("1.500"), Decimal("2"), Decimal("NaN")])
    assert reasons is not None and reasons[1] is None and reasons[0] and reasons[2]


def test_select_and_email_column_checks_agree_with_validate() -> None:
    select = FieldDef(name="city", type="select", options={"choices": ["上海", "北京"]})
    assert _agree(SelectType(), select, ["上海", None, "北京", "上海"]) is None
    assert _agree(SelectType(), select, ["上海", "杭州", None]) == [
        None,
        "'杭州' is not one of '上海', '北京'",
        None,
    ]
    email = FieldDef(name="email", type="email")
    assert _agree(EmailType(), email, ["a@example.cn", None]) is None
    assert _agree(EmailType(), email, ["a@example.cn", "not-an-address"]) is not None


def test_a_subclass_with_its_own_validate_is_checked_value_by_value() -> None:
    class EvenCents(DecimalType):
        name = "even_cents"

        def validate(self, field: FieldDef, value: Any) -> str | None:
            return super().validate(field, value) or (
                "must be an even number of cents" if (value * 100) % 2 else None
            )

    field = FieldDef(name="amount", type="decimal")
    assert EvenCents().validate_column(field, [Decimal("0.02"), Decimal("0.03")]) == [
        None,
        "must be an even number of cents",
    ]
