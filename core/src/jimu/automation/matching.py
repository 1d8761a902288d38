"""Narrowing which automations' conditions a record event has to evaluate.

Two hundred automations on one entity would mean two hundred condition
evaluations per event. Most conditions, though, start with (or are) an
equality on a field: ``{"and": [{"==": [{"var": "city"}, "Shanghai"]}, ...]}``.
:class:`GuardIndex` files each automation under one such equality (the field
whose constants tell the group's automations apart best) and, for a record,
returns only the automations whose guard the record satisfies, plus those
without a guard. The full condition is still evaluated on every candidate:
the guard only skips automations whose condition is certainly false.

A guard is used only where a dictionary lookup is exactly the rule engine's
loose ``==``: a text constant against a text value, or a whole-number
constant against a whole-number value (never booleans, which are numbers to
Python). A record whose value has another type (null, a decimal, a date)
gets every automation guarded on that field as a candidate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["GuardIndex", "equality_guards"]

T = TypeVar("T")

#: The value types a guard compares with a dictionary lookup.
_EXACT_TYPES = (str, int)


def equality_guards(condition: Any) -> list[tuple[str, Any]]:
    """The ``(field, constant)`` equalities that must all hold for ``condition`` to hold.

    Only top-level conjuncts (``and``, or the condition itself) of the form
    ``{"==": [{"var": "field"}, constant]}`` (either side) or ``===``, on a
    plain field name, with a text or whole-number constant.
    """
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return []
    ((operator, operands),) = condition.items()
    if operator == "and" and isinstance(operands, list):
        found: list[tuple[str, Any]] = []
        for operand in operands:
            guard = _equality(operand)
            if guard is not None:
                found.append(guard)
        return found
    guard = _equality(condition)
    return [guard] if guard is not None else []


def _equality(node: Any) -> tuple[str, Any] | None:
    if not isinstance(node, Mapping) or len(node) != 1:
        return None
    ((operator, operands),) = node.items()
    if operator not in ("==", "===") or not isinstance(operands, list) or len(operands) != 2:
        return None
    for side, other in ((operands[0], operands[1]), (operands[1], operands[0])):
        name = side.get("var") if isinstance(side, Mapping) and len(side) == 1 else None
        if isinstance(name, str) and name and "." not in name and type(other) in _EXACT_TYPES:
            return name, other
    return None


@dataclass
class _FieldTable(Generic[T]):
    """The automations guarded on one field, by constant (all constants of one type)."""

    kind: type
    by_value: dict[Any, list[tuple[int, T]]] = field(default_factory=dict)
    every: list[tuple[int, T]] = field(default_factory=list)


class GuardIndex(Generic[T]):
    """Items (automations) with their conditions, filed under one equality guard each."""

    def __init__(self, items: Sequence[tuple[T, Any]]) -> None:
        """``items``: (item, JsonLogic condition or ``None``), in the order to return them."""
        guards = [equality_guards(condition) for _, condition in items]
        kinds: dict[str, set[type]] = {}
        constants: dict[str, set[Any]] = {}
        for found in guards:
            for name, constant in found:
                kinds.setdefault(name, set()).add(type(constant))
                constants.setdefault(name, set()).add(constant)
        usable = {name for name, types in kinds.items() if len(types) == 1}
        self._unguarded: list[tuple[int, T]] = []
        self._tables: dict[str, _FieldTable[T]] = {}
        for position, ((item, _), found) in enumerate(zip(items, guards, strict=True)):
            choices = [(name, constant) for name, constant in found if name in usable]
            if not choices:
                self._unguarded.append((position, item))
                continue
            # the field whose constants split the group most finely
            name, constant = max(choices, key=lambda choice: len(constants[choice[0]]))
            table = self._tables.setdefault(name, _FieldTable(kind=type(constant)))
            table.by_value.setdefault(constant, []).append((position, item))
            table.every.append((position, item))
        self.size = len(items)

    def candidates(self, record: Mapping[str, Any]) -> list[T]:
        """The items whose guard ``record`` satisfies, and the unguarded ones, in order."""
        if not self._tables:
            return [item for _, item in self._unguarded]
        found = list(self._unguarded)
        for name, table in self._tables.items():
            value = record.get(name)
            if type(value) is table.kind:
                found.extend(table.by_value.get(value, ()))
            else:  # not comparable by lookup: let the conditions decide
                found.extend(table.every)
        if len(self._tables) > 1 or self._unguarded:
            found.sort(key=lambda pair: pair[0])
        return [item for _, item in found]
