"""Shortcuts for the commonest imported cells, for field types that keep the kernel's parsing.

:func:`jimu.fields.cells.parse_cell` handles every shape of cell a person may
type; a large import mostly meets a few: ``1234``, ``1234.56``,
``2024-03-08``, a number read from a spreadsheet. For those shapes the
functions here give exactly what ``parse_cell`` gives, without its search
through formats (``strptime`` alone costs more than the rest of a row). Any
other cell goes to the field type's own ``parse_cell``, so messages and
unusual formats stay the kernel's. ``tests/io/test_fastcells.py`` checks the
two agree, so a change of the kernel's parsing that they miss fails a test.

Only used for field types that do not override :meth:`FieldType.parse_cell`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["fast_parser"]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Parse = Callable[[Any], Any]


#: Distinct cells remembered per yes/no column (there are only a few: 是, 否, true, 1...).
_REMEMBERED = 64


def fast_parser(storage: str, fallback: Parse, timezone: dt.tzinfo) -> Parse:
    """``parse_cell`` of ``storage`` with shortcuts; ``fallback`` for every other cell."""
    if storage == "text":
        return _text(fallback)
    if storage in ("integer", "link"):
        return _integer(fallback)
    if storage == "decimal":
        return _decimal(fallback)
    if storage == "date":
        return _date(fallback)
    if storage == "datetime":
        return _datetime(fallback, timezone)
    if storage == "boolean":
        return _remembered(fallback)
    return fallback


def _text(fallback: Parse) -> Parse:
    def parse(cell: Any) -> Any:
        if type(cell) is str:
            cell = cell.strip()
            return cell or None
        return fallback(cell)

    return parse


def _integer(fallback: Parse) -> Parse:
    match = _INTEGER.fullmatch

    def parse(cell: Any) -> Any:
        kind = type(cell)
        if kind is str:
            text = cell.strip()
            if match(text):
                return int(text)
        elif kind is int:
            return cell
        elif kind is float and cell.is_integer():
            return int(cell)
        return fallback(cell)

    return parse


def _decimal(fallback: Parse) -> Parse:
    match = _DECIMAL.fullmatch

    def parse(cell: Any) -> Any:
        kind = type(cell)
        if kind is str:
            text = cell.strip()
            if match(text):
                return str(Decimal(text))
        elif kind is float and cell == cell and cell not in (float("inf"), float("-inf")):
            return str(Decimal(repr(cell)))
        elif kind is int:
            return str(Decimal(cell))
        return fallback(cell)

    return parse


def _date(fallback: Parse) -> Parse:
    match = _DATE.fullmatch

    def parse(cell: Any) -> Any:
        kind = type(cell)
        if kind is str:
            text = cell.strip()
            if match(text):
                try:
                    return dt.date.fromisoformat(text).isoformat()
                except ValueError:
                    pass  # not a real day: the kernel says why
        elif kind is dt.date:
            return cell.isoformat()
        return fallback(cell)

    return parse


def _datetime(fallback: Parse, timezone: dt.tzinfo) -> Parse:
    fromisoformat = dt.datetime.fromisoformat

    def parse(cell: Any) -> Any:
        kind = type(cell)
        if kind is str:
            try:
                moment = fromisoformat(cell.strip())
            except ValueError:
                return fallback(cell)  # another format, or not a time: the kernel's business
        elif kind is dt.datetime:
            moment = cell
        else:
            return fallback(cell)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone)
        return moment.isoformat()

    return parse


def _remembered(fallback: Parse) -> Parse:
    """``fallback`` remembering its answers for the few distinct text cells of a column."""
    answers: dict[str, Any] = {}

    def parse(cell: Any) -> Any:
        if type(cell) is str:
            answer = answers.get(cell, answers)
            if answer is not answers:
                return answer
            answer = fallback(cell)  # raises for a bad cell: nothing remembered
            if len(answers) < _REMEMBERED:
                answers[cell] = answer
            return answer
        return fallback(cell)

    return parse
