"""Parse a JSON Logic rule into a checked tree that the compilers and the analysis share.

Parsing enforces the registry's limits (size, depth, literal sizes), rejects
unknown operators and wrong argument counts, and gives every node its path
in the rule (``and[1].>[0]``), so every later error can say where it happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jimu.rules.errors import InvalidArgumentsError, RuleLimitExceeded, UnknownOperatorError
from jimu.rules.operators import Limits, Operator

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry

__all__ = ["ArrayNode", "Call", "Const", "Node", "RuleShape", "child_path", "measure", "parse"]


@dataclass(slots=True, eq=False)
class Node:
    """A node of a parsed rule, with its path in the rule."""

    path: str


@dataclass(slots=True, eq=False)
class Const(Node):
    """A literal value (including ``{"preserve": ...}``)."""

    value: Any


@dataclass(slots=True, eq=False)
class ArrayNode(Node):
    """An array literal with at least one operator inside."""

    items: list[Node]


@dataclass(slots=True, eq=False)
class Call(Node):
    """An operator applied to arguments.

    ``args`` are the literal arguments. ``spread`` is set instead when the
    arguments are one expression (``{"+": {"var": "xs"}}``) to be evaluated first.
    """

    op: str
    operator: Operator
    args: list[Node]
    spread: Node | None = None


def child_path(parent: str, op: str, index: int) -> str:
    """The path of argument ``index`` of operator ``op`` at ``parent``."""
    segment = f"{op}[{index}]"
    return f"{parent}.{segment}" if parent else segment


def _item_path(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


@dataclass(frozen=True, slots=True)
class RuleShape:
    """What a structural pass over a raw rule found."""

    nodes: int
    depth: int
    plain_json: bool
    """Only JSON types (dict with str keys, list, str, int, finite float, bool, None)."""


def measure(rule: Any, limits: Limits) -> RuleShape:
    """Walk ``rule`` without recursion and enforce the size limits."""
    nodes = 0
    max_depth = 0
    plain = True
    stack: list[tuple[Any, int]] = [(rule, 1)]
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise RuleLimitExceeded(f"the rule has more than {limits.max_nodes} nodes")
        if depth > max_depth:
            max_depth = depth
            if depth > limits.max_depth:
                raise RuleLimitExceeded(f"the rule is nested deeper than {limits.max_depth}")
        t = type(value)
        if t is dict:
            for key, item in value.items():
                if type(key) is not str:
                    plain = False
                stack.append((item, depth + 1))
        elif t is list or t is tuple:
            if len(value) > limits.max_array_literal:
                raise RuleLimitExceeded(
                    f"a literal array has {len(value)} items; "
                    f"the limit is {limits.max_array_literal}"
                )
            if t is tuple:
                plain = False
            stack.extend((item, depth + 1) for item in value)
        elif t is str:
            if len(value) > limits.max_string_literal:
                raise RuleLimitExceeded(
                    f"a literal string has {len(value)} characters; "
                    f"the limit is {limits.max_string_literal}"
                )
        elif t is float:
            if not math.isfinite(value):
                plain = False
        elif value is None or t is bool or t is int:
            pass
        else:
            plain = False
    return RuleShape(nodes, max_depth, plain)


def _to_plain(value: Any) -> Any:
    """Literal values as the compiled rule returns them (tuples become lists)."""
    t = type(value)
    if t is tuple or t is list:
        return [_to_plain(item) for item in value]
    if t is dict:
        return {key: _to_plain(item) for key, item in value.items()}
    return value


def parse(rule: Any, registry: OperatorRegistry) -> Node:
    """Parse ``rule`` (already measured) into a tree of nodes."""
    return _parse(rule, "", registry)


def _is_operation(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and type(next(iter(value))) is str


def _parse(rule: Any, path: str, registry: OperatorRegistry) -> Node:
    t = type(rule)
    if t is dict:
        if not _is_operation(rule):
            return Const(path, _to_plain(rule))
        ((name, raw),) = rule.items()
        if name == "preserve":
            return Const(path, _to_plain(raw))
        operator = registry.get(name)
        if operator is None:
            raise UnknownOperatorError(name, path)
        return _parse_call(name, operator, raw, path, registry)
    if t is list or t is tuple:
        items = [_parse(item, _item_path(path, i), registry) for i, item in enumerate(rule)]
        if all(type(item) is Const for item in items):
            return Const(path, [item.value for item in items])  # type: ignore[attr-defined]
        return ArrayNode(path, items)
    return Const(path, rule)


def _parse_call(
    name: str, operator: Operator, raw: Any, path: str, registry: OperatorRegistry
) -> Call:
    if type(raw) is list or type(raw) is tuple:
        args = [_parse(item, child_path(path, name, i), registry) for i, item in enumerate(raw)]
        _check_arity(name, operator, len(args), path)
        return Call(path, name, operator, args)
    if operator.args == "list":
        raise InvalidArgumentsError(f"{name!r} needs its arguments in an array", path)
    if _is_operation(raw):
        node = _parse(raw, child_path(path, name, 0), registry)
        if operator.args == "spread":
            if operator.max_args == 0:
                raise InvalidArgumentsError(f"{name!r} takes no arguments", path)
            return Call(path, name, operator, [], spread=node)
        _check_arity(name, operator, 1, path)
        return Call(path, name, operator, [node])
    _check_arity(name, operator, 1, path)
    return Call(path, name, operator, [Const(child_path(path, name, 0), _to_plain(raw))])


def _check_arity(name: str, operator: Operator, count: int, path: str) -> None:
    if count < operator.min_args or (operator.max_args is not None and count > operator.max_args):
        raise InvalidArgumentsError(
            f"{name!r} takes {operator.arity_text()} argument"
            f"{'' if operator.max_args == 1 else 's'}, not {count}",
            path,
        )
