"""Helpers that compiled rules call at evaluation time.

The Python compiler turns a rule into source code whose fast paths are inline
Python; everything else (coercions, iteration with a step budget, ``try``,
dynamic paths ...) calls the helpers here. :class:`Runtime` binds the helpers
that depend on a registry's time zone and limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Final

from jimu.rules.errors import (
    InvalidArgumentsError,
    OperatorFailedError,
    RuleError,
    RuleEvaluationError,
    RuleLimitExceeded,
)
from jimu.rules.operators import Limits
from jimu.rules.stdlib import cat, merge
from jimu.rules.values import (
    MISSING,
    Semantics,
    add,
    describe,
    div,
    fix_number,
    get_path,
    mod,
    mul,
    neg,
    split_var_path,
    sub,
    to_number,
    truthy,
)

__all__ = ["NO_INITIAL", "ListView", "Runtime", "view"]

NO_INITIAL: Final = object()
_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class ListView:
    """Keyed read access to a list (``"1"`` and ``1`` are both the second item)."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def get(self, key: Any, default: Any = None) -> Any:
        """The item at index ``key`` or ``default``."""
        value = get_path(self.items, (key,))
        return default if value is MISSING else value


def view(value: Any) -> Any:
    """Something with ``.get(key)`` for keyed lookups in ``value``."""
    if isinstance(value, Mapping):
        return value
    if type(value) is list or type(value) is tuple:
        return ListView(value)
    return _EMPTY


def path(context: Any, keys: Sequence[Any]) -> Any:
    """The value at ``keys`` in ``context``, or None."""
    value = get_path(context, keys)
    return None if value is MISSING else value


def path_from(value: Any, keys: Sequence[Any]) -> Any:
    """Continue a lookup that started inline (``value`` may be anything)."""
    if value is None:
        return None
    found = get_path(value, keys)
    return None if found is MISSING else found


def flat_key(context: Any, dotted: str, keys: Sequence[Any]) -> Any:
    """Nested lookup of ``keys``; falls back to a flat ``"a.b"`` key of a dict."""
    value = get_path(context, keys)
    if value is MISSING:
        if isinstance(context, Mapping):
            return context.get(dotted)
        return None
    return value


def var_dynamic(context: Any, path_value: Any, default: Any) -> Any:
    """``var`` with a computed path."""
    keys = split_var_path(path_value)
    if not keys:
        return context if context is not None or default is MISSING else default
    value = get_path(context, keys)
    if value is MISSING and len(keys) > 1 and isinstance(context, Mapping):
        value = context.get(".".join(keys), MISSING)
    if value is MISSING or value is None:
        return None if default is MISSING else default
    return value


def _val_target(scopes: Sequence[Any], args: Sequence[Any]) -> tuple[Any, Sequence[Any]]:
    if args and type(args[0]) is list:
        climb_spec = args[0]
        climb = 0
        if climb_spec:
            climb = abs(int(to_number(climb_spec[0])))
        index = max(0, len(scopes) - 1 - climb)
        return scopes[index], args[1:]
    return scopes[-1], args


def val_dynamic(scopes: Sequence[Any], args: Sequence[Any]) -> Any:
    """``val`` with computed arguments (``scopes`` are the contexts, outermost first)."""
    context, keys = _val_target(scopes, args)
    if len(keys) == 1 and keys[0] is None:
        return context
    value = get_path(context, keys)
    return None if value is MISSING else value


def exists_dynamic(scopes: Sequence[Any], args: Sequence[Any]) -> bool:
    """``exists`` with computed arguments."""
    context, keys = _val_target(scopes, args)
    return get_path(context, keys) is not MISSING


def spread(value: Any) -> list[Any]:
    """The arguments an expression supplies to a spreading operator."""
    if type(value) is list:
        return value
    if type(value) is tuple:
        return list(value)
    return [value]


def spread_checked(value: Any, name: str, min_args: int, max_args: int | None) -> list[Any]:
    """Like :func:`spread`, checking the argument count."""
    args = spread(value)
    if len(args) < min_args or (max_args is not None and len(args) > max_args):
        raise InvalidArgumentsError(f"{name!r} got {len(args)} arguments")
    return args


def _charge(budget: list[int], count: int) -> None:
    budget[0] -= count
    if budget[0] < 0:
        raise RuleLimitExceeded(
            f"the rule visits more than {budget[1]} array items in one evaluation (max_steps)"
        )


def _items_or_none(value: Any) -> list[Any] | None:
    t = type(value)
    if t is list:
        return value  # type: ignore[no-any-return]
    if t is tuple:
        return list(value)
    return None


def _required_items(value: Any, name: str) -> list[Any]:
    items = _items_or_none(value)
    if items is None:
        raise InvalidArgumentsError(f"{name!r} needs an array, not {describe(value)}")
    return items


def map_items(value: Any, body: Callable[[Any], Any], budget: list[int]) -> list[Any]:
    """``map`` (non-arrays give ``[]``)."""
    items = _items_or_none(value)
    if items is None:
        return []
    _charge(budget, len(items))
    return [body(item) for item in items]


def map_items_indexed(value: Any, body: Callable[[Any, int], Any], budget: list[int]) -> list[Any]:
    """``map`` whose body reads the item index."""
    items = _items_or_none(value)
    if items is None:
        return []
    _charge(budget, len(items))
    return [body(item, index) for index, item in enumerate(items)]


def filter_items(value: Any, body: Callable[[Any], Any], budget: list[int]) -> list[Any]:
    """``filter`` (non-arrays give ``[]``)."""
    items = _items_or_none(value)
    if items is None:
        return []
    _charge(budget, len(items))
    return [item for item in items if body(item)]


def filter_items_indexed(
    value: Any, body: Callable[[Any, int], Any], budget: list[int]
) -> list[Any]:
    """``filter`` whose body reads the item index."""
    items = _items_or_none(value)
    if items is None:
        return []
    _charge(budget, len(items))
    return [item for index, item in enumerate(items) if body(item, index)]


def all_items(value: Any, body: Callable[..., Any], budget: list[int], indexed: bool) -> bool:
    """``all``: false for an empty array."""
    items = _required_items(value, "all")
    if not items:
        return False
    _charge(budget, len(items))
    if indexed:
        return all(body(item, index) for index, item in enumerate(items))
    return all(map(body, items))


def some_items(value: Any, body: Callable[..., Any], budget: list[int], indexed: bool) -> bool:
    """``some``."""
    items = _required_items(value, "some")
    _charge(budget, len(items))
    if indexed:
        return any(body(item, index) for index, item in enumerate(items))
    return any(map(body, items))


def none_items(value: Any, body: Callable[..., Any], budget: list[int], indexed: bool) -> bool:
    """``none``."""
    items = _required_items(value, "none")
    _charge(budget, len(items))
    if indexed:
        return not any(body(item, index) for index, item in enumerate(items))
    return not any(map(body, items))


def reduce_items(
    value: Any, body: Callable[[Any, Any, int], Any], initial: Any, budget: list[int]
) -> Any:
    """``reduce``; without an initial value the first item starts."""
    items = _items_or_none(value)
    if items is None:
        return None if initial is NO_INITIAL else initial
    start = 0
    if initial is NO_INITIAL:
        if not items:
            return None
        accumulator = items[0]
        start = 1
    else:
        accumulator = initial
    _charge(budget, len(items))
    for index in range(start, len(items)):
        accumulator = body(items[index], accumulator, index)
    return accumulator


def _as_evaluation_error(exc: Exception) -> RuleEvaluationError:
    if isinstance(exc, RuleEvaluationError):
        return exc
    if isinstance(exc, (RuleError, MemoryError, RecursionError)):
        raise exc
    failure = OperatorFailedError(f"{type(exc).__name__}: {exc}")
    failure.__cause__ = exc
    return failure


def try_each(first: Callable[[], Any], *handlers: Callable[[Any], Any]) -> Any:
    """``try``: the first argument that does not raise; each fallback sees the error."""
    try:
        return first()
    except Exception as exc:
        error = _as_evaluation_error(exc)
    for handler in handlers:
        try:
            return handler(error.error_value())
        except Exception as exc:
            error = _as_evaluation_error(exc)
    raise error


def to_bool(value: Any) -> bool:
    """Truthiness as a bool (for ``!!``)."""
    return truthy(value)


class ErrorLocator:
    """Finds where in a rule an evaluation error happened, from the traceback."""

    __slots__ = ("filename", "line_paths")

    def __init__(self, filename: str, line_paths: dict[int, str]) -> None:
        self.filename = filename
        self.line_paths = line_paths

    def __call__(self, exc: Exception) -> Exception:
        path = ""
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self.filename:
                path = self.line_paths.get(tb.tb_lineno, path)
            tb = tb.tb_next
        if isinstance(exc, RuleError):
            if not exc.path:
                exc.path = path
            return exc
        if isinstance(exc, MemoryError):
            return exc
        located: RuleError
        if isinstance(exc, RecursionError):
            located = RuleLimitExceeded("the evaluation recursed too deeply", path)
        else:
            located = OperatorFailedError(f"{type(exc).__name__}: {exc}", path)
        located.__cause__ = exc
        return located


class Runtime:
    """The helpers a registry's compiled rules use, bound to its time zone and limits."""

    def __init__(self, semantics: Semantics, limits: Limits) -> None:
        self.semantics = semantics
        self.limits = limits
        self._namespace = self._build_namespace()

    def cat(self, *args: Any) -> str:
        """``cat`` bounded by ``max_string_length``."""
        return self.limits.check_string(cat(*args), "the concatenation")

    def merge(self, *args: Any) -> list[Any]:
        """``merge`` bounded by ``max_array_length``."""
        total = sum(len(a) if type(a) is list or type(a) is tuple else 1 for a in args)
        if total > self.limits.max_array_length:
            raise RuleLimitExceeded(
                f"the merged array would have {total} items; "
                f"the limit is {self.limits.max_array_length}"
            )
        return merge(*args)

    def namespace(self) -> dict[str, Any]:
        """A fresh copy of the names compiled code can use."""
        return dict(self._namespace)

    def _build_namespace(self) -> dict[str, Any]:
        sem = self.semantics
        return {
            "__builtins__": {},
            "Exception": Exception,
            "isinstance": isinstance,
            "len": len,
            "type": type,
            "int": int,
            "float": float,
            "str": str,
            "bool": bool,
            "dict": dict,
            "list": list,
            "_NF": frozenset({int, float}),
            "_S31": 2**31,
            "_S63": 2**63,
            "_fixn": fix_number,
            "_MISSING": MISSING,
            "_NOINIT": NO_INITIAL,
            "_view": view,
            "_path": path,
            "_path_from": path_from,
            "_flat_key": flat_key,
            "_var_dyn": var_dynamic,
            "_val_dyn": val_dynamic,
            "_exists_dyn": exists_dynamic,
            "_get_path": get_path,
            "_spread": spread,
            "_spread_n": spread_checked,
            "_truthy": truthy,
            "_bool": to_bool,
            "_num": to_number,
            "_add": add,
            "_sub": sub,
            "_mul": mul,
            "_div": div,
            "_mod": mod,
            "_neg": neg,
            "_lt": sem.lt,
            "_le": sem.le,
            "_gt": sem.gt,
            "_ge": sem.ge,
            "_eq": sem.eq,
            "_ne": sem.ne,
            "_seq": sem.seq,
            "_sne": sem.sne,
            "_in": sem.contains,
            "_cat": self.cat,
            "_merge": self.merge,
            "_map": map_items,
            "_map_i": map_items_indexed,
            "_filter": filter_items,
            "_filter_i": filter_items_indexed,
            "_all": all_items,
            "_some": some_items,
            "_none": none_items,
            "_reduce": reduce_items,
            "_try": try_each,
        }
