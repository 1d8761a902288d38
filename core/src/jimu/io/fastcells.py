"""Shortcuts for the commonest imported cells, for field types that keep the kernel's parsing.

:func:`jimu.fields.cells.parse_cell` handles every shape of cell a person may
type; a large import mostly meets a few: ``1234``, ``1234.56``,
``2024-03-08``, a number read from a spreadsheet. For those shapes the
functions here give the value ``parse_cell`` gives, without its search
through formats (``strptime`` alone costs more than the rest of a row), and
already as the Python value the field's input type decodes it into: a
:class:`~decimal.Decimal` where ``parse_cell`` gives ``"1234.56"``, a
:class:`~datetime.date` for ``"2024-03-08"``, an aware
:class:`~datetime.datetime` for ``"2024-03-08T14:30:00+08:00"``. The record
repository validates either form the same way (see
:meth:`jimu.store.records.RecordRepository.create_many`), so the shortcut
saves the text round trip too. Any other cell goes to the field type's own
``parse_cell``, so messages and unusual formats stay the kernel's.
``tests/io/test_fastcells.py`` checks the two agree, so a change of the
kernel's parsing that they miss fails a test.

Two forms of each shortcut: :func:`fast_parser` parses one cell;
:func:`fast_column_parser` parses a whole column of a chunk of rows in one
comprehension (no function call per common cell) and raises on the first
cell it cannot parse, leaving the importer to go through that column a cell
at a time to name every bad one.

Only used for field types that do not override :meth:`FieldType.parse_cell`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["fast_column_parser", "fast_parser"]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Parse = Callable[[Any], Any]
ParseColumn = Callable[[Sequence[Any]], list[Any]]


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


def fast_column_parser(storage: str, fallback: Parse, timezone: dt.tzinfo) -> ParseColumn:
    """The values of a column of cells, as :func:`fast_parser` gives them one by one.

    Raises (:class:`~jimu.fields.cells.CellError`, ``ValueError``,
    ``TypeError``, ``AttributeError``) when a cell cannot be parsed, or when
    a shortcut cannot tell: parse that column again a cell at a time with
    :func:`fast_parser` to know which cells are bad and why.
    """
    parse = fast_parser(storage, fallback, timezone)
    if storage == "text":

        def text_column(cells: Sequence[Any]) -> list[Any]:
            try:  # CSV: text only, one comprehension with no call per cell
                return [cell.strip() or None for cell in cells]
            except AttributeError:  # a spreadsheet's numbers or dates among the text
                return [parse(cell) for cell in cells]

        return text_column
    if storage in ("integer", "link"):

        def integer_column(cells: Sequence[Any]) -> list[Any]:
            # isdecimal: digits only (any script's, as the kernel's \d), no sign, no space
            return [
                int(cell) if type(cell) is str and cell.isdecimal() else parse(cell)
                for cell in cells
            ]

        return integer_column
    if storage == "decimal":
        decimal = _DECIMAL.fullmatch

        def decimal_column(cells: Sequence[Any]) -> list[Any]:
            return [
                Decimal(cell) if type(cell) is str and decimal(cell) else parse(cell)
                for cell in cells
            ]

        return decimal_column
    if storage == "date":
        day = _DATE.fullmatch
        from_text = dt.date.fromisoformat

        def date_column(cells: Sequence[Any]) -> list[Any]:
            # fromisoformat raises for a day that does not exist (2023-02-30): the
            # cell-at-a-time pass then lets the kernel say so
            return [
                from_text(cell) if type(cell) is str and day(cell) else parse(cell)
                for cell in cells
            ]

        return date_column
    if storage == "datetime":
        moment = dt.datetime.fromisoformat

        def datetime_column(cells: Sequence[Any]) -> list[Any]:
            # fromisoformat raises for other formats: the cell-at-a-time pass tries them
            return [
                (
                    read
                    if (read := moment(cell)).tzinfo is not None
                    else read.replace(tzinfo=timezone)
                )
                if type(cell) is str and cell
                else parse(cell)
                for cell in cells
            ]

        return datetime_column
    return lambda cells: [parse(cell) for cell in cells]


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
                return Decimal(text)
        elif kind is float and cell == cell and cell not in (float("inf"), float("-inf")):
            return Decimal(repr(cell))
        elif kind is int:
            return Decimal(cell)
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
                    return dt.date.fromisoformat(text)
                except ValueError:
                    pass  # not a real day: the kernel says why
        elif kind is dt.date:
            return cell
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
        return moment

    return parse


def _remembered(fallback: Parse) -> Parse:
    """``fallback`` remembering its answers for the few distinct text cells of a column."""
    answers: dict[str, Any] = {}

    def parse(cell: Any) -> Any:
        kind = type(cell)
        if kind is bool:  # a spreadsheet's yes/no cell
            return cell
        if kind is str:
            answer = answers.get(cell, answers)
            if answer is not answers:
                return answer
            answer = fallback(cell)  # raises for a bad cell: nothing remembered
            if len(answers) < _REMEMBERED:
                answers[cell] = answer
            return answer
        return fallback(cell)

    return parse
