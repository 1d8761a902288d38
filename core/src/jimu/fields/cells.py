"""Spreadsheet cells in and out: what each storage kind makes of an imported cell,
and what it writes into an exported one.

Imports read cells as CSV text or as typed XLSX values (numbers, booleans,
dates, Excel serial numbers); the functions here turn either into the JSON
value the field's input type accepts, so an imported row is validated exactly
like an API request. Field types override :meth:`FieldType.parse_cell` and
:meth:`FieldType.format_cell` where their cells look different (phone
numbers stored as numbers, regions as "省/市/区").
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "EXCEL_EPOCH",
    "FILTER_OPERATORS",
    "CellError",
    "format_cell",
    "parse_cell",
]

#: Day zero of Excel's 1900 date system (Excel counts a non-existent 1900-02-29).
EXCEL_EPOCH = dt.datetime(1899, 12, 30)

#: The JsonLogic operators a filter UI offers for each storage kind.
FILTER_OPERATORS: dict[str, tuple[str, ...]] = {
    "text": ("==", "!=", "in", "contains", "starts_with", "ends_with", "missing"),
    "integer": ("==", "!=", "<", "<=", ">", ">=", "in", "missing"),
    "decimal": ("==", "!=", "<", "<=", ">", ">=", "missing"),
    "boolean": ("==", "!=", "missing"),
    "date": ("==", "!=", "<", "<=", ">", ">=", "missing"),
    "datetime": ("<", "<=", ">", ">=", "missing"),
    "json": ("missing",),
    "link": ("==", "!=", "in", "missing"),
}

_TRUE = {"1", "true", "yes", "y", "t", "是", "对", "√", "✓", "有"}
_FALSE = {"0", "false", "no", "n", "f", "否", "错", "×", "✗", "无"}
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y年%m月%d日", "%Y%m%d")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M")


class CellError(ValueError):
    """An imported cell that cannot become a value of its field; the message says why."""


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _excel_serial(number: float) -> dt.datetime:
    if not 1 <= number < 2958466:  # 1900-01-01 .. 9999-12-31
        raise CellError(f"{number!r} is not a date (not an Excel serial number)")
    return EXCEL_EPOCH + dt.timedelta(days=number)


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))  # 13800138000.0 from a spreadsheet number column
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell).strip()


def parse_cell(storage: str, cell: Any, timezone: dt.tzinfo) -> Any:
    """The JSON input value for ``cell`` of a field stored as ``storage``.

    Blank cells are ``None``. Naive date-times are taken in ``timezone`` (the
    site's). Raises :class:`CellError` naming what is wrong.
    """
    if _blank(cell):
        return None
    if storage == "text":
        return _text(cell)
    if storage in {"integer", "link"}:
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a whole number")
        if isinstance(cell, int):
            return cell
        if isinstance(cell, float):
            if not cell.is_integer():
                raise CellError(f"{cell!r} is not a whole number")
            return int(cell)
        text = _text(cell).replace(",", "")
        if not re.fullmatch(r"[+-]?\d+(\.0+)?", text):
            raise CellError(f"{cell!r} is not a whole number")
        return int(text.split(".", 1)[0])
    if storage == "decimal":
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a number")
        text = _text(cell).replace(",", "").replace("¥", "").replace("￥", "").strip()
        if text.endswith("%"):
            raise CellError(f"{cell!r} is a percentage; write it as a number")
        try:
            number = Decimal(repr(cell)) if isinstance(cell, float) else Decimal(text)
        except InvalidOperation:
            raise CellError(f"{cell!r} is not a number") from None
        if not number.is_finite():
            raise CellError(f"{cell!r} is not a finite number")
        return str(number)
    if storage == "boolean":
        if isinstance(cell, bool):
            return cell
        if isinstance(cell, int | float) and cell in (0, 1):
            return bool(cell)
        lowered = _text(cell).lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise CellError(f"{cell!r} is not yes/no (是/否, true/false, 1/0)")
    if storage == "date":
        return _parse_date(cell).isoformat()
    if storage == "datetime":
        return _parse_datetime(cell, timezone).isoformat()
    if storage == "json":
        if isinstance(cell, str):
            try:
                return json.loads(cell)
            except ValueError:
                raise CellError(f"{cell!r} is not JSON") from None
        return cell
    raise CellError(f"cannot import a {storage} value")


def _parse_date(cell: Any) -> dt.date:
    if isinstance(cell, dt.datetime):
        return cell.date()
    if isinstance(cell, dt.date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return _excel_serial(float(cell)).date()
    text = _text(cell)
    if re.fullmatch(r"\d+(\.\d+)?", text) and len(text.split(".")[0]) <= 5:
        return _excel_serial(float(text)).date()
    for pattern in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise CellError(f"{cell!r} is not a date (write 2024-03-08)") from None


def _parse_datetime(cell: Any, timezone: dt.tzinfo) -> dt.datetime:
    moment: dt.datetime | None = None
    if isinstance(cell, dt.datetime):
        moment = cell
    elif isinstance(cell, dt.date):
        moment = dt.datetime.combine(cell, dt.time())
    elif isinstance(cell, int | float) and not isinstance(cell, bool):
        moment = _excel_serial(float(cell))
    else:
        text = _text(cell)
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            for pattern in _DATETIME_FORMATS + _DATE_FORMATS:
                try:
                    moment = dt.datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
        if moment is None:
            raise CellError(f"{cell!r} is not a date and time (write 2024-03-08 14:30)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone)
    return moment


def format_cell(storage: str, value: Any, timezone: dt.tzinfo) -> Any:
    """An export cell for an API value: text, a number, a boolean or a naive date-time.

    Date-times are shown in ``timezone`` (the site's), since spreadsheets have
    no time zones; decimals stay exact as text-free :class:`~decimal.Decimal`.
    """
    if value is None:
        return None
    if storage == "datetime":
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(value)
        return moment.astimezone(timezone).replace(tzinfo=None)
    if storage == "json":
        return json.dumps(value, ensure_ascii=False)
    return value
