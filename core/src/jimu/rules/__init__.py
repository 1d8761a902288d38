"""JSON Logic rules: one language for validation, visibility, conditions, segments,
permissions, report filters and loyalty earning rules.

* :func:`compile` turns a rule into a Python function once (cached);
  :func:`apply` compiles and evaluates in one call.
* :func:`compile_sql` turns a rule into a parameterised SQL condition for
  SQLite or PostgreSQL, or raises :class:`RuleNotSqlCompilable`.
* :func:`fields_read` and :func:`check_types` analyse a rule without running it.
* :class:`OperatorRegistry` holds the operators (standard JSON Logic, the
  kernel's dates/strings/tags, and plugins' :class:`Operator` objects from the
  ``jimu_rule_operators`` hook), the site's time zone, clock and :class:`Limits`.

Every error is a :class:`RuleError` with ``path`` and ``reason``.
"""

from __future__ import annotations

from typing import Any

from jimu.rules.analysis import FieldsRead, check_types, fields_read
from jimu.rules.errors import (
    InvalidArgumentsError,
    NaNError,
    OperatorFailedError,
    RuleError,
    RuleEvaluationError,
    RuleLimitExceeded,
    RuleNotSqlCompilable,
    RuleTypeError,
    ThrownError,
    UnknownFieldError,
    UnknownOperatorError,
)
from jimu.rules.operators import Limits, Operator, OperatorContext
from jimu.rules.pycompiler import CompiledRule
from jimu.rules.registry import (
    DEFAULT_TIMEZONE,
    Clock,
    OperatorRegistry,
    default_registry,
    shared_default_registry,
)
from jimu.rules.sqlbase import (
    Dialect,
    SqlCall,
    SqlColumn,
    SqlFragment,
    SqlScope,
    SqlValue,
)
from jimu.rules.values import truthy

__all__ = [
    "DEFAULT_TIMEZONE",
    "Clock",
    "CompiledRule",
    "Dialect",
    "FieldsRead",
    "InvalidArgumentsError",
    "Limits",
    "NaNError",
    "Operator",
    "OperatorContext",
    "OperatorFailedError",
    "OperatorRegistry",
    "RuleError",
    "RuleEvaluationError",
    "RuleLimitExceeded",
    "RuleNotSqlCompilable",
    "RuleTypeError",
    "SqlCall",
    "SqlColumn",
    "SqlFragment",
    "SqlScope",
    "SqlValue",
    "ThrownError",
    "UnknownFieldError",
    "UnknownOperatorError",
    "apply",
    "check_types",
    "compile",
    "compile_sql",
    "default_registry",
    "fields_read",
    "truthy",
]


def compile(rule: Any, registry: OperatorRegistry | None = None) -> CompiledRule:
    """Compile ``rule`` into a :class:`CompiledRule` (call it with the data).

    Uses the shared default registry unless ``registry`` is given. Compiled
    rules are cached per registry by the rule's canonical JSON form. Unknown
    operators, bad argument counts and limit violations raise here.
    """
    return (registry or shared_default_registry()).compile(rule)


def apply(rule: Any, data: Any = None, registry: OperatorRegistry | None = None) -> Any:
    """Evaluate ``rule`` against ``data`` (compiling it once, then reusing it)."""
    return (registry or shared_default_registry()).compile(rule).evaluate(data)


def compile_sql(
    rule: Any,
    scope: SqlScope,
    dialect: Dialect,
    registry: OperatorRegistry | None = None,
) -> SqlFragment:
    """Compile ``rule`` into an SQL condition with the same truthiness as in Python.

    ``scope`` resolves var paths to columns; ``dialect`` is ``"sqlite"`` or
    ``"postgres"``. Values are always parameters (piccolo ``QueryString``
    convention: ``{}``). A rule or part without an SQL form raises
    :class:`RuleNotSqlCompilable` naming the path and operator, so the caller
    can evaluate in Python instead; an unknown field raises
    :class:`UnknownFieldError`.
    """
    return (registry or shared_default_registry()).compile_sql(rule, scope, dialect)
