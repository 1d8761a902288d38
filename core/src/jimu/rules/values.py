"""What values mean to a rule: truthiness, numbers, strings, equality and order.

JSON Logic inherits JavaScript's loose typing. This module is the one place that
decides how Python values behave in rules, so the Python compiler, the SQL
compiler and the analysis all agree. The rules, in short:

* Truthiness: ``false``, ``null``, ``0``, ``""``, ``[]`` (and NaN) are falsy;
  everything else, including ``{}`` and ``"0"``, is truthy.
* Numbers: ``null`` is 0, booleans are 0/1, strings are parsed like JavaScript's
  ``Number()``; a string that is not a number, an array or an object raises
  :class:`~jimu.rules.errors.NaNError`. ``Decimal`` stays exact (a float mixed
  into decimal arithmetic is read through its shortest repr, so ``0.1`` is
  ``Decimal("0.1")``). Integers beyond 2**63 become floats, as in JavaScript.
* ``==`` and order (``<`` ...): two strings compare as strings; otherwise both
  sides are numbers. ``null`` equals only ``null``, ``0`` and ``false``; ``null``
  compared in order with a string, a date or a container is simply false.
* Dates: a ``date``/``datetime`` compared with an ISO-8601 string compares as a
  date (the string is parsed); naive times are in the site's time zone.
* ``===``: same type and same value (ints, floats and decimals are all numbers;
  a date equals the ISO string of the same date).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from jimu.rules.errors import InvalidArgumentsError, NaNError

__all__ = [
    "MISSING",
    "Semantics",
    "add",
    "describe",
    "div",
    "fix_number",
    "get_path",
    "is_number",
    "js_str",
    "mod",
    "mul",
    "neg",
    "parse_js_number",
    "split_var_path",
    "strict_equals",
    "sub",
    "to_number",
    "truthy",
]

Number = int | float | Decimal

_BIG: Final = 2**63
_CONTAINERS: Final = (list, tuple, dict)


class _Missing:
    """Marker for "no such key" (JavaScript's ``undefined``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


def describe(value: Any) -> str:
    """A short description of ``value`` for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, datetime):
        return f"datetime {value.isoformat()}"
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    return repr(value)


# --------------------------------------------------------------------------- truthiness


def truthy(value: Any) -> bool:
    """JSON Logic truthiness: empty arrays are falsy, every object is truthy."""
    t = type(value)
    if t is bool:
        return value  # type: ignore[no-any-return]
    if t is dict:
        return True
    if t is float:
        return value == value and value != 0.0  # type: ignore[no-any-return]
    if t is Decimal:
        return not value.is_nan() and value != 0
    if isinstance(value, Mapping):
        return True
    return bool(value)


# --------------------------------------------------------------------------- numbers

_DECIMAL_LITERAL: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RADIX_LITERAL: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")


def parse_js_number(text: str) -> int | float | None:
    """Parse ``text`` like JavaScript's ``Number()``; ``None`` when it is not a number."""
    s = text.strip()
    if not s:
        return 0
    if _DECIMAL_LITERAL.fullmatch(s):
        if "." in s or "e" in s or "E" in s:
            return float(s)
        return int(s)
    if _RADIX_LITERAL.fullmatch(s):
        return int(s, 0)
    if s in ("Infinity", "+Infinity"):
        return math.inf
    if s == "-Infinity":
        return -math.inf
    return None


def is_number(value: Any) -> bool:
    """True for ints, floats and decimals (booleans are not numbers)."""
    t = type(value)
    if t is int or t is float or t is Decimal:
        return True
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def to_number(value: Any) -> Number:
    """Coerce ``value`` to a number like JavaScript's ``Number()``, raising NaNError for NaN."""
    t = type(value)
    if t is int:
        return value  # type: ignore[no-any-return]
    if t is float:
        if value != value:
            raise NaNError("the value is NaN")
        return value  # type: ignore[no-any-return]
    if value is None:
        return 0
    if t is bool:
        return 1 if value else 0
    if t is str:
        number = parse_js_number(value)
        if number is None:
            raise NaNError(f"{describe(value)} is not a number")
        return number
    if t is Decimal:
        if value.is_nan():
            raise NaNError("the value is NaN")
        return value  # type: ignore[no-any-return]
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return to_number(float(value))
    if isinstance(value, str):
        return to_number(str(value))
    raise NaNError(f"{describe(value)} is not a number")


def _as_decimal(value: Number) -> Decimal:
    if type(value) is Decimal:
        return value
    if type(value) is float:
        if math.isinf(value):
            raise NaNError("infinity cannot be mixed with decimals")
        return Decimal(repr(value))
    return Decimal(value)


def _pair(x: Number, y: Number) -> tuple[Number, Number]:
    """Make two numbers safe to combine: a decimal pulls the other side to decimal."""
    tx, ty = type(x), type(y)
    if (tx is Decimal) is not (ty is Decimal):
        return _as_decimal(x), _as_decimal(y)
    return x, y


def fix_number(result: Number) -> Number:
    """Keep a result a JSON number: huge integers become floats, NaN raises."""
    t = type(result)
    if t is int:
        if -_BIG < result < _BIG:
            return result
        try:
            return float(result)
        except OverflowError:
            return math.inf if result > 0 else -math.inf
    if t is float:
        if result != result:
            raise NaNError("the result is NaN")
        return result
    if result.is_nan():  # type: ignore[union-attr]
        raise NaNError("the result is NaN")
    return result


def _decimal_op(func: Any, x: Number, y: Number) -> Number:
    try:
        return func(x, y)  # type: ignore[no-any-return]
    except (InvalidOperation, ArithmeticError) as exc:
        raise NaNError(f"arithmetic failed: {type(exc).__name__}") from None


def add(a: Any, b: Any) -> Number:
    """``a + b`` with JSON Logic number coercion."""
    x, y = _pair(to_number(a), to_number(b))
    return fix_number(_decimal_op(_add, x, y))


def sub(a: Any, b: Any) -> Number:
    """``a - b`` with JSON Logic number coercion."""
    x, y = _pair(to_number(a), to_number(b))
    return fix_number(_decimal_op(_sub, x, y))


def mul(a: Any, b: Any) -> Number:
    """``a * b`` with JSON Logic number coercion."""
    x, y = _pair(to_number(a), to_number(b))
    return fix_number(_decimal_op(_mul, x, y))


def div(a: Any, b: Any) -> Number:
    """``a / b``; dividing by zero is NaN. Exact integer quotients stay integers."""
    x, y = _pair(to_number(a), to_number(b))
    if y == 0:
        raise NaNError("division by zero")
    if type(x) is int and type(y) is int:
        if x % y == 0:
            return fix_number(x // y)
        return fix_number(x / y)
    return fix_number(_decimal_op(_truediv, x, y))


def mod(a: Any, b: Any) -> Number:
    """JavaScript's remainder: the sign follows the dividend."""
    x, y = _pair(to_number(a), to_number(b))
    if y == 0:
        raise NaNError("modulo by zero")
    if type(x) is int and type(y) is int:
        r = abs(x) % abs(y)
        return -r if x < 0 else r
    if type(x) is Decimal:
        return fix_number(_decimal_op(_rem, x, y))
    return fix_number(math.fmod(x, y))


def neg(a: Any) -> Number:
    """Unary minus with number coercion."""
    return fix_number(-to_number(a))


def _add(x: Any, y: Any) -> Any:
    return x + y


def _sub(x: Any, y: Any) -> Any:
    return x - y


def _mul(x: Any, y: Any) -> Any:
    return x * y


def _truediv(x: Any, y: Any) -> Any:
    return x / y


def _rem(x: Any, y: Any) -> Any:
    return x % y


# --------------------------------------------------------------------------- strings


def _js_float(value: float) -> str:
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def js_str(value: Any) -> str:
    """A value as text, as JSON Logic's ``cat`` shows it (``null`` is empty, ``true`` is "true")."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return _js_float(value)
    if t is Decimal:
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(js_str(item) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- paths


def split_var_path(path: Any) -> tuple[str, ...]:
    """Split a ``var`` path (``"a.b.0"``, a number, ``""`` or null) into keys."""
    if path is None:
        return ()
    if isinstance(path, bool):
        text = "true" if path else "false"
    elif isinstance(path, (int, float, Decimal)):
        text = js_str(path)
    elif isinstance(path, str):
        text = path
    else:
        raise InvalidArgumentsError(f"a variable path must be text, not {describe(path)}")
    if text == "":
        return ()
    return tuple(text.split("."))


def _list_index(key: Any) -> int | None:
    if type(key) is int:
        return key
    if isinstance(key, str) and key.isdigit() and (key == "0" or not key.startswith("0")):
        return int(key)
    if isinstance(key, float) and key.is_integer():
        return int(key)
    return None


def get_path(context: Any, keys: Sequence[Any]) -> Any:
    """Follow ``keys`` into ``context``; ``MISSING`` when a key is absent."""
    current = context
    for key in keys:
        t = type(current)
        if t is dict or (t is not list and isinstance(current, Mapping)):
            name = key if type(key) is str else js_str(key)
            if name in current:
                current = current[name]
            else:
                return MISSING
        elif t is list or t is tuple:
            index = _list_index(key)
            if index is None or not 0 <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


# --------------------------------------------------------------------------- comparisons


def strict_equals(a: Any, b: Any, semantics: Semantics | None = None) -> bool:
    """``===``: same type and value; numbers of any kind compare as numbers."""
    ta, tb = type(a), type(b)
    if ta is tb and ta is not list and ta is not dict and ta is not tuple:
        return bool(a == b)
    if a is None or b is None:
        return False
    if is_number(a) and is_number(b):
        x, y = _pair(a, b)
        return bool(x == y)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and bool(a) == bool(b)
    if isinstance(a, str) and isinstance(b, str):
        return str(a) == str(b)
    if isinstance(a, date) or isinstance(b, date):
        other = b if isinstance(a, date) else a
        if isinstance(other, (str, date)):
            sem = semantics or _UTC_SEMANTICS
            try:
                pair = sem.temporal_pair(a, b)
            except NaNError:
                return False
            return pair is not None and pair[0] == pair[1]
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(
            strict_equals(x, y, semantics) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(strict_equals(a[k], b[k], semantics) for k in a)
    return False


class Semantics:
    """Comparisons and date coercions that depend on the site's time zone."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    # -- temporal coercion

    def parse_temporal(self, text: str) -> date | datetime | None:
        """Parse an ISO-8601 date or date-time; naive times are in the site's zone."""
        s = text.strip()
        if len(s) == 10:
            try:
                return date.fromisoformat(s)
            except ValueError:
                return None
        if len(s) < 10 or not s[:4].isdigit():
            return None
        try:
            parsed = datetime.fromisoformat(s)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed

    def to_temporal(self, value: Any) -> date | datetime:
        """A date or datetime from a date, datetime or ISO string; NaNError otherwise."""
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            parsed = self.parse_temporal(value)
            if parsed is not None:
                return parsed
        raise NaNError(f"{describe(value)} is not a date")

    def to_datetime(self, value: Any) -> datetime:
        """An aware datetime; a date means its midnight in the site's zone."""
        moment = self.to_temporal(value)
        if isinstance(moment, datetime):
            return moment
        return datetime.combine(moment, time(), tzinfo=self.tz)

    def to_date(self, value: Any) -> date:
        """A calendar date; a datetime gives its date in the site's zone."""
        moment = self.to_temporal(value)
        if isinstance(moment, datetime):
            return moment.astimezone(self.tz).date()
        return moment

    def temporal_pair(self, a: Any, b: Any) -> tuple[Any, Any] | None:
        """Two temporal values ready to compare; None when one side is null."""
        if a is None or b is None:
            return None
        x = self.to_temporal(a)
        y = self.to_temporal(b)
        if type(x) is date and type(y) is date:
            return x, y
        if type(x) is date or type(y) is date:
            return self.to_datetime(x), self.to_datetime(y)
        return x, y

    # -- order and loose equality

    def ordered_pair(self, a: Any, b: Any) -> tuple[Any, Any] | None:
        """The pair ``<`` and friends compare, or None when the comparison is false."""
        ta, tb = type(a), type(b)
        if ta is str and tb is str:
            return a, b
        if a is None and b is None:
            return 0, 0
        if isinstance(a, date) or isinstance(b, date):
            return self.temporal_pair(a, b)
        if a is None:
            return (0, to_number(b)) if _numberish(b) else None
        if b is None:
            return (to_number(a), 0) if _numberish(a) else None
        if isinstance(a, _CONTAINERS) or isinstance(b, _CONTAINERS):
            raise NaNError(f"cannot compare {describe(a)} with {describe(b)}")
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            raise NaNError(f"cannot compare {describe(a)} with {describe(b)}")
        return _pair(to_number(a), to_number(b))

    def lt(self, a: Any, b: Any) -> bool:
        """``a < b``."""
        pair = self.ordered_pair(a, b)
        return pair is not None and bool(pair[0] < pair[1])

    def le(self, a: Any, b: Any) -> bool:
        """``a <= b``."""
        pair = self.ordered_pair(a, b)
        return pair is not None and bool(pair[0] <= pair[1])

    def gt(self, a: Any, b: Any) -> bool:
        """``a > b``."""
        pair = self.ordered_pair(a, b)
        return pair is not None and bool(pair[0] > pair[1])

    def ge(self, a: Any, b: Any) -> bool:
        """``a >= b``."""
        pair = self.ordered_pair(a, b)
        return pair is not None and bool(pair[0] >= pair[1])

    def eq(self, a: Any, b: Any) -> bool:
        """Loose ``==``."""
        ta, tb = type(a), type(b)
        if ta is str and tb is str:
            return bool(a == b)
        if a is None or b is None:
            if a is None and b is None:
                return True
            other = b if a is None else a
            return _numberish(other) and to_number(other) == 0
        if isinstance(a, date) or isinstance(b, date):
            pair = self.temporal_pair(a, b)
            return pair is not None and bool(pair[0] == pair[1])
        pair = self.ordered_pair(a, b)
        return pair is not None and bool(pair[0] == pair[1])

    def ne(self, a: Any, b: Any) -> bool:
        """Loose ``!=``."""
        return not self.eq(a, b)

    def seq(self, a: Any, b: Any) -> bool:
        """Strict ``===``."""
        return strict_equals(a, b, self)

    def sne(self, a: Any, b: Any) -> bool:
        """Strict ``!==``."""
        return not strict_equals(a, b, self)

    def contains(self, needle: Any, haystack: Any) -> bool:
        """``in``: substring of a string, or member (``===``) of an array."""
        t = type(haystack)
        if t is str:
            if needle is None:
                return False
            return js_str(needle) in haystack
        if t is list or t is tuple:
            if type(needle) is str:
                # A string is only ever strictly equal to a string, or to a date it spells.
                if needle in haystack:
                    return True
                for item in haystack:
                    if isinstance(item, date) and strict_equals(needle, item, self):
                        return True
                return False
            return any(strict_equals(needle, item, self) for item in haystack)
        return False


def _numberish(value: Any) -> bool:
    return is_number(value) or isinstance(value, bool)


_UTC_SEMANTICS: Final = Semantics(UTC)
