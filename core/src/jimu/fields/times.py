"""Time of day and duration field types."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

import msgspec

from jimu.fields import Storage
from jimu.fields.cells import CellError
from jimu.fields.common import CanonicalType, check_bool_option
from jimu.meta import FieldDef, Translatable

__all__ = ["DurationType", "TimeType", "format_duration", "parse_duration", "parse_time"]

_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_CLOCK_WORDS = re.compile(r"^(\d{1,2})\s*[点时](?:\s*(\d{1,2})\s*分?)?(?:\s*(\d{1,2})\s*秒)?$")
_MERIDIEM = re.compile(r"^(上午|早上|凌晨|中午|下午|晚上)?\s*(.+?)\s*(am|pm|a\.m\.|p\.m\.)?$", re.I)


def parse_time(text: str) -> tuple[int, int, int] | None:
    """``"9:30"`` -> ``(9, 30, 0)``; ``None`` when ``text`` is not ``H:MM[:SS]``."""
    match = _TIME.match(text.strip())
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _parse_loose_time(text: str) -> tuple[int, int, int] | None:
    """Import forms besides ``H:MM[:SS]``: ``"9:30 PM"``, ``"下午3:30"``, ``"9点30分"``."""
    match = _MERIDIEM.match(text.strip())
    if not match:
        return None
    before, core, after = match[1], match[2], (match[3] or "").lower().replace(".", "")
    words = _CLOCK_WORDS.match(core)
    if words:
        parts: tuple[int, int, int] | None = (
            int(words[1]),
            int(words[2] or 0),
            int(words[3] or 0),
        )
    else:
        parts = parse_time(core)
    if parts is None:
        return None
    hour, minute, second = parts
    afternoon = after == "pm" or before in {"下午", "晚上"} or (before == "中午" and hour < 11)
    if (before or after) and hour > 12:
        return None if after else parts
    if afternoon and hour < 12:
        hour += 12
    elif (after == "am" or before in {"凌晨", "早上", "上午"}) and hour == 12:
        hour = 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


class TimeType(CanonicalType):
    """A time of day, ``HH:MM`` (or ``HH:MM:SS`` with option ``seconds``), no date or zone.

    Stored as fixed-width text, so text order is time order and ``<`` works in filters.
    """

    name = "time"
    storage: ClassVar[Storage] = "text"
    widget = "time"
    label: ClassVar[Translatable] = {"en": "Time", "zh-CN": "时间"}
    allowed_options = frozenset({"seconds"})

    def check_options(self, field: FieldDef, path: str) -> None:
        super().check_options(field, path)
        check_bool_option(field, path, "seconds")

    def input_type(self, field: FieldDef) -> Any:
        return Annotated[str, msgspec.Meta(max_length=8)]

    def validate(self, field: FieldDef, value: Any) -> str | None:
        parts = parse_time(value)
        if parts is None:
            return f"{value!r} is not a time of day (write 09:30 or 09:30:15)"
        if parts[2] and not field.options.get("seconds", False):
            return f"{value!r} has seconds; this field keeps hours and minutes (write 09:30)"
        return None

    def _text(self, field: FieldDef, parts: tuple[int, int, int]) -> str:
        hour, minute, second = parts
        if field.options.get("seconds", False):
            return f"{hour:02d}:{minute:02d}:{second:02d}"
        return f"{hour:02d}:{minute:02d}"

    def normalize(self, field: FieldDef, value: Any) -> Any:
        parts = parse_time(value)
        return value if parts is None else self._text(field, parts)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        parts: tuple[int, int, int] | None
        if isinstance(cell, dt.datetime | dt.time):
            parts = (cell.hour, cell.minute, cell.second)
        elif isinstance(cell, int | float) and not isinstance(cell, bool):
            if not 0 <= cell < 1:
                raise CellError(f"{cell!r} is not a time of day (a spreadsheet time is 0 to 1)")
            seconds = round(cell * 86400)
            parts = (seconds // 3600, seconds // 60 % 60, seconds % 60)
            if seconds == 86400:
                parts = (23, 59, 59)
        else:
            text = str(cell).strip()
            parts = parse_time(text) or _parse_loose_time(text)
            if parts is None:
                raise CellError(f"{cell!r} is not a time of day (write 09:30)")
        if parts[2] and not field.options.get("seconds", False):
            # keep the seconds, so validation says why the cell does not fit
            return f"{parts[0]:02d}:{parts[1]:02d}:{parts[2]:02d}"
        return self._text(field, parts)

    def filter_operators(self, field: FieldDef) -> tuple[str, ...]:
        return ("==", "!=", "<", "<=", ">", ">=", "in", "starts_with", "missing")


_UNITS: dict[str, int] = {
    **dict.fromkeys(("d", "day", "days", "天", "日"), 86400),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours", "小时", "时", "個小時", "个小时"), 3600),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes", "分钟", "分", "分鐘"), 60),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds", "秒", "秒钟"), 1),
}
_UNIT_PART = re.compile(
    r"(\d+(?:\.\d+)?)\s*("
    + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
    + r")\s*",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"^(\d+):(\d{1,2})(?::(\d{1,2}))?$")
_ISO = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE)

#: The longest duration accepted: 100 years in seconds.
MAX_DURATION = 100 * 366 * 86400


def parse_duration(text: str) -> int:
    """Seconds of ``"5400"``, ``"1:30:00"``, ``"1:30"``, ``"1h30m"``, ``"1.5h"``, ``"1小时30分"``
    or ``"PT1H30M"``; :class:`ValueError` with the reason when it is none of them."""
    text = text.strip()
    if not text:
        raise ValueError("is empty")
    if text.isdigit():
        return int(text)
    if clock := _CLOCK.match(text):
        hours, minutes, seconds = int(clock[1]), int(clock[2]), int(clock[3] or 0)
        if minutes > 59 or seconds > 59:
            raise ValueError(f"{text!r} has more than 59 minutes or seconds")
        return hours * 3600 + minutes * 60 + seconds
    if (iso := _ISO.match(text)) and any(iso.groups()):
        days, hours, minutes, seconds = (int(part or 0) for part in iso.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    total = Decimal(0)
    position = 0
    while position < len(text):
        part = _UNIT_PART.match(text, position)
        if not part:
            raise ValueError(f"{text!r} is not a duration (write 5400, 1:30:00 or 1h30m)")
        try:
            total += Decimal(part[1]) * _UNITS[part[2].lower()]
        except (InvalidOperation, KeyError):
            raise ValueError(f"{text!r} is not a duration (write 5400, 1:30:00 or 1h30m)") from None
        position = part.end()
    if total != total.to_integral_value():
        raise ValueError(f"{text!r} is not a whole number of seconds")
    return int(total)


def format_duration(seconds: int) -> str:
    """``5400`` -> ``"1:30:00"`` (hours are not wrapped into days: ``"26:00:00"``)."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class DurationType(CanonicalType):
    """A length of time in whole seconds (integer storage, so sums and filters work in SQL).

    Input is a number of seconds or text such as ``"1:30:00"``, ``"1h30m"`` or
    ``"1小时30分"``; the stored and returned value is the number of seconds.
    """

    name = "duration"
    storage: ClassVar[Storage] = "integer"
    widget = "duration"
    label: ClassVar[Translatable] = {"en": "Duration", "zh-CN": "时长"}

    def input_type(self, field: FieldDef) -> Any:
        return (
            Annotated[int, msgspec.Meta(ge=0, le=MAX_DURATION)]
            | Annotated[str, msgspec.Meta(max_length=64)]
        )

    def validate(self, field: FieldDef, value: Any) -> str | None:
        if isinstance(value, int):
            return None
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            return str(exc)
        if seconds > MAX_DURATION:
            return f"{value!r} is longer than 100 years"
        return None

    def normalize(self, field: FieldDef, value: Any) -> Any:
        return value if isinstance(value, int) else parse_duration(value)

    def parse_cell(self, field: FieldDef, cell: Any, timezone: dt.tzinfo) -> Any:
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return None
        if isinstance(cell, dt.timedelta):
            return int(cell.total_seconds())
        if isinstance(cell, dt.time):
            return cell.hour * 3600 + cell.minute * 60 + cell.second
        if isinstance(cell, bool):
            raise CellError(f"{cell!r} is not a duration")
        if isinstance(cell, int | float):
            if not float(cell).is_integer() or cell < 0:
                raise CellError(f"{cell!r} is not a whole number of seconds")
            return int(cell)
        try:
            return parse_duration(str(cell))
        except ValueError as exc:
            raise CellError(str(exc)) from None

    def format_cell(self, field: FieldDef, value: Any, timezone: dt.tzinfo) -> Any:
        if value is None:
            return None
        return format_duration(value if isinstance(value, int) else parse_duration(str(value)))
