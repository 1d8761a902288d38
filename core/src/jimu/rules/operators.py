"""The :class:`Operator` type that registries hold and plugins contribute.

A plugin adds operators by implementing the ``jimu_rule_operators`` hook and
returning a list of :class:`Operator` objects::

    from jimu.rules import Operator

    def _shout(text):
        return str(text).upper() + "!"

    @hookimpl
    def jimu_rule_operators():
        return [Operator("shout", _shout, min_args=1, max_args=1, returns="text")]

Its Python implementation receives the evaluated arguments. An operator that
also has an SQL form gives ``sql``: a callable that receives an
:class:`~jimu.rules.sqlbase.SqlCall` and returns an
:class:`~jimu.rules.sqlbase.SqlValue` (see ``docs/concepts/rules.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from jimu.rules.errors import RuleLimitExceeded

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry
    from jimu.rules.sqlbase import SqlCall, SqlValue

__all__ = [
    "RESULT_TYPES",
    "ArgumentStyle",
    "Limits",
    "Operator",
    "OperatorContext",
    "SqlImplementation",
]

ArgumentStyle = Literal["flexible", "spread", "list"]
"""How an operator takes its arguments.

``flexible``: ``{"op": [a, b]}`` gives two arguments, anything else is the one argument.
``spread``: like ``flexible``, but one expression that evaluates to an array
supplies all the arguments (``{"+": {"var": "numbers"}}``).
``list``: the arguments must be a literal array (``if``, ``and``, comparisons, ...).
"""

RESULT_TYPES = frozenset(
    {"any", "boolean", "number", "integer", "text", "date", "datetime", "list", "object", "null"}
)
"""What an operator may declare as its result type (used by analysis)."""

SqlImplementation = Callable[["SqlCall"], "SqlValue"]
"""Turns the SQL forms of an operator's arguments into the SQL form of its result."""


@dataclass(frozen=True, slots=True)
class Operator:
    """One rule operator: its name, Python implementation and optional SQL form.

    ``func`` receives the evaluated arguments (``func(*args)``), or
    ``func(context, *args)`` when ``needs_context`` is true, where ``context`` is an
    :class:`OperatorContext` (the data in scope, the site clock and time zone).
    ``min_args``/``max_args`` are checked when a rule is compiled. ``pure``
    operators with constant arguments are evaluated once at compile time.
    ``kind="intrinsic"`` is reserved for the operators the compiler builds itself
    (``if``, ``and``, ``var``, ``map`` ...); their ``func`` is None.
    """

    name: str
    func: Callable[..., Any] | None = None
    sql: SqlImplementation | None = None
    min_args: int = 0
    max_args: int | None = None
    args: ArgumentStyle = "flexible"
    needs_context: bool = False
    pure: bool = True
    returns: str = "any"
    doc: str = ""
    kind: Literal["function", "intrinsic"] = "function"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("an operator needs a non-empty name")
        if self.kind == "function" and not callable(self.func):
            raise ValueError(f"operator {self.name!r} needs a Python implementation (func)")
        if self.min_args < 0 or (self.max_args is not None and self.max_args < self.min_args):
            raise ValueError(f"operator {self.name!r} has an impossible argument count")
        if self.args not in ("flexible", "spread", "list"):
            raise ValueError(f"operator {self.name!r}: args must be flexible, spread or list")
        if self.returns not in RESULT_TYPES:
            raise ValueError(
                f"operator {self.name!r}: returns must be one of {sorted(RESULT_TYPES)}"
            )

    def arity_text(self) -> str:
        """The argument count in words, for error messages."""
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.max_args == self.min_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


class OperatorContext:
    """What an operator with ``needs_context=True`` receives first."""

    __slots__ = ("data", "registry")

    def __init__(self, data: Any, registry: OperatorRegistry) -> None:
        self.data = data
        self.registry = registry

    def now(self) -> datetime:
        """The current time in the site's time zone (from the registry's clock)."""
        return self.registry.now()

    def today(self) -> date:
        """Today's date in the site's time zone."""
        return self.registry.today()


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep hostile or mistaken rules cheap. Every field is configurable."""

    max_nodes: int = 10_000
    """JSON values in one rule (operators, arrays and literals all count)."""
    max_depth: int = 32
    """Nesting depth of one rule."""
    max_array_literal: int = 5_000
    """Items in one literal array of a rule."""
    max_string_literal: int = 65_536
    """Characters in one literal string of a rule."""
    max_steps: int = 100_000
    """Items that map/filter/reduce/all/some/none may visit in one evaluation."""
    max_string_length: int = 1_000_000
    """Characters a ``cat`` (or other string operator) may produce."""
    max_array_length: int = 1_000_000
    """Items a ``merge`` may produce."""
    max_regex_length: int = 256
    """Characters in a regular expression pattern."""
    max_regex_subject: int = 100_000
    """Characters of text a regular expression may be matched against."""
    cache_size: int = 1024
    """Compiled rules kept per registry (least recently used are dropped)."""

    extra: dict[str, int] = field(default_factory=dict)
    """Limits that plugin operators define for themselves."""

    def __post_init__(self) -> None:
        for name in (
            "max_nodes",
            "max_depth",
            "max_array_literal",
            "max_string_literal",
            "max_steps",
            "max_string_length",
            "max_array_length",
            "max_regex_length",
            "max_regex_subject",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"limit {name} must be at least 1")
        if self.max_depth > 64:
            raise ValueError("limit max_depth cannot exceed 64 (Python's parser nesting bound)")
        if self.cache_size < 0:
            raise ValueError("limit cache_size cannot be negative")

    def check_string(self, text: str, what: str = "text") -> str:
        """Raise :class:`RuleLimitExceeded` when ``text`` is longer than ``max_string_length``."""
        if len(text) > self.max_string_length:
            raise RuleLimitExceeded(
                f"{what} would be {len(text)} characters; the limit is {self.max_string_length}"
            )
        return text
