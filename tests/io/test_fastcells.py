"""The import's shortcuts for common cells give exactly what the kernel's ``parse_cell`` gives.

If this fails after a change to :mod:`jimu.fields.cells`, update
:mod:`jimu.io.fastcells` to match (or drop the shortcut for that kind).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jimu.fields.cells import CellError, parse_cell
from jimu.io.fastcells import fast_column_parser, fast_parser

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
STORAGES = ["text", "integer", "link", "decimal", "date", "datetime", "boolean"]

_CHARS = "0123456789-+.,:/ T Z年月日¥￥%eE是否truefalsyn"
texts = st.text(alphabet=_CHARS, max_size=25)
shaped = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.dates().map(dt.date.isoformat),
    st.dates().map(lambda d: d.isoformat().replace("-", "/")),
    st.datetimes().map(lambda m: m.isoformat(sep=" ")),
    st.datetimes(timezones=st.just(dt.UTC)).map(dt.datetime.isoformat),
    st.sampled_from(["是", "否", "true", "FALSE", "1", "0", " yes ", "√", "", "  ", "1990-02-30"]),
)
cells = st.one_of(
    texts,
    shaped,
    shaped.map(lambda text: f"  {text} "),
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(),
)


def as_input(value: Any) -> Any:
    """A parsed value as JSON input text: how the record repository receives either form.

    The kernel gives ``"1299.50"`` and ``"2024-11-11T20:00:00+08:00"``, the
    shortcuts the Python values those decode into; both must be the same input.
    """
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, dt.date):  # dates and date-times: the text an API client sends
        return ("time", value.isoformat())
    if isinstance(value, str):
        return ("time" if _ISO.fullmatch(value) else "text", value)
    return (type(value).__name__, value)


_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T.*)?")


def outcome(parse: Any, cell: Any) -> tuple[str, Any]:
    try:
        return "value", as_input(parse(cell))
    except CellError as exc:
        return "error", str(exc)


def column_outcome(parse_column: Any, cells: list[Any]) -> list[Any] | None:
    """The parsed column as input, or ``None`` when the column parser refuses it."""
    try:
        return [as_input(value) for value in parse_column(cells)]
    except (CellError, ValueError, TypeError, AttributeError):
        return None


@pytest.mark.parametrize("storage", STORAGES)
@settings(max_examples=400, deadline=None)
@given(cell=cells)
def test_shortcuts_agree_with_the_kernel(storage: str, cell: Any) -> None:
    kernel = functools.partial(parse_cell, storage, timezone=TZ)
    fast = fast_parser(storage, kernel, TZ)
    wanted = decimal_text(storage, outcome(kernel, cell))
    assert decimal_text(storage, outcome(fast, cell)) == wanted
    assert decimal_text(storage, outcome(fast, cell)) == wanted  # again, remembered answers


def decimal_text(storage: str, result: tuple[str, Any]) -> tuple[str, Any]:
    """A decimal field's value the kernel gives as text (``"0"``) as the same decimal input."""
    if storage == "decimal" and result[0] == "value" and result[1][0] == "text":
        return ("value", ("decimal", result[1][1]))
    return result


@pytest.mark.parametrize("storage", STORAGES)
@settings(max_examples=200, deadline=None)
@given(column=st.lists(cells, max_size=8))
def test_column_shortcuts_agree_with_the_cell_ones(storage: str, column: list[Any]) -> None:
    """A column parser gives what the cell parser gives for each cell, or refuses the column.

    Refusing is allowed (the importer then parses that column a cell at a
    time); a different value is not. A column of good common cells is never
    refused.
    """
    kernel = functools.partial(parse_cell, storage, timezone=TZ)
    cell_by_cell = [
        decimal_text(storage, outcome(fast_parser(storage, kernel, TZ), cell)) for cell in column
    ]
    whole = column_outcome(fast_column_parser(storage, kernel, TZ), column)
    if whole is not None:
        assert [decimal_text(storage, ("value", value)) for value in whole] == cell_by_cell
    else:
        assert any(kind == "error" for kind, _ in cell_by_cell) or storage in {"date", "datetime"}


def test_common_cells_take_the_shortcut() -> None:
    def refuse(cell: Any) -> Any:
        raise AssertionError(f"{cell!r} went to the kernel")

    assert fast_parser("text", refuse, TZ)(" 王芳 ") == "王芳"
    assert fast_parser("integer", refuse, TZ)("120") == 120
    assert fast_parser("integer", refuse, TZ)(13800138000.0) == 13800138000
    assert str(fast_parser("decimal", refuse, TZ)("1299.50")) == "1299.50"
    assert str(fast_parser("decimal", refuse, TZ)(0.1)) == "0.1"
    assert fast_parser("date", refuse, TZ)("1990-05-01") == dt.date(1990, 5, 1)
    moment = fast_parser("datetime", refuse, TZ)("2024-11-11 20:00:00")
    assert moment.isoformat() == "2024-11-11T20:00:00+08:00"


def test_common_columns_take_the_shortcut_in_one_pass() -> None:
    def refuse(cell: Any) -> Any:
        raise AssertionError(f"{cell!r} went to the kernel")

    def column(storage: str, cells: list[Any]) -> list[Any]:
        return fast_column_parser(storage, refuse, TZ)(cells)

    assert column("text", [" 王芳 ", "", "李雷"]) == ["王芳", None, "李雷"]
    assert column("integer", ["120", "-3"]) == [120, -3]
    assert [str(v) for v in column("decimal", ["1299.50", "7"])] == ["1299.50", "7"]
    assert column("date", ["1990-05-01"]) == [dt.date(1990, 5, 1)]
    [moment] = column("datetime", ["2024-11-11 20:00:00"])
    assert moment.isoformat() == "2024-11-11T20:00:00+08:00"
    assert column("boolean", [True, False]) == [True, False]  # spreadsheet booleans as they are


def test_whole_numbers_in_other_scripts_read_as_the_kernel_reads_them() -> None:
    kernel = functools.partial(parse_cell, "integer", timezone=TZ)
    cells = ["١٢", "０７", "+5", " 6 "]
    assert fast_column_parser("integer", kernel, TZ)(cells) == [kernel(cell) for cell in cells]


def test_a_column_with_a_bad_cell_is_refused_whole() -> None:
    kernel = functools.partial(parse_cell, "integer", timezone=TZ)
    with pytest.raises(CellError):
        fast_column_parser("integer", kernel, TZ)(["1", "two", "3"])
    kernel = functools.partial(parse_cell, "date", timezone=TZ)
    with pytest.raises(ValueError, match="day is out of range"):
        fast_column_parser("date", kernel, TZ)(["2023-02-28", "2023-02-30"])
