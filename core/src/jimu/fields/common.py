"""Helpers shared by the built-in field types: option checks, canonical writes, lists."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from jimu.fields import Dialect, FieldType
from jimu.fields.cells import CellError
from jimu.meta import FieldDef, MetadataError

__all__ = [
    "LIST_SEPARATORS",
    "CanonicalType",
    "cell_decimal",
    "check_bool_option",
    "check_choice_option",
    "check_int_option",
    "check_number_option",
    "has_separator",
    "split_list",
]

#: What separates the items of a list written in one spreadsheet cell:
#: ``"vip, 老客、新客; 团购"``. Tags and choices may not contain them.
LIST_SEPARATORS = ",，;；、|\n\r\t"
_SPLIT = re.compile("[" + re.escape(LIST_SEPARATORS) + "]")


class CanonicalType(FieldType):
    """A type whose stored value is its :meth:`normalize` form.

    While :attr:`normalize_on_write` is true, :meth:`to_db` normalises before
    binding, so a value that reached the database without passing through
    :meth:`normalize` is still stored in canonical form (normalize is
    idempotent, so a second time costs time only).
    """

    #: Normalise in :meth:`to_db` too (a safety net for writes that skip ``normalize``).
    normalize_on_write: ClassVar[bool] = True

    def to_db(self, field: FieldDef, value: Any, dialect: Dialect) -> Any:
        if value is not None and self.normalize_on_write:
            value = self.normalize(field, value)
        return super().to_db(field, value, dialect)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_option(
    field: FieldDef, path: str, name: str, default: int, low: int, high: int
) -> int:
    """The whole-number option ``name`` (``default`` when absent), from ``low`` to ``high``."""
    value = field.options.get(name, default)
    if not _is_int(value) or not low <= value <= high:
        raise MetadataError(
            f"{path}.options.{name}", f"{name} must be a whole number from {low} to {high}"
        )
    return int(value)


def check_bool_option(field: FieldDef, path: str, name: str) -> None:
    """The option ``name`` is absent or ``true``/``false``."""
    if name in field.options and not isinstance(field.options[name], bool):
        raise MetadataError(f"{path}.options.{name}", f"{name} must be true or false")


def check_choice_option(
    field: FieldDef, path: str, name: str, choices: Iterable[str], default: str
) -> str:
    """The option ``name`` is one of ``choices`` (``default`` when absent)."""
    value = field.options.get(name, default)
    allowed = list(choices)
    if value not in allowed:
        raise MetadataError(
            f"{path}.options.{name}", f"{name} must be one of {', '.join(map(repr, allowed))}"
        )
    return str(value)


def check_number_option(field: FieldDef, path: str, name: str) -> Decimal | None:
    """The option ``name`` is absent or a finite number (a JSON number or a decimal string)."""
    if name not in field.options:
        return None
    value = field.options[name]
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        number = Decimal(str(value))
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise MetadataError(f"{path}.options.{name}", f"{name} must be a number")
    return number


def split_list(text: str) -> list[str]:
    """The non-blank items of a cell like ``"vip, 老客、新客"``, trimmed."""
    return [item.strip() for item in _SPLIT.split(text) if item.strip()]


def has_separator(text: str) -> bool:
    """Whether ``text`` holds one of :data:`LIST_SEPARATORS`."""
    return _SPLIT.search(text) is not None


def cell_decimal(cell: Any, what: str = "a number") -> Decimal:
    """A spreadsheet number as an exact decimal, with Excel's 15 significant digits.

    ``0.1 + 0.2`` computed by a spreadsheet arrives as ``0.30000000000000004``;
    Excel shows and means ``0.3``.
    """
    if isinstance(cell, bool) or not isinstance(cell, int | float | Decimal):
        raise CellError(f"{cell!r} is not {what}")
    number = Decimal(format(cell, ".15g")) if isinstance(cell, float) else Decimal(cell)
    if not number.is_finite():
        raise CellError(f"{cell!r} is not a finite number")
    return number
