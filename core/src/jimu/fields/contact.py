"""The phone field type: validated with ``phonenumbers``, stored in E.164."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar

import msgspec
import phonenumbers

from jimu.fields import Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType, check_bool_option
from jimu.meta import FieldDef, MetadataError, Translatable

__all__ = ["PhoneType", "parse_phone"]

_CN_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def _valid(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def parse_phone(text: str, region: str = "CN") -> phonenumbers.PhoneNumber | None:
    """The valid phone number ``text`` stands for, or ``None``.

    ``text`` is read as a number of ``region`` unless it starts with ``+`` (or
    the region's international prefix, such as ``00``). Whatever the region, a
    mainland China mobile number (11 digits from 13x to 19x) needs no ``+86``,
    and a digits-only number that is only valid with a ``+`` in front (a
    spreadsheet's ``8613800138000``) is taken as international.
    """
    text = text.strip()
    number = _valid(text, region)
    if number is not None:
        return number
    digits = re.sub(r"[\s\-().]", "", text)
    if _CN_MOBILE.match(digits):
        return _valid(digits, "CN")
    if digits.isdigit():
        return _valid("+" + digits, None)
    return None


class PhoneType(CanonicalType):
    """A phone number, stored in E.164 (``+8613800138000``).

    Numbers without a country code are read as numbers of option ``region``
    (default ``CN``); mainland China mobiles are accepted without ``+86`` whatever
    the region. ``mobile_only: true`` refuses fixed lines.
    """

    name = "phone"
    storage: ClassVar[Storage] = "text"
    widget = "phone"
    label: ClassVar[Translatable] = {"en": "Phone", "zh-CN": "电话"}
    allowed_options = frozenset({"region", "mobile_only"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        region = field.options.get("region", "CN")
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise MetadataError(
                f"{path}.options.region",
                f"{region!r} is not a region phonenumbers knows (an ISO 3166 code such as CN, HK, US)",
            )
        check_bool_option(field, path, "mobile_only")

    def _region(self, field: FieldDef) -> str:
        return str(field.options.get("region", "CN"))

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=40)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        number = parse_phone(value, self._region(field))
        if number is None:
            return (
                f"{value!r} is not a valid phone number (numbers of other countries than "
                f"{self._region(field)} start with + and the country code)"
            )
        if (
            field.options.get("mobile_only")
            and phonenumbers.number_type(number) not in _MOBILE_TYPES
        ):
            return f"{value!r} is not a mobile number"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        number = parse_phone(value, self._region(field))
        if number is None:
            return value
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a phone number")
        if isinstance(cell, int | float):
            # a phone column that the spreadsheet turned into numbers: 13800138000.0
            if not float(cell).is_integer() or cell <= 0:
                raise CellError(f"{cell!r} is not a phone number")
            text = str(int(cell))
        else:
            text = str(cell).strip().lstrip("'").removeprefix("tel:")
        number = parse_phone(text, self._region(field))
        if number is None:
            return text  # validation says why
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
