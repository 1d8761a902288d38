"""The standard JSON Logic operators (including the newer ``val``, ``??``, ``try`` ...).

Operators that control evaluation (``if``, ``and``, ``map``, ``var`` ...) are
*intrinsic*: the compilers build them directly and they have no ``func``.
The others are ordinary functions of their evaluated arguments, which the
compiler may still inline when it recognises the standard implementation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from jimu.rules.errors import InvalidArgumentsError, ThrownError
from jimu.rules.operators import Operator
from jimu.rules.values import (
    MISSING,
    Number,
    add,
    div,
    get_path,
    js_str,
    mod,
    mul,
    neg,
    split_var_path,
    sub,
    to_number,
)

__all__ = ["STANDARD_OPERATORS", "standard_operators"]

_log = logging.getLogger("jimu.rules")


# --------------------------------------------------------------------------- arithmetic


def plus(*args: Any) -> Number:
    """Sum of the arguments (``{"+": []}`` is 0)."""
    if len(args) == 1:
        return to_number(args[0])
    total: Number = 0
    for arg in args:
        total = add(total, arg)
    return total


def times(*args: Any) -> Number:
    """Product of the arguments (``{"*": []}`` is 1)."""
    if len(args) == 1:
        return to_number(args[0])
    total: Number = 1
    for arg in args:
        total = mul(total, arg)
    return total


def minus(*args: Any) -> Number:
    """``a - b - ...``; one argument negates it."""
    if not args:
        raise InvalidArgumentsError("'-' needs at least one argument")
    if len(args) == 1:
        return neg(args[0])
    total = to_number(args[0])
    for arg in args[1:]:
        total = sub(total, arg)
    return total


def divide(*args: Any) -> Number:
    """``a / b / ...``; one argument gives its reciprocal. Division by zero is NaN."""
    if not args:
        raise InvalidArgumentsError("'/' needs at least one argument")
    if len(args) == 1:
        return div(1, args[0])
    total = to_number(args[0])
    for arg in args[1:]:
        total = div(total, arg)
    return total


def modulo(*args: Any) -> Number:
    """``a % b % ...`` with JavaScript's sign rule."""
    if len(args) < 2:
        raise InvalidArgumentsError("'%' needs at least two arguments")
    total = to_number(args[0])
    for arg in args[1:]:
        total = mod(total, arg)
    return total


def _extreme(args: Sequence[Any], largest: bool) -> Any:
    if not args:
        return None
    first = args[0]
    if isinstance(first, date) and all(type(arg) is type(first) for arg in args):
        return max(args) if largest else min(args)
    numbers = [to_number(arg) for arg in args]
    best = numbers[0]
    for number in numbers[1:]:
        if (number > best) if largest else (number < best):
            best = number
    return best


def maximum(*args: Any) -> Any:
    """The largest argument (numbers, or dates of one kind); null when there are none."""
    return _extreme(args, True)


def minimum(*args: Any) -> Any:
    """The smallest argument (numbers, or dates of one kind); null when there are none."""
    return _extreme(args, False)


# --------------------------------------------------------------------------- strings and arrays


def cat(*args: Any) -> str:
    """The arguments joined as text (null is empty)."""
    return "".join([js_str(arg) for arg in args])


def substr(text: Any = None, start: Any = 0, length: Any = None) -> str:
    """JavaScript-style substring: negative start counts from the end, negative length
    stops that many characters before the end."""
    s = js_str(text)
    n = len(s)
    begin = int(to_number(start))
    if begin < 0:
        begin = max(n + begin, 0)
    if length is None:
        return s[begin:]
    count = int(to_number(length))
    end = max(n + count, 0) if count < 0 else begin + count
    return s[begin:end] if end > begin else ""


def merge(*args: Any) -> list[Any]:
    """Arrays flattened one level into one array; other values are added as items."""
    result: list[Any] = []
    for arg in args:
        if type(arg) is list or type(arg) is tuple:
            result.extend(arg)
        else:
            result.append(arg)
    return result


# --------------------------------------------------------------------------- data access


def missing_keys(data: Any, *args: Any) -> list[Any]:
    """The keys (dotted paths) whose value is absent, null or ""."""
    keys: Sequence[Any] = args[0] if args and isinstance(args[0], (list, tuple)) else args
    result = []
    for key in keys:
        value = get_path(data, split_var_path(key))
        if value is MISSING or value is None or value == "":
            result.append(key)
    return result


def missing_some(data: Any, need: Any = 0, keys: Any = None) -> list[Any]:
    """``[]`` when at least ``need`` of ``keys`` are present, else the missing keys."""
    if keys is None:
        keys = []
    if not isinstance(keys, (list, tuple)):
        raise InvalidArgumentsError("missing_some needs an array of keys")
    absent = missing_keys(data, list(keys))
    if len(keys) - len(absent) >= to_number(need):
        return []
    return absent


def throw(value: Any = None) -> Any:
    """Raise ``value`` as an error; ``try`` can catch it."""
    raise ThrownError(value)


def log(value: Any = None, *_rest: Any) -> Any:
    """Log the value (logger ``jimu.rules``, debug level) and return it."""
    _log.debug("rule log: %r", value)
    return value


def _intrinsic(
    name: str,
    *,
    min_args: int = 0,
    max_args: int | None = None,
    args: Any = "flexible",
    returns: str = "any",
    doc: str,
) -> Operator:
    return Operator(
        name,
        None,
        min_args=min_args,
        max_args=max_args,
        args=args,
        returns=returns,
        doc=doc,
        kind="intrinsic",
    )


def _build() -> list[Operator]:
    cmp_doc = "{op}: compares its arguments pairwise, left to right; three arguments test a range."
    comparisons = [
        _intrinsic(op, min_args=2, args="list", returns="boolean", doc=cmp_doc.format(op=op))
        for op in ("==", "!=", "===", "!==", "<", "<=", ">", ">=")
    ]
    iterators = [
        _intrinsic("map", min_args=2, max_args=2, args="list", returns="list",
                   doc="Apply the second argument to every item of the first."),
        _intrinsic("filter", min_args=2, max_args=2, args="list", returns="list",
                   doc="Keep the items for which the second argument is truthy."),
        _intrinsic("reduce", min_args=2, max_args=3, args="list",
                   doc="Fold the items: the body sees {current, accumulator}."),
        _intrinsic("all", min_args=2, max_args=2, args="list", returns="boolean",
                   doc="True when the array is not empty and every item passes."),
        _intrinsic("some", min_args=2, max_args=2, args="list", returns="boolean",
                   doc="True when at least one item passes."),
        _intrinsic("none", min_args=2, max_args=2, args="list", returns="boolean",
                   doc="True when no item passes."),
    ]  # fmt: skip
    control = [
        _intrinsic("var", max_args=2, doc="Read data by dotted path, with an optional default."),
        _intrinsic(
            "val", args="spread", doc="Read data by a list of keys; [[n], ...] climbs scopes."
        ),
        _intrinsic("exists", args="spread", returns="boolean", doc="Whether a key path exists."),
        _intrinsic("if", args="list", doc="if/then/else-if.../else."),
        _intrinsic("?:", args="list", doc="Alias of if."),
        _intrinsic("and", args="list", doc="First falsy argument, or the last one."),
        _intrinsic("or", args="list", doc="First truthy argument, or the last one."),
        _intrinsic("!", returns="boolean", doc="Not (of the first argument)."),
        _intrinsic("!!", returns="boolean", doc="Truthiness of the first argument."),
        _intrinsic("??", doc="First argument that is not null."),
        _intrinsic("try", doc="First argument that does not raise; later ones see the error."),
    ]
    functions = [
        Operator("+", plus, args="spread", returns="number", doc="Sum (numbers are coerced)."),
        Operator("*", times, args="spread", returns="number", doc="Product."),
        Operator("-", minus, min_args=1, args="spread", returns="number",
                 doc="Difference, or negation of one argument."),
        Operator("/", divide, min_args=1, args="spread", returns="number",
                 doc="Quotient; division by zero raises NaN."),
        Operator("%", modulo, min_args=2, args="spread", returns="number",
                 doc="Remainder with the dividend's sign."),
        Operator("max", maximum, args="spread", doc="Largest argument."),
        Operator("min", minimum, args="spread", doc="Smallest argument."),
        Operator("cat", cat, args="spread", returns="text", doc="Concatenate as text."),
        Operator("substr", substr, min_args=1, max_args=3, returns="text",
                 doc="Substring with JavaScript's negative start/length."),
        Operator("merge", merge, args="spread", returns="list", doc="Flatten arrays one level."),
        Operator("in", None, min_args=2, max_args=2, returns="boolean", kind="intrinsic",
                 doc="Substring of a string, or member of an array."),
        Operator("missing", missing_keys, args="spread", needs_context=True, returns="list",
                 doc="Keys that are absent, null or empty."),
        Operator("missing_some", missing_some, min_args=2, max_args=2, needs_context=True,
                 returns="list", doc="Missing keys unless at least N are present."),
        Operator("throw", throw, max_args=1, pure=False, doc="Raise a value as an error."),
        Operator("log", log, pure=False, doc="Log a value and return it."),
    ]  # fmt: skip
    return comparisons + iterators + control + functions


STANDARD_OPERATORS: dict[str, Operator] = {op.name: op for op in _build()}
"""The standard operators by name; the compilers inline these exact objects."""


def standard_operators() -> list[Operator]:
    """The operators of JSON Logic and its newer community proposals."""
    return list(STANDARD_OPERATORS.values())
