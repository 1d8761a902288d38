"""The kernel's extra operators: dates and times, strings, regular expressions, tags.

Dates and times work in the registry's site time zone (``Asia/Shanghai`` by
default) and read the current time from the registry's clock, so tests can
fix it. Every date operator returns null when its date argument is null, and
accepts dates, datetimes and ISO-8601 strings. Names are snake_case; see
``docs/concepts/rules.md`` for one example each.

Each operator here also has an SQL form where SQLite and PostgreSQL can
compute the same thing; ``regex_match`` has none (the databases' regular
expression dialects differ from RE2).
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any, Final

import re2

from jimu.rules.errors import InvalidArgumentsError, RuleLimitExceeded
from jimu.rules.operators import Limits, Operator, OperatorContext
from jimu.rules.sqlbase import SqlCall, SqlValue
from jimu.rules.values import MISSING, describe, get_path, js_str, strict_equals, to_number

__all__ = ["KERNEL_OPERATORS", "SafeRegexCache", "kernel_operators"]


# =========================================================================== Python


def _whole(value: Any, what: str) -> int:
    number = to_number(value)
    if number != int(number):
        raise InvalidArgumentsError(f"{what} must be a whole number, not {describe(value)}")
    return int(number)


def _temporal(ctx: OperatorContext, value: Any) -> date | datetime:
    return ctx.registry.semantics.to_temporal(value)


def _local_wall_shift(ctx: OperatorContext, moment: datetime, delta: timedelta) -> datetime:
    zone = ctx.registry.timezone
    local = moment.astimezone(zone).replace(tzinfo=None) + delta
    return local.replace(tzinfo=zone)


def now(ctx: OperatorContext) -> datetime:
    """The current time in the site's time zone."""
    return ctx.now()


def today(ctx: OperatorContext) -> date:
    """Today's date in the site's time zone."""
    return ctx.today()


def to_date(ctx: OperatorContext, value: Any) -> date | None:
    """A date from a date, a datetime (its local date) or an ISO string."""
    if value is None:
        return None
    return ctx.registry.semantics.to_date(value)


def add_days(ctx: OperatorContext, value: Any, days: Any) -> date | datetime | None:
    """Shift by whole calendar days (a datetime keeps its local wall-clock time)."""
    if value is None:
        return None
    moment = _temporal(ctx, value)
    delta = timedelta(days=_whole(days, "days"))
    if isinstance(moment, datetime):
        return _local_wall_shift(ctx, moment, delta)
    return moment + delta


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def add_months(ctx: OperatorContext, value: Any, months: Any) -> date | datetime | None:
    """Shift by whole months; the 31st becomes the month's last day when needed."""
    if value is None:
        return None
    moment = _temporal(ctx, value)
    count = _whole(months, "months")
    if isinstance(moment, datetime):
        local = moment.astimezone(ctx.registry.timezone)
        shifted = _shift_months(local.date(), count)
        return datetime.combine(shifted, local.timetz().replace(tzinfo=None)).replace(
            tzinfo=ctx.registry.timezone
        )
    return _shift_months(moment, count)


def add_years(ctx: OperatorContext, value: Any, years: Any) -> date | datetime | None:
    """Shift by whole years (29 February becomes 28 February when needed)."""
    return add_months(ctx, value, _whole(years, "years") * 12)


def add_hours(ctx: OperatorContext, value: Any, hours: Any) -> datetime | None:
    """A moment that many hours later (a date means its local midnight)."""
    if value is None:
        return None
    moment = ctx.registry.semantics.to_datetime(value)
    return moment + timedelta(hours=_whole(hours, "hours"))


def add_minutes(ctx: OperatorContext, value: Any, minutes: Any) -> datetime | None:
    """A moment that many minutes later."""
    if value is None:
        return None
    moment = ctx.registry.semantics.to_datetime(value)
    return moment + timedelta(minutes=_whole(minutes, "minutes"))


def diff_days(ctx: OperatorContext, start: Any, end: Any) -> int | None:
    """Calendar days from ``start`` to ``end`` (local dates; negative when end is earlier)."""
    if start is None or end is None:
        return None
    sem = ctx.registry.semantics
    return (sem.to_date(end) - sem.to_date(start)).days


def _whole_units(delta: timedelta, unit: timedelta) -> int:
    count = abs(delta) // unit
    return count if delta >= timedelta(0) else -count


def diff_hours(ctx: OperatorContext, start: Any, end: Any) -> int | None:
    """Whole hours elapsed from ``start`` to ``end`` (truncated toward zero)."""
    if start is None or end is None:
        return None
    sem = ctx.registry.semantics
    return _whole_units(sem.to_datetime(end) - sem.to_datetime(start), timedelta(hours=1))


def diff_minutes(ctx: OperatorContext, start: Any, end: Any) -> int | None:
    """Whole minutes elapsed from ``start`` to ``end`` (truncated toward zero)."""
    if start is None or end is None:
        return None
    sem = ctx.registry.semantics
    return _whole_units(sem.to_datetime(end) - sem.to_datetime(start), timedelta(minutes=1))


def start_of_day(ctx: OperatorContext, value: Any) -> datetime | None:
    """Local midnight of the value's day, as a datetime."""
    if value is None:
        return None
    day = ctx.registry.semantics.to_date(value)
    return datetime.combine(day, time(), tzinfo=ctx.registry.timezone)


def start_of_week(ctx: OperatorContext, value: Any) -> date | None:
    """The Monday of the value's week, as a date."""
    if value is None:
        return None
    day = ctx.registry.semantics.to_date(value)
    return day - timedelta(days=day.weekday())


def start_of_month(ctx: OperatorContext, value: Any) -> date | None:
    """The first day of the value's month, as a date."""
    if value is None:
        return None
    return ctx.registry.semantics.to_date(value).replace(day=1)


def age_years(ctx: OperatorContext, birthday: Any, on: Any = None) -> int | None:
    """Full years from ``birthday`` to ``on`` (default: today)."""
    if birthday is None:
        return None
    sem = ctx.registry.semantics
    born = sem.to_date(birthday)
    day = ctx.today() if on is None else sem.to_date(on)
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def lower(value: Any) -> str:
    """Text in lower case (null is "")."""
    return js_str(value).lower()


def upper(value: Any) -> str:
    """Text in upper case (null is "")."""
    return js_str(value).upper()


def contains(haystack: Any, needle: Any) -> bool:
    """Whether text contains a substring, or an array contains an item."""
    if haystack is None:
        return False
    if isinstance(haystack, (list, tuple)):
        return any(strict_equals(item, needle) for item in haystack)
    return js_str(needle) in js_str(haystack)


def starts_with(value: Any, prefix: Any) -> bool:
    """Whether text starts with ``prefix`` (null text does not)."""
    if value is None:
        return False
    return js_str(value).startswith(js_str(prefix))


def ends_with(value: Any, suffix: Any) -> bool:
    """Whether text ends with ``suffix`` (null text does not)."""
    if value is None:
        return False
    return js_str(value).endswith(js_str(suffix))


def length(value: Any) -> int:
    """Characters of text, items of an array; null is 0."""
    if value is None:
        return 0
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return len(js_str(value))


def has_tag(ctx: OperatorContext, *args: Any) -> bool:
    """``{"has_tag": "vip"}`` reads ``tags`` of the data; ``[tags, "vip"]`` names the list."""
    if len(args) == 1:
        tags = get_path(ctx.data, ("tags",))
        tag = args[0]
    elif len(args) == 2:
        tags, tag = args
    else:
        raise InvalidArgumentsError("has_tag takes a tag, or a list of tags and a tag")
    if tags is MISSING or not isinstance(tags, (list, tuple)):
        return False
    return any(type(item) is str and item == tag for item in tags)


class SafeRegexCache:
    """Compiles user patterns with RE2 (linear time: no catastrophic backtracking)."""

    def __init__(self, limits: Limits, size: int = 256) -> None:
        self.limits = limits
        self.size = size
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()
        options = re2.Options()
        options.log_errors = False
        options.max_mem = 8 << 20
        self._options = options

    def compile(self, pattern: Any) -> Any:
        """An RE2 pattern object; InvalidArgumentsError or RuleLimitExceeded when unfit."""
        if not isinstance(pattern, str):
            raise InvalidArgumentsError(
                f"a regular expression must be text, not {describe(pattern)}"
            )
        if len(pattern) > self.limits.max_regex_length:
            raise RuleLimitExceeded(
                f"the regular expression has {len(pattern)} characters; "
                f"the limit is {self.limits.max_regex_length}"
            )
        compiled = self._compiled.get(pattern)
        if compiled is None:
            try:
                compiled = re2.compile(pattern, self._options)
            except re2.error as exc:
                message = exc.args[0] if exc.args else exc
                if isinstance(message, bytes):
                    message = message.decode("utf-8", "replace")
                raise InvalidArgumentsError(f"invalid regular expression: {message}") from None
            with self._lock:
                if len(self._compiled) >= self.size:
                    self._compiled.pop(next(iter(self._compiled)))
                self._compiled[pattern] = compiled
        return compiled

    def search(self, text: Any, pattern: Any) -> bool:
        """Whether ``pattern`` matches somewhere in ``text`` (null text never matches)."""
        compiled = self.compile(pattern)
        if text is None:
            return False
        subject = js_str(text)
        if len(subject) > self.limits.max_regex_subject:
            raise RuleLimitExceeded(
                f"the text has {len(subject)} characters; regular expressions are limited "
                f"to {self.limits.max_regex_subject}"
            )
        return compiled.search(subject) is not None


_regex_caches: dict[int, SafeRegexCache] = {}
_regex_lock = threading.Lock()


def _regex_cache(limits: Limits) -> SafeRegexCache:
    key = id(limits)
    cache = _regex_caches.get(key)
    if cache is None or cache.limits is not limits:
        with _regex_lock:
            cache = SafeRegexCache(limits)
            if len(_regex_caches) > 64:
                _regex_caches.clear()
            _regex_caches[key] = cache
    return cache


def regex_match(ctx: OperatorContext, text: Any, pattern: Any) -> bool:
    """Whether the RE2 ``pattern`` matches somewhere in ``text``."""
    return _regex_cache(ctx.registry.limits).search(text, pattern)


# =========================================================================== SQL


def _pg(call: SqlCall) -> bool:
    return call.dialect == "postgres"


def _const_int(call: SqlCall, index: int, what: str) -> int:
    if index >= len(call.args):
        call.fail(f"needs {what}")
    arg = call.args[index]
    if not arg.is_const or arg.const is None:
        call.fail(f"{what} must be a constant to compile to SQL")
    try:
        return _whole(arg.const, what)
    except (InvalidArgumentsError, ArithmeticError, ValueError):
        call.fail(f"{what} must be a whole number")


def _value(
    sql: str, params: tuple[Any, ...], type_: str, source: SqlValue, *more: SqlValue
) -> SqlValue:
    """A value that is NULL exactly when any of the sources is NULL."""
    sources = (source, *more)
    nullable = any(s.nullable for s in sources)
    null_if: tuple[str, ...] | None = ()
    for s in sources:
        null_if = None if s.null_if is None or null_if is None else null_if + s.null_if
    return SqlValue(sql, params, type_, nullable, null_if if nullable else ())


def _modifier(call: SqlCall, text: str) -> SqlValue:
    return call.param(text, "text")


def _datetime_arg(call: SqlCall, index: int = 0) -> SqlValue:
    arg = call.args[index]
    if arg.type != "datetime":
        call.fail(f"needs a datetime field here, not {arg.type}")
    return arg


def _sqlite_shift_datetime(call: SqlCall, arg: SqlValue, modifier: str) -> SqlValue:
    mod = _modifier(call, modifier)
    sql = (
        f"(strftime('%Y-%m-%d %H:%M:%S', {arg.sql}, {mod.sql}) || substr({arg.sql}, 20, 7) "
        "|| '+00:00')"
    )
    return _value(sql, arg.params + mod.params + arg.params, "datetime", arg)


def _sql_add_days(call: SqlCall) -> SqlValue:
    days = _const_int(call, 1, "the number of days")
    arg = call.args[0]
    if arg.type == "date":
        if _pg(call):
            n = call.param(days, "integer")
            return _value(f"({arg.sql} + {n.sql}::int)", arg.params + n.params, "date", arg)
        mod = _modifier(call, f"{days:+d} days")
        return _value(f"date({arg.sql}, {mod.sql})", arg.params + mod.params, "date", arg)
    if arg.type == "datetime":
        if _pg(call):
            return _pg_local_interval(call, arg, days, "day")
        call.fixed_offset_minutes()
        return _sqlite_shift_datetime(call, arg, f"{days:+d} days")
    call.fail(f"needs a date or datetime field, not {arg.type}")


def _pg_local_interval(call: SqlCall, arg: SqlValue, count: int, unit: str) -> SqlValue:
    zone = call.param(str(call.timezone), "text")
    n = call.param(count, "integer")
    sql = (
        f"((({arg.sql} AT TIME ZONE {zone.sql}) + {n.sql} * interval '1 {unit}') "
        f"AT TIME ZONE {zone.sql})"
    )
    params = arg.params + zone.params + n.params + zone.params
    return _value(sql, params, "datetime", arg)


def _sql_add_months_n(call: SqlCall, months: int) -> SqlValue:
    arg = call.args[0]
    if arg.type == "date":
        if _pg(call):
            n = call.param(months, "integer")
            sql = f"({arg.sql} + {n.sql} * interval '1 month')::date"
            return _value(sql, arg.params + n.params, "date", arg)
        start = _modifier(call, "start of month")
        last_mod = _modifier(call, f"{months + 1:+d} months")
        back = _modifier(call, "-1 days")
        plain = _modifier(call, f"{months:+d} months")
        last = f"date({arg.sql}, {start.sql}, {last_mod.sql}, {back.sql})"
        last_params = arg.params + start.params + last_mod.params + back.params
        sql = (
            f"(CASE WHEN CAST(strftime('%d', {arg.sql}) AS INTEGER) > "
            f"CAST(strftime('%d', {last}) AS INTEGER) THEN {last} "
            f"ELSE date({arg.sql}, {plain.sql}) END)"
        )
        params = arg.params + last_params + last_params + arg.params + plain.params
        return _value(sql, params, "date", arg)
    if arg.type == "datetime" and _pg(call):
        return _pg_local_interval(call, arg, months, "month")
    call.fail(f"needs a date field here, not {arg.type}")


def _sql_add_months(call: SqlCall) -> SqlValue:
    return _sql_add_months_n(call, _const_int(call, 1, "the number of months"))


def _sql_add_years(call: SqlCall) -> SqlValue:
    return _sql_add_months_n(call, 12 * _const_int(call, 1, "the number of years"))


def _sql_add_time(unit: str, seconds: int) -> Callable[[SqlCall], SqlValue]:
    def build(call: SqlCall) -> SqlValue:
        count = _const_int(call, 1, f"the number of {unit}s")
        arg = _datetime_arg(call)
        if _pg(call):
            n = call.param(count, "integer")
            sql = f"({arg.sql} + {n.sql} * interval '1 {unit}')"
            return _value(sql, arg.params + n.params, "datetime", arg)
        return _sqlite_shift_datetime(call, arg, f"{count * seconds:+d} seconds")

    return build


def _local_date(call: SqlCall, arg: SqlValue) -> tuple[str, tuple[Any, ...]]:
    """SQL for the value's local calendar date (text 'YYYY-MM-DD' in SQLite)."""
    if arg.type == "date":
        return arg.sql, arg.params
    if arg.type != "datetime":
        call.fail(f"needs a date or datetime, not {arg.type}")
    if _pg(call):
        zone = call.param(str(call.timezone), "text")
        return f"({arg.sql} AT TIME ZONE {zone.sql})::date", arg.params + zone.params
    offset = _modifier(call, f"{call.fixed_offset_minutes():+d} minutes")
    return f"date({arg.sql}, {offset.sql})", arg.params + offset.params


def _sql_to_date(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    day_sql, params = _local_date(call, arg)
    return _value(day_sql, params, "date", arg)


def _sql_diff_days(call: SqlCall) -> SqlValue:
    a_sql, a_params = _local_date(call, call.args[0])
    b_sql, b_params = _local_date(call, call.args[1])
    if _pg(call):
        sql = f"({b_sql} - {a_sql})"
    else:
        sql = f"CAST(julianday({b_sql}) - julianday({a_sql}) AS INTEGER)"
    return _value(sql, b_params + a_params, "integer", call.args[0], call.args[1])


def _epoch_us(call: SqlCall, arg: SqlValue) -> tuple[str, tuple[Any, ...]]:
    if arg.type == "date":
        call.fail("needs datetimes (a date has no time of day)")
    _datetime_arg(call, call.args.index(arg))
    if _pg(call):
        return f"(extract(epoch from {arg.sql}) * 1000000)", arg.params
    sql = (
        f"(unixepoch(substr({arg.sql}, 1, 19)) * 1000000 + "
        f"CAST(substr({arg.sql}, 21, 6) AS INTEGER))"
    )
    return sql, arg.params + arg.params


def _sql_diff_units(unit_us: int) -> Callable[[SqlCall], SqlValue]:
    def build(call: SqlCall) -> SqlValue:
        a_sql, a_params = _epoch_us(call, call.args[0])
        b_sql, b_params = _epoch_us(call, call.args[1])
        if _pg(call):
            sql = f"trunc(({b_sql} - {a_sql}) / {unit_us})::bigint"
        else:
            sql = f"(({b_sql} - {a_sql}) / {unit_us})"
        return _value(sql, b_params + a_params, "integer", call.args[0], call.args[1])

    return build


def _sql_start_of_day(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    if _pg(call):
        day_sql, params = _local_date(call, arg)
        zone = call.param(str(call.timezone), "text")
        return _value(
            f"({day_sql}::timestamp AT TIME ZONE {zone.sql})",
            params + zone.params,
            "datetime",
            arg,
        )
    day_sql, params = _local_date(call, arg)
    back = _modifier(call, f"{-call.fixed_offset_minutes():+d} minutes")
    sql = f"(strftime('%Y-%m-%d %H:%M:%S', {day_sql}, {back.sql}) || '.000000+00:00')"
    return _value(sql, params + back.params, "datetime", arg)


def _sql_start_of_week(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    day_sql, params = _local_date(call, arg)
    if _pg(call):
        return _value(f"(date_trunc('week', {day_sql}))::date", params, "date", arg)
    back = _modifier(call, "-6 days")
    monday = _modifier(call, "weekday 1")
    return _value(
        f"date({day_sql}, {back.sql}, {monday.sql})",
        params + back.params + monday.params,
        "date",
        arg,
    )


def _sql_start_of_month(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    day_sql, params = _local_date(call, arg)
    if _pg(call):
        return _value(f"(date_trunc('month', {day_sql}))::date", params, "date", arg)
    start = _modifier(call, "start of month")
    return _value(f"date({day_sql}, {start.sql})", params + start.params, "date", arg)


def _sql_age_years(call: SqlCall) -> SqlValue:
    born = call.args[0]
    if born.type != "date":
        call.fail(f"needs a date of birth, not {born.type}")
    if len(call.args) > 1:
        on = call.args[1]
        if on.type != "date":
            call.fail(f"needs a date to measure the age on, not {on.type}")
    else:
        on = call.param(call.registry.today(), "date")
    if _pg(call):
        sql = (
            f"(extract(year from {on.sql})::int - extract(year from {born.sql})::int - "
            f"(CASE WHEN to_char({on.sql}, 'MM-DD') < to_char({born.sql}, 'MM-DD') "
            "THEN 1 ELSE 0 END))"
        )
    else:
        sql = (
            f"(CAST(strftime('%Y', {on.sql}) AS INTEGER) - "
            f"CAST(strftime('%Y', {born.sql}) AS INTEGER) - "
            f"(strftime('%m-%d', {on.sql}) < strftime('%m-%d', {born.sql})))"
        )
    params = on.params + born.params + on.params + born.params
    return _value(sql, params, "integer", born, on)


def _text_arg(call: SqlCall, index: int) -> SqlValue:
    arg = call.args[index]
    if arg.type == "null":
        return call.param("", "text")
    if arg.type != "text":
        call.fail(f"needs text here, not {arg.type}")
    if arg.nullable:
        return SqlValue(f"COALESCE({arg.sql}, '')", arg.params, "text", False, ())
    return arg


def _sql_case(function: str) -> Callable[[SqlCall], SqlValue]:
    def build(call: SqlCall) -> SqlValue:
        arg = _text_arg(call, 0)
        return SqlValue(f"{function}({arg.sql})", arg.params, "text", False, ())

    return build


def _sql_length(call: SqlCall) -> SqlValue:
    arg = _text_arg(call, 0)
    function = "char_length" if _pg(call) else "length"
    return SqlValue(f"{function}({arg.sql})", arg.params, "integer", False, ())


def _needle(call: SqlCall, index: int) -> SqlValue:
    arg = call.args[index]
    if arg.is_const:
        if arg.const is None:
            return call.param("", "text")
        return call.param(js_str(arg.const), "text")
    if arg.type != "text":
        call.fail(f"needs text here, not {arg.type}")
    return arg


def _subject(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    if arg.type not in ("text", "null"):
        call.fail(f"needs text here, not {arg.type}")
    return arg


def _sql_contains(call: SqlCall) -> SqlValue:
    text = _subject(call)
    needle = _needle(call, 1)
    function = "strpos" if _pg(call) else "instr"
    sql = f"({function}({text.sql}, {needle.sql}) > 0)"
    return _value(sql, text.params + needle.params, "boolean", text, needle)


def _sql_starts_with(call: SqlCall) -> SqlValue:
    text = _subject(call)
    needle = _needle(call, 1)
    if _pg(call):
        sql = f"(left({text.sql}, char_length({needle.sql})) = {needle.sql})"
    else:
        sql = f"(substr({text.sql}, 1, length({needle.sql})) = {needle.sql})"
    return _value(sql, text.params + needle.params * 2, "boolean", text, needle)


def _sql_ends_with(call: SqlCall) -> SqlValue:
    text = _subject(call)
    needle = _needle(call, 1)
    if _pg(call):
        sql = f"(right({text.sql}, char_length({needle.sql})) = {needle.sql})"
        params = text.params + needle.params * 2
    else:
        sql = (
            f"(length({needle.sql}) = 0 OR (length({text.sql}) >= length({needle.sql}) AND "
            f"substr({text.sql}, length({text.sql}) - length({needle.sql}) + 1) = {needle.sql}))"
        )
        params = (
            needle.params
            + text.params
            + needle.params
            + text.params
            + text.params
            + needle.params
            + needle.params
        )
    return _value(sql, params, "boolean", text, needle)


def _sql_has_tag(call: SqlCall) -> SqlValue:
    if len(call.args) == 1:
        tags = call.field("tags")
        tag = call.args[0]
    else:
        tags, tag = call.args
    if not tag.is_const or not isinstance(tag.const, str):
        call.fail("the tag must be a text constant")
    if tags.type != "json":
        call.fail(f"tags must be a json field, not {tags.type}")
    value = call.param(tag.const, "text")
    if _pg(call):
        sql = (
            f"(jsonb_typeof({tags.sql}) = 'array' AND {tags.sql} @> jsonb_build_array({value.sql}))"
        )
    else:
        sql = (
            f"(json_type({tags.sql}) = 'array' AND EXISTS (SELECT 1 FROM json_each({tags.sql}) "
            f"AS jt WHERE jt.type = 'text' AND jt.value = {value.sql}))"
        )
    return _value(sql, tags.params + tags.params + value.params, "boolean", tags)


# =========================================================================== registry


_DATE = "Dates use the site time zone; null in, null out."


def _ctx_op(
    name: str,
    func: Callable[..., Any],
    sql: Callable[[SqlCall], SqlValue] | None,
    min_args: int,
    max_args: int | None,
    returns: str,
    doc: str,
    *,
    pure: bool = True,
) -> Operator:
    return Operator(
        name,
        func,
        sql=sql,
        min_args=min_args,
        max_args=max_args,
        needs_context=True,
        pure=pure,
        returns=returns,
        doc=doc,
    )


def _build() -> list[Operator]:
    return [
        _ctx_op("now", now, None, 0, 0, "datetime", "The current time.", pure=False),
        _ctx_op("today", today, None, 0, 0, "date", "Today's date.", pure=False),
        _ctx_op("to_date", to_date, _sql_to_date, 1, 1, "date",
                "A date from a datetime or text. " + _DATE),
        _ctx_op("add_days", add_days, _sql_add_days, 2, 2, "any", "Shift by days. " + _DATE),
        _ctx_op("add_months", add_months, _sql_add_months, 2, 2, "any", "Shift by months. " + _DATE),
        _ctx_op("add_years", add_years, _sql_add_years, 2, 2, "any", "Shift by years. " + _DATE),
        _ctx_op("add_hours", add_hours, _sql_add_time("hour", 3600), 2, 2, "datetime",
                "Shift by hours. " + _DATE),
        _ctx_op("add_minutes", add_minutes, _sql_add_time("minute", 60), 2, 2, "datetime",
                "Shift by minutes. " + _DATE),
        _ctx_op("diff_days", diff_days, _sql_diff_days, 2, 2, "integer",
                "Calendar days from the first to the second. " + _DATE),
        _ctx_op("diff_hours", diff_hours, _sql_diff_units(3_600_000_000), 2, 2, "integer",
                "Whole hours from the first to the second. " + _DATE),
        _ctx_op("diff_minutes", diff_minutes, _sql_diff_units(60_000_000), 2, 2, "integer",
                "Whole minutes from the first to the second. " + _DATE),
        _ctx_op("start_of_day", start_of_day, _sql_start_of_day, 1, 1, "datetime",
                "Local midnight. " + _DATE),
        _ctx_op("start_of_week", start_of_week, _sql_start_of_week, 1, 1, "date",
                "The Monday of the week. " + _DATE),
        _ctx_op("start_of_month", start_of_month, _sql_start_of_month, 1, 1, "date",
                "The first of the month. " + _DATE),
        _ctx_op("age_years", age_years, _sql_age_years, 1, 2, "integer",
                "Full years since a birthday (on today, or a given date). " + _DATE),
        Operator("lower", lower, sql=_sql_case("lower"), min_args=1, max_args=1, returns="text",
                 doc="Lower case."),
        Operator("upper", upper, sql=_sql_case("upper"), min_args=1, max_args=1, returns="text",
                 doc="Upper case."),
        Operator("length", length, sql=_sql_length, min_args=1, max_args=1, returns="integer",
                 doc="Characters of text, items of an array."),
        Operator("contains", contains, sql=_sql_contains, min_args=2, max_args=2,
                 returns="boolean", doc="Substring of text, or item of an array."),
        Operator("starts_with", starts_with, sql=_sql_starts_with, min_args=2, max_args=2,
                 returns="boolean", doc="Text starts with a prefix."),
        Operator("ends_with", ends_with, sql=_sql_ends_with, min_args=2, max_args=2,
                 returns="boolean", doc="Text ends with a suffix."),
        _ctx_op("regex_match", regex_match, None, 2, 2, "boolean",
                "RE2 regular expression search (linear time; no backtracking)."),
        _ctx_op("has_tag", has_tag, _sql_has_tag, 1, 2, "boolean",
                "The record's tags (or the given list) include a tag."),
    ]  # fmt: skip


KERNEL_OPERATORS: Final[dict[str, Operator]] = {op.name: op for op in _build()}
"""The kernel's operators by name."""


def kernel_operators() -> list[Operator]:
    """The kernel's extra operators (dates, strings, regular expressions, tags)."""
    return list(KERNEL_OPERATORS.values())
