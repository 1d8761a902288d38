"""Run-time parameters of a report: typed, checked, and turned into bound conditions.

Values arrive as JSON (``POST /reports/run``) or as query-string text
(``GET /reports/{name}/data?period=2024-01-01..2024-03-31&store=3``); both are
converted to the parameter's type here, and a value that does not fit is a
422 naming the parameter. Conditions use ``{}`` placeholders: a value never
becomes SQL text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from jimu.errors import FieldProblem, ValidationFailed
from jimu.fields import Dialect
from jimu.meta.reports import PARAMETER_TYPES, ParameterDef

__all__ = ["DateRange", "bind_parameters", "range_condition", "utc_day_start", "value_param"]


@dataclass(frozen=True)
class DateRange:
    """Local days ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        """How many days the range spans."""
        return (self.end - self.start).days + 1

    def previous(self, shift: str) -> DateRange:
        """The range compared with this one: the same length just before, or a year earlier."""
        if shift == "year":
            return DateRange(_years_back(self.start), _years_back(self.end))
        length = dt.timedelta(days=self.days)
        return DateRange(self.start - length, self.end - length)

    def as_json(self) -> dict[str, str]:
        """``{"start": "2024-01-01", "end": "2024-01-31"}``."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _years_back(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


_SCALARS: dict[str, Any] = {
    "text": str,
    "integer": int,
    "decimal": decimal.Decimal,
    "date": dt.date,
    "boolean": bool,
}


def _date_range(value: Any, name: str) -> DateRange:
    if isinstance(value, str):
        start_text, separator, end_text = value.partition("..")
        if not separator:
            raise ValidationFailed(
                FieldProblem(f"params.{name}", "write a date range as 2024-01-01..2024-01-31")
            )
        value = {"start": start_text.strip(), "end": end_text.strip()}
    try:
        typed = msgspec.convert(value, dict[str, dt.date], strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            FieldProblem(f"params.{name}", f"is not a date range of start and end dates: {exc}")
        ) from exc
    if set(typed) != {"start", "end"}:
        raise ValidationFailed(FieldProblem(f"params.{name}", "needs exactly start and end"))
    if typed["start"] > typed["end"]:
        raise ValidationFailed(FieldProblem(f"params.{name}", "start is after end"))
    return DateRange(typed["start"], typed["end"])


def _convert(definition: ParameterDef, value: Any) -> Any:
    name = definition.name
    if definition.type == "date_range":
        return _date_range(value, name)
    if definition.type == "list":
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not value:
            raise ValidationFailed(FieldProblem(f"params.{name}", "must be a non-empty list"))
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value):
            raise ValidationFailed(
                FieldProblem(f"params.{name}", "must list text or whole numbers")
            )
        return value
    try:
        return msgspec.convert(value, _SCALARS[definition.type], strict=False)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            FieldProblem(f"params.{name}", f"is not a valid {definition.type}: {exc}")
        ) from exc


def check_parameter_def(definition: ParameterDef, where: str) -> None:
    """Refuse a parameter of an unknown type or with a default that does not fit it."""
    if definition.type not in PARAMETER_TYPES:
        raise ValidationFailed(
            FieldProblem(
                f"{where}.type",
                f"unknown parameter type {definition.type!r} (known: {', '.join(PARAMETER_TYPES)})",
            )
        )
    if definition.default is not None:
        try:
            _convert(definition, definition.default)
        except ValidationFailed as exc:
            raise ValidationFailed(
                FieldProblem(f"{where}.default", exc.errors[0]["reason"])
            ) from exc


def bind_parameters(definitions: list[ParameterDef], values: Mapping[str, Any]) -> dict[str, Any]:
    """The typed value of every parameter given (or defaulted); 422 for unknown or bad ones."""
    known = {definition.name: definition for definition in definitions}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationFailed(
            FieldProblem(
                f"params.{unknown[0]}",
                f"unknown parameter (known: {', '.join(sorted(known)) or 'none'})",
            )
        )
    bound: dict[str, Any] = {}
    for name, definition in known.items():
        raw = values.get(name)
        if raw is None or raw == "":
            raw = definition.default
        if raw is None:
            if definition.required:
                raise ValidationFailed(FieldProblem(f"params.{name}", "is required"))
            continue
        bound[name] = _convert(definition, raw)
    return bound


def utc_day_start(day: dt.date, timezone: str) -> dt.datetime:
    """The UTC instant at which local day ``day`` starts in ``timezone``."""
    return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(timezone)).astimezone(dt.UTC)


def value_param(storage: str, value: Any, dialect: Dialect) -> Any:
    """A Python value as bound for a column of ``storage`` (SQLite keeps text for times)."""
    if dialect == "sqlite":
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, bool):
            return int(value)
    if storage in ("integer", "link") and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value


def range_condition(
    column: str, storage: str, days: DateRange, dialect: Dialect, timezone: str
) -> tuple[str, list[Any]]:
    """``start <= column < end`` for local days (UTC instants for a datetime column)."""
    if storage == "datetime":
        low: Any = utc_day_start(days.start, timezone)
        high: Any = utc_day_start(days.end + dt.timedelta(days=1), timezone)
        return (
            f"({column} >= {{}} AND {column} < {{}})",
            [value_param(storage, low, dialect), value_param(storage, high, dialect)],
        )
    return (
        f"({column} >= {{}} AND {column} <= {{}})",
        [value_param(storage, days.start, dialect), value_param(storage, days.end, dialect)],
    )


def period_start_param(storage: str, day: dt.date, dialect: Dialect, timezone: str) -> Any:
    """The bound value of the first instant (or day) of local day ``day``."""
    if storage == "datetime":
        return value_param(storage, utc_day_start(day, timezone), dialect)
    return value_param(storage, day, dialect)
