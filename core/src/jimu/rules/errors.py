"""The one exception hierarchy of the rule engine.

Every error carries ``path`` (where in the rule it happened, e.g. ``and[1].>[0]``)
and ``reason`` (what went wrong), and ``str(err)`` joins them:
``and[1].>[0]: unknown field "citty"``. ``type`` is the error type of the JSON
Logic compatibility suite (``"NaN"``, ``"Invalid Arguments"``, ``"Unknown Operator"``
or the value a rule threw).

::

    RuleError
    ├── UnknownOperatorError        unknown operator (compile time)
    ├── RuleEvaluationError         errors a ``try`` can catch
    │   ├── InvalidArgumentsError   wrong number or kind of arguments
    │   ├── NaNError                a value that is not a number where one is needed
    │   ├── ThrownError             a value raised by ``throw``
    │   └── OperatorFailedError     an operator implementation raised something else
    ├── RuleLimitExceeded           size, depth, step, regex or length limits
    ├── RuleTypeError               type checking against an entity's fields
    │   └── UnknownFieldError       a field the entity does not have
    └── RuleNotSqlCompilable        the rule (or a part) has no SQL form
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "InvalidArgumentsError",
    "NaNError",
    "OperatorFailedError",
    "RuleError",
    "RuleEvaluationError",
    "RuleLimitExceeded",
    "RuleNotSqlCompilable",
    "RuleTypeError",
    "ThrownError",
    "UnknownFieldError",
    "UnknownOperatorError",
]


class RuleError(Exception):
    """Base class of every rule error: a ``reason`` found at a ``path`` in the rule."""

    error_type: str = "Rule Error"

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path

    @property
    def type(self) -> str:
        """The error type name used by the JSON Logic compatibility suite."""
        return self.error_type

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, path={self.path!r})"


class UnknownOperatorError(RuleError):
    """The rule uses an operator the registry does not know."""

    error_type = "Unknown Operator"

    def __init__(self, operator: str, path: str = "") -> None:
        super().__init__(f"unknown operator {operator!r}", path)
        self.operator = operator


class RuleEvaluationError(RuleError):
    """An error raised while evaluating a rule; ``try`` can catch these."""

    def error_value(self) -> Any:
        """The value a ``try`` fallback sees as its context (``{"type": ...}``)."""
        return {"type": self.type}


class InvalidArgumentsError(RuleEvaluationError):
    """An operator got the wrong number or kind of arguments."""

    error_type = "Invalid Arguments"


class NaNError(RuleEvaluationError):
    """A value is not a number where a number is needed (JavaScript's NaN)."""

    error_type = "NaN"


class ThrownError(RuleEvaluationError):
    """A value raised by the ``throw`` operator."""

    def __init__(self, value: Any, path: str = "") -> None:
        self.value = value
        super().__init__(f"rule threw {_describe_thrown(value)}", path)

    @property
    def type(self) -> str:
        """``value["type"]`` when the thrown value is an object with a type, else the value."""
        value = self.value
        if isinstance(value, dict) and "type" in value:
            return str(value["type"])
        return str(value)

    def error_value(self) -> Any:
        """The thrown object itself, or ``{"type": value}`` for a plain value."""
        if isinstance(self.value, dict):
            return self.value
        return {"type": self.value}


class OperatorFailedError(RuleEvaluationError):
    """An operator implementation raised an exception that is not a rule error."""

    error_type = "Operator Failed"


class RuleLimitExceeded(RuleError):
    """A rule is too big, too deep, or its evaluation does too much work."""

    error_type = "Limit Exceeded"


class RuleTypeError(RuleError):
    """The rule does not fit the types of the fields it reads."""

    error_type = "Type Error"


class UnknownFieldError(RuleTypeError):
    """The rule reads a field that the entity does not have."""

    error_type = "Unknown Field"

    def __init__(self, field: str, path: str = "") -> None:
        super().__init__(f"unknown field {_quote(field)}", path)
        self.field = field


class RuleNotSqlCompilable(RuleError):
    """The rule, or the part at ``path``, cannot be expressed in SQL; evaluate it in Python."""

    error_type = "Not SQL Compilable"

    def __init__(self, reason: str, path: str = "", operator: str | None = None) -> None:
        super().__init__(reason, path)
        self.operator = operator


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _describe_thrown(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, dict) and "type" in value:
        return f"an error of type {_quote(str(value['type']))}"
    return repr(value)
