"""Number field types beyond integer and decimal: currency, percent and rating."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.fields import Dialect, FieldType, Storage
from jimu.fields.cells import CellError
from jimu.fields.common import (
    CanonicalType,
    cell_decimal,
    check_int_option,
    check_number_option,
)
from jimu.meta import FieldDef, MetadataError, Translatable

__all__ = ["ISO_4217", "CurrencyType", "PercentType", "RatingType"]


def _codes(text: str) -> list[str]:
    return text.split()


#: Active ISO 4217 currency codes and their minor units (digits after the point).
ISO_4217: dict[str, int] = {
    **dict.fromkeys(
        _codes(
            "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD "
            "BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP "
            "ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR "
            "JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU "
            "MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR "
            "RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
            "TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW "
            "ZWG"
        ),
        2,
    ),
    **dict.fromkeys(
        _codes("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"), 0
    ),
    **dict.fromkeys(_codes("BHD IQD JOD KWD LYD OMR TND"), 3),
    **dict.fromkeys(_codes("CLF UYW"), 4),
}

#: How amounts are written, per currency: the export symbol first, then what imports accept.
#: Currencies not listed are written with their code (``"CHF 12.50"``).
CURRENCY_MARKS: dict[str, tuple[str, ...]] = {
    "CNY": ("¥", "￥", "元", "圆", "块", "RMB", "人民币", "CN¥"),
    "JPY": ("¥", "￥", "円", "JP¥", "日元"),
    "USD": ("$", "US$", "美元", "美金"),
    "EUR": ("€", "欧元"),
    "GBP": ("£", "英镑"),
    "HKD": ("HK$", "港币", "港元", "$"),
    "MOP": ("MOP$", "澳门元", "$"),
    "TWD": ("NT$", "新台币", "$"),
    "SGD": ("S$", "新加坡元", "$"),
    "AUD": ("A$", "澳元", "$"),
    "CAD": ("C$", "加元", "$"),
    "KRW": ("₩", "韩元"),
    "INR": ("₹",),
    "RUB": ("₽",),
    "THB": ("฿",),
}

_AMOUNT = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+")


#: Room for 38 digits and more: the default context (28 digits) cannot quantize them.
_WIDE = Context(prec=80)


def _quantize(value: Decimal, scale: int) -> Decimal:
    """``value`` with exactly ``scale`` digits after the point."""
    return value.quantize(Decimal(1).scaleb(-scale), context=_WIDE)


def _decimals(value: Decimal) -> int:
    """Digits after the point that matter: ``1.2300`` has 2."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    significant = "".join(map(str, digits)).rstrip("0")
    trailing = len(digits) - len(significant)
    return max(0, -(exponent + trailing))


class _ExactDecimal(CanonicalType):
    """A decimal stored exactly with ``precision`` digits, ``scale`` after the point."""

    storage: ClassVar[Storage] = "decimal"

    def digits(self, field: FieldDef) -> tuple[int, int]:
        """``(precision, scale)`` of the stored value."""
        raise NotImplementedError

    def check_bounds(self, field: FieldDef, path: str) -> None:
        """``min`` and ``max`` are numbers, ``min`` at most ``max``."""
        low = check_number_option(field, path, "min")
        high = check_number_option(field, path, "max")
        if low is not None and high is not None and low > high:
            raise MetadataError(f"{path}.options.min", "min must not be greater than max")

    def input_type(self, field: FieldDef) -> Any:
        return Decimal

    def show(self, field: FieldDef, value: Decimal) -> str:
        """``value`` as people read it in messages."""
        return format(value, "f")

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if not value.is_finite():
            return "must be a finite number"
        precision, scale = self.digits(field)
        if _decimals(value) > scale:
            return self.too_precise(field, scale)
        if abs(value) >= Decimal(10) ** (precision - scale):
            return f"is too large for {precision} digits with {scale} after the point"
        for name, beyond in (("min", value.__lt__), ("max", value.__gt__)):
            if name in field.options:
                bound = Decimal(str(field.options[name]))
                if beyond(bound):
                    word = "at least" if name == "min" else "at most"
                    return f"must be {word} {self.show(field, bound)}"
        return None

    def too_precise(self, field: FieldDef, scale: int) -> str:
        """The reason for a value with more than ``scale`` digits after the point."""
        return f"has more than {scale} digits after the decimal point"

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return _quantize(Decimal(value), self.digits(field)[1])

    def reader(self, field: FieldDef, dialect: Dialect) -> Callable[[Any], Any] | None:
        # SQLite keeps NUMERIC as a float when it is not whole: restore the exact scale.
        scale = self.digits(field)[1]

        def read(value: Any) -> Decimal:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            return _quantize(number, scale)

        return read


def _currency(field: FieldDef) -> str:
    return str(field.options.get("currency", "CNY"))


class CurrencyType(_ExactDecimal):
    """An amount of money in one currency (option ``currency``, ISO 4217, default CNY).

    Stored as an exact decimal with the currency's minor units after the point
    (CNY 2, JPY 0, KWD 3) unless ``scale`` says otherwise.
    """

    name = "currency"
    widget = "currency"
    label: ClassVar[Translatable] = {"en": "Currency", "zh-CN": "金额"}
    allowed_options = frozenset({"currency", "scale", "precision", "min", "max"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        code = field.options.get("currency", "CNY")
        if not isinstance(code, str) or code not in ISO_4217:
            raise MetadataError(
                f"{path}.options.currency",
                f"{code!r} is not an ISO 4217 currency code (such as CNY, USD, JPY)",
            )
        precision = check_int_option(field, path, "precision", 18, 1, 38)
        check_int_option(field, path, "scale", ISO_4217[code], 0, min(precision, 10))
        self.check_bounds(field, path)

    def digits(self, field: FieldDef) -> tuple[int, int]:
        scale = field.options.get("scale", ISO_4217.get(_currency(field), 2))
        return int(field.options.get("precision", 18)), int(scale)

    def too_precise(self, field: FieldDef, scale: int) -> str:
        code = _currency(field)
        if scale == 0:
            return f"{code} amounts are whole numbers"
        return f"{code} amounts have at most {scale} digits after the decimal point"

    def show(self, field: FieldDef, value: Decimal) -> str:
        return self.format_amount(field, value)

    def format_amount(self, field: FieldDef, value: Decimal) -> str:
        """``Decimal("-1234.5")`` -> ``"-¥1,234.50"`` (code-prefixed without a symbol)."""
        code = _currency(field)
        scale = self.digits(field)[1]
        amount = format(_quantize(abs(value), scale), f",.{scale}f")
        marks = CURRENCY_MARKS.get(code)
        prefix = marks[0] if marks else f"{code} "
        return ("-" if value < 0 else "") + prefix + amount

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if not isinstance(cell, str):
            return format(cell_decimal(cell, "an amount"), "f")
        code = _currency(field)
        text = cell.strip().replace("−", "-").replace(" ", " ")
        negative = False
        if text.startswith("(") and text.endswith(")"):
            negative, text = True, text[1:-1].strip()
        marks = sorted({*CURRENCY_MARKS.get(code, ()), code}, key=len, reverse=True)
        changed = True
        while changed:
            changed = False
            for sign in ("-", "+"):
                if text.startswith(sign):
                    negative = negative or sign == "-"
                    text, changed = text[1:].strip(), True
            for mark in marks:
                if text.upper().startswith(mark.upper()):
                    text, changed = text[len(mark) :].strip(), True
                if text.upper().endswith(mark.upper()):
                    text, changed = text[: len(text) - len(mark)].strip(), True
        if not _AMOUNT.fullmatch(text):
            raise CellError(f"{cell!r} is not an amount in {code} (write {self._example(field)})")
        number = Decimal(text.replace(",", ""))
        return format(-number if negative else number, "f")

    def _example(self, field: FieldDef) -> str:
        return self.format_amount(field, Decimal("1234.5"))

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if value is None:
            return None
        return self.format_amount(field, Decimal(str(value)))


class PercentType(_ExactDecimal):
    """A percentage, stored as a fraction: 12.5% is ``0.125``.

    ``scale`` counts the digits after the point of the percentage (default 2,
    so 12.34% is the most precise), ``min``/``max`` bound the fraction.
    """

    name = "percent"
    widget = "percent"
    label: ClassVar[Translatable] = {"en": "Percent", "zh-CN": "百分比"}
    allowed_options = frozenset({"scale", "min", "max"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_int_option(field, path, "scale", 2, 0, 10)
        self.check_bounds(field, path)

    def digits(self, field: FieldDef) -> tuple[int, int]:
        return 18, int(field.options.get("scale", 2)) + 2

    def show(self, field: FieldDef, value: Decimal) -> str:
        return _percent_text(value)

    def too_precise(self, field: FieldDef, scale: int) -> str:
        digits = scale - 2
        if digits == 0:
            return "must be a whole percentage (0.125 is 12.5%)"
        return f"has more than {digits} digits after the point as a percentage"

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if not isinstance(cell, str):
            return format(cell_decimal(cell, "a percentage"), "f")  # Excel keeps 12.5% as 0.125
        text = cell.strip().replace(",", "").replace(" ", "")
        divisor = 1
        if text.endswith(("%", "％")):
            text, divisor = text[:-1], 100
        elif text.endswith("‰"):
            text, divisor = text[:-1], 1000
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", text):
            raise CellError(f"{cell!r} is not a percentage (write 12.5% or 0.125)")
        return format(number / divisor, "f")

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if value is None:
            return None
        return _percent_text(Decimal(str(value)))


def _percent_text(fraction: Decimal) -> str:
    """``Decimal("0.1250")`` -> ``"12.5%"``."""
    points = (fraction * 100).normalize()
    return format(points, "f") + "%"


_STARS = re.compile(r"^[★⭐✩☆\s]+$")
_RATING = re.compile(r"^(\d+)(?:\.0+)?\s*(?:/\s*\d+|星|分|颗星|stars?)?$", re.IGNORECASE)


class RatingType(FieldType):
    """A rating from 1 to ``max`` stars (default 5)."""

    name = "rating"
    storage: ClassVar[Storage] = "integer"
    widget = "rating"
    label: ClassVar[Translatable] = {"en": "Rating", "zh-CN": "评分"}
    allowed_options = frozenset({"max"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_int_option(field, path, "max", 5, 1, 10)

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[int, msgspec.Meta(ge=1, le=int(field.options.get("max", 5)))]

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, int | float) and not isinstance(cell, bool):
            if float(cell).is_integer():
                return int(cell)
            raise CellError(f"{cell!r} is not a whole number of stars")
        text = str(cell).strip()
        if _STARS.match(text):
            return text.count("★") + text.count("⭐")
        match = _RATING.match(text)
        if not match:
            raise CellError(f"{cell!r} is not a rating (write 4, 4/5 or ★★★★)")
        return int(match.group(1))
