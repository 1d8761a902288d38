"""The import's shortcuts for common cells give exactly what the kernel's ``parse_cell`` gives.

If this fails after a change to :mod:`jimu.fields.cells`, update
:mod:`jimu.io.fastcells` to match (or drop the shortcut for that kind).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jimu.fields.cells import CellError, parse_cell
from jimu.io.fastcells import fast_parser

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


def outcome(parse: Any, cell: Any) -> tuple[str, Any]:
    try:
        return "value", parse(cell)
    except CellError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("storage", STORAGES)
@settings(max_examples=400, deadline=None)
@given(cell=cells)
def test_shortcuts_agree_with_the_kernel(storage: str, cell: Any) -> None:
    kernel = functools.partial(parse_cell, storage, timezone=TZ)
    fast = fast_parser(storage, kernel, TZ)
    assert outcome(fast, cell) == outcome(kernel, cell)
    assert outcome(fast, cell) == outcome(kernel, cell)  # again, for the remembered answers


def test_common_cells_take_the_shortcut() -> None:
    def refuse(cell: Any) -> Any:
        raise AssertionError(f"{cell!r} went to the kernel")

    assert fast_parser("text", refuse, TZ)(" 王芳 ") == "王芳"
    assert fast_parser("integer", refuse, TZ)("120") == 120
    assert fast_parser("integer", refuse, TZ)(13800138000.0) == 13800138000
    assert fast_parser("decimal", refuse, TZ)("1299.50") == "1299.50"
    assert fast_parser("decimal", refuse, TZ)(0.1) == "0.1"
    assert fast_parser("date", refuse, TZ)("1990-05-01") == "1990-05-01"
    assert fast_parser("datetime", refuse, TZ)("2024-11-11 20:00:00") == "2024-11-11T20:00:00+08:00"
