"""The operator registry: which operators a rule may use, and how they behave on a site.

A registry holds :class:`~jimu.rules.operators.Operator` objects (the standard
JSON Logic operators, the kernel's extras and whatever plugins add), the
site's time zone, a clock (injectable for tests) and the :class:`Limits`.
It compiles rules and keeps the most recently used compiled rules by their
canonical JSON form.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import msgspec

from jimu.rules.operators import Limits, Operator
from jimu.rules.runtime import Runtime
from jimu.rules.stdlib import STANDARD_OPERATORS
from jimu.rules.tree import Node, measure, parse
from jimu.rules.values import Semantics

if TYPE_CHECKING:
    from jimu.rules.pycompiler import CompiledRule
    from jimu.rules.sqlbase import Dialect, SqlFragment, SqlScope

__all__ = ["DEFAULT_TIMEZONE", "Clock", "OperatorRegistry", "default_registry"]

DEFAULT_TIMEZONE: Final = "Asia/Shanghai"

Clock = Callable[[], datetime]
"""Returns the current time; an aware datetime (a naive one is read in the site's zone)."""

_KEEP: Final[Any] = object()
_ENCODER: Final = msgspec.json.Encoder(order="sorted")


def _system_clock() -> datetime:
    return datetime.now(UTC)


def _zone(value: str | tzinfo) -> tzinfo:
    if isinstance(value, str):
        return ZoneInfo(value)
    return value


class OperatorRegistry:
    """Operators by name, plus the site's time zone, clock and limits.

    Registries are cheap; copy one to change its clock or limits, or to add
    a plugin's operators without touching the original::

        registry = default_registry().copy(clock=lambda: datetime(2024, 5, 1, 9, 0))
        registry.extend(plugin_operators)
    """

    def __init__(
        self,
        operators: Iterable[Operator] = (),
        *,
        timezone: str | tzinfo = DEFAULT_TIMEZONE,
        clock: Clock | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._operators: dict[str, Operator] = {}
        self._tz = _zone(timezone)
        self._clock: Clock = clock or _system_clock
        self._limits = limits or Limits()
        self._semantics = Semantics(self._tz)
        self._runtime = Runtime(self._semantics, self._limits)
        self._cache: dict[bytes, CompiledRule] = {}
        self._lock = threading.Lock()
        self._frozen = False
        self._trusted: frozenset[str] | None = None
        for operator in operators:
            self.add(operator)

    # ------------------------------------------------------------------ configuration

    @property
    def timezone(self) -> tzinfo:
        """The site's time zone (``Asia/Shanghai`` unless configured)."""
        return self._tz

    @property
    def limits(self) -> Limits:
        """The limits rules compiled by this registry obey."""
        return self._limits

    @property
    def clock(self) -> Clock:
        """The function that tells the current time."""
        return self._clock

    @property
    def semantics(self) -> Semantics:
        """Comparisons and date coercions in this registry's time zone."""
        return self._semantics

    @property
    def runtime(self) -> Runtime:
        """The helpers compiled rules of this registry call."""
        return self._runtime

    def now(self) -> datetime:
        """The current time in the site's time zone."""
        moment = self._clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._tz)
        return moment.astimezone(self._tz)

    def today(self) -> date:
        """Today's date in the site's time zone."""
        return self.now().date()

    # ------------------------------------------------------------------ operators

    def add(self, operator: Operator, *, replace: bool = False) -> None:
        """Register ``operator``; a name already taken is an error unless ``replace``."""
        if not isinstance(operator, Operator):
            raise TypeError(f"expected an Operator, got {type(operator).__name__}")
        with self._lock:
            if self._frozen:
                raise RuntimeError("this registry is shared and frozen; use default_registry()")
            if operator.name in self._operators and not replace:
                raise ValueError(
                    f"operator {operator.name!r} is already registered; "
                    "two plugins may not silently replace the same operator"
                )
            self._operators[operator.name] = operator
            self._changed()

    def extend(self, operators: Iterable[Operator], *, replace: bool = False) -> None:
        """Register several operators (for example a plugin's ``jimu_rule_operators``)."""
        for operator in operators:
            self.add(operator, replace=replace)

    def remove(self, name: str) -> Operator:
        """Unregister the operator ``name`` and return it."""
        with self._lock:
            if self._frozen:
                raise RuntimeError("this registry is shared and frozen; use default_registry()")
            operator = self._operators.pop(name)
            self._changed()
            return operator

    def get(self, name: str) -> Operator | None:
        """The operator called ``name``, or None."""
        return self._operators.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._operators

    def __iter__(self) -> Iterator[Operator]:
        return iter(list(self._operators.values()))

    def __len__(self) -> int:
        return len(self._operators)

    def names(self) -> list[str]:
        """The registered operator names, sorted."""
        return sorted(self._operators)

    def trusted_names(self) -> frozenset[str]:
        """Names whose operator is the built-in one (their declared result types are exact)."""
        trusted = self._trusted
        if trusted is None:
            from jimu.rules.kernel import KERNEL_OPERATORS

            builtin = {**STANDARD_OPERATORS, **KERNEL_OPERATORS}
            trusted = frozenset(n for n, op in self._operators.items() if builtin.get(n) is op)
            self._trusted = trusted
        return trusted

    def copy(
        self,
        *,
        timezone: str | tzinfo = _KEEP,
        clock: Clock | None = _KEEP,
        limits: Limits = _KEEP,
    ) -> OperatorRegistry:
        """A new registry with the same operators; optionally another zone, clock or limits."""
        return OperatorRegistry(
            self._operators.values(),
            timezone=self._tz if timezone is _KEEP else timezone,
            clock=self._clock if clock is _KEEP else clock,
            limits=self._limits if limits is _KEEP else limits,
        )

    def freeze(self) -> OperatorRegistry:
        """Refuse further changes (used for the shared default registry)."""
        self._frozen = True
        return self

    def _changed(self) -> None:
        self._cache.clear()
        self._trusted = None

    # ------------------------------------------------------------------ compiling

    def parse(self, rule: Any) -> Node:
        """Check ``rule`` against the limits and operators and return its tree."""
        measure(rule, self._limits)
        return parse(rule, self)

    def compile(self, rule: Any) -> CompiledRule:
        """Compile ``rule`` to a Python function (cached by the rule's canonical form)."""
        from jimu.rules.pycompiler import compile_tree

        shape = measure(rule, self._limits)
        key: bytes | None = None
        if shape.plain_json and self._limits.cache_size:
            key = _ENCODER.encode(rule)
            with self._lock:
                cached = self._cache.pop(key, None)
                if cached is not None:
                    self._cache[key] = cached
                    return cached
        compiled = compile_tree(rule, parse(rule, self), self)
        if key is not None:
            with self._lock:
                self._cache[key] = compiled
                while len(self._cache) > self._limits.cache_size:
                    self._cache.pop(next(iter(self._cache)))
        return compiled

    def apply(self, rule: Any, data: Any = None) -> Any:
        """Compile (or reuse) ``rule`` and evaluate it against ``data``."""
        return self.compile(rule).evaluate(data)

    def compile_sql(self, rule: Any, scope: SqlScope, dialect: Dialect) -> SqlFragment:
        """Compile ``rule`` into a parameterised SQL condition; see :func:`jimu.rules.compile_sql`."""
        from jimu.rules.sql import compile_sql_tree

        return compile_sql_tree(self.parse(rule), scope, dialect, self)

    def __repr__(self) -> str:
        return f"OperatorRegistry({len(self)} operators, timezone={self._tz!s})"


def default_registry(
    *,
    timezone: str | tzinfo = DEFAULT_TIMEZONE,
    clock: Clock | None = None,
    limits: Limits | None = None,
) -> OperatorRegistry:
    """A new registry with the standard operators and the kernel's extras."""
    from jimu.rules.kernel import kernel_operators
    from jimu.rules.stdlib import standard_operators

    return OperatorRegistry(
        [*standard_operators(), *kernel_operators()],
        timezone=timezone,
        clock=clock,
        limits=limits,
    )


_shared: OperatorRegistry | None = None
_shared_lock = threading.Lock()


def shared_default_registry() -> OperatorRegistry:
    """The frozen default registry that ``jimu.rules.compile`` and friends use."""
    global _shared
    registry = _shared
    if registry is None:
        with _shared_lock:
            if _shared is None:
                _shared = default_registry().freeze()
            registry = _shared
    return registry
