"""Static analysis: which fields a rule reads, and whether it fits an entity's field types.

:func:`fields_read` tells a field-change trigger when to fire and lets the
permission engine refuse a filter on a field the user may not read.
:func:`check_types` catches mistakes before a rule is saved: unknown fields,
a date field compared with text that is not a date, arithmetic on dates ...
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from jimu.rules.errors import RuleTypeError, UnknownFieldError
from jimu.rules.tree import ArrayNode, Call, Const, Node
from jimu.rules.values import Semantics, describe, js_str, parse_js_number, split_var_path

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry

__all__ = ["FieldsRead", "check_types", "fields_of_tree", "fields_read"]

_ITERATORS: Final = frozenset({"map", "filter", "reduce", "all", "some", "none"})
_COMPARISONS: Final = frozenset({"==", "!=", "===", "!==", "<", "<=", ">", ">="})
_TEMPORAL: Final = frozenset({"date", "datetime"})
_NUMERIC_FIELDS: Final = frozenset({"integer", "decimal", "link", "number"})
_DATE_OPERATORS: Final = frozenset(
    {
        "to_date",
        "add_days",
        "add_months",
        "add_years",
        "add_hours",
        "add_minutes",
        "diff_days",
        "diff_hours",
        "diff_minutes",
        "start_of_day",
        "start_of_week",
        "start_of_month",
        "age_years",
    }
)
_RETURNS: Final = {
    "boolean": "boolean",
    "number": "number",
    "integer": "number",
    "text": "text",
    "date": "date",
    "datetime": "datetime",
    "list": "list",
    "object": "object",
    "null": "null",
}


class FieldsRead(set[str]):
    """The fields (dotted paths) a rule reads, as a set.

    ``dynamic`` lists the paths in the rule where a field is read through a
    computed path (so the set may be incomplete); ``whole_record`` is true
    when the rule reads the entire record (``{"var": ""}``).
    """

    def __init__(
        self, fields: Iterable[str] = (), dynamic: Iterable[str] = (), whole_record: bool = False
    ) -> None:
        super().__init__(fields)
        self.dynamic = list(dynamic)
        self.whole_record = whole_record

    @property
    def fields(self) -> set[str]:
        """The fields as a plain set."""
        return set(self)

    @property
    def complete(self) -> bool:
        """True when every field the rule can read is in the set."""
        return not self.dynamic and not self.whole_record


@dataclass(slots=True)
class _Reads:
    fields: dict[str, str] = field(default_factory=dict)  # field -> first path reading it
    dynamic: list[str] = field(default_factory=list)
    whole_record: bool = False


def _level_for(scopes: list[str], values: list[Any]) -> tuple[int, list[Any]] | None:
    """The scope index a static ``val``/``exists`` reads and its keys (None if dynamic)."""
    if values and type(values[0]) is list:
        spec = values[0]
        climb = 0
        if spec:
            if not isinstance(spec[0], (int, float)) or isinstance(spec[0], bool):
                return None
            climb = abs(int(spec[0]))
        return max(0, len(scopes) - 1 - climb), values[1:]
    return len(scopes) - 1, values


def _static_keys(values: list[Any]) -> list[str] | None:
    keys = []
    for value in values:
        if type(value) is str:
            keys.append(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            keys.append(js_str(value))
        else:
            return None
    return keys


def _const_args(call: Call) -> list[Any] | None:
    if call.spread is not None:
        if type(call.spread) is Const:
            value = call.spread.value
            return list(value) if type(value) is list else [value]
        return None
    if all(type(arg) is Const for arg in call.args):
        return [arg.value for arg in call.args]  # type: ignore[attr-defined]
    return None


class _Collector:
    def __init__(self) -> None:
        self.reads = _Reads()

    def read(self, keys: list[str], path: str) -> None:
        if not keys:
            self.reads.whole_record = True
            return
        self.reads.fields.setdefault(".".join(keys), path)

    def visit(self, node: Node, scopes: list[str]) -> None:
        if type(node) is ArrayNode:
            for item in node.items:
                self.visit(item, scopes)
            return
        if type(node) is not Call:
            return
        assert isinstance(node, Call)
        op = node.op
        at_root = len(scopes) == 1
        if op == "var" and node.operator.kind == "intrinsic":
            path_node = node.args[0] if node.args else None
            if path_node is None or type(path_node) is Const:
                raw = path_node.value if isinstance(path_node, Const) else None
                if at_root:
                    self.read(list(split_var_path(raw)), node.path)
            else:
                self.reads.dynamic.append(node.path)
            for arg in node.args:
                self.visit(arg, scopes)
            return
        if op in ("val", "exists") and node.operator.kind == "intrinsic":
            values = _const_args(node)
            target = _level_for(scopes, values) if values is not None else None
            keys = _static_keys(target[1]) if target is not None else None
            if values == [None] and op == "val":
                if at_root:
                    self.reads.whole_record = True
            elif target is None or keys is None:
                self.reads.dynamic.append(node.path)
            elif target[0] == 0:
                self.read(keys, node.path)
            self._children(node, scopes)
            return
        if op in ("missing", "missing_some") and node.operator.kind == "function":
            values = _const_args(node)
            if values is not None and at_root:
                keys = values
                if op == "missing_some":
                    keys = values[1] if len(values) > 1 and type(values[1]) is list else []
                elif values and type(values[0]) is list:
                    keys = values[0]
                for key in keys:
                    self.read(list(split_var_path(key)) if key is not None else [], node.path)
            elif values is None:
                self.reads.dynamic.append(node.path)
            self._children(node, scopes)
            return
        if op == "has_tag" and node.spread is None and len(node.args) == 1 and at_root:
            self.read(["tags"], node.path)
        if op in _ITERATORS and node.operator.kind == "intrinsic" and len(node.args) >= 2:
            self.visit(node.args[0], scopes)
            inner = [*scopes, "meta", "reduce" if op == "reduce" else "item"]
            self.visit(node.args[1], inner)
            for arg in node.args[2:]:
                self.visit(arg, scopes)
            return
        if op == "try" and node.operator.kind == "intrinsic" and node.args:
            self.visit(node.args[0], scopes)
            for arg in node.args[1:]:
                self.visit(arg, [*scopes, "error"])
            return
        self._children(node, scopes)

    def _children(self, node: Call, scopes: list[str]) -> None:
        if node.spread is not None:
            self.visit(node.spread, scopes)
        for arg in node.args:
            self.visit(arg, scopes)


def fields_of_tree(tree: Node) -> FieldsRead:
    """The fields a parsed rule reads."""
    collector = _Collector()
    collector.visit(tree, ["root"])
    reads = collector.reads
    return FieldsRead(reads.fields, reads.dynamic, reads.whole_record)


def fields_read(rule: Any, registry: OperatorRegistry | None = None) -> FieldsRead:
    """The record fields (dotted paths, e.g. ``"customer.city"``) that ``rule`` reads.

    The result is a set; its ``dynamic`` attribute lists where the rule reads
    through a computed path, and ``whole_record`` says whether it reads the
    entire record. Paths read inside ``map``/``filter``/... bodies belong to
    the array items, not the record, and are not listed.
    """
    from jimu.rules.registry import shared_default_registry

    return fields_of_tree((registry or shared_default_registry()).parse(rule))


# --------------------------------------------------------------------------- type checking


def _const_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, (list, tuple)):
        return "list"
    return "object"


@dataclass(slots=True)
class _Typed:
    type: str
    field: str | None = None
    const: Any = None
    is_const: bool = False


class _TypeChecker:
    def __init__(self, field_types: Mapping[str, str], semantics: Semantics) -> None:
        self.field_types = field_types
        self.semantics = semantics

    def field_type(self, keys: list[str], path: str) -> _Typed:
        name = ".".join(keys)
        if not keys:
            return _Typed("object")
        known = self.field_types.get(name)
        if known is not None:
            return _Typed(known, name)
        for cut in range(len(keys) - 1, 0, -1):
            prefix = self.field_types.get(".".join(keys[:cut]))
            if prefix == "json":
                return _Typed("any", name)
            if prefix is not None:
                break
        raise UnknownFieldError(name, path)

    def check(self, node: Node, scopes: list[str]) -> _Typed:
        if type(node) is Const:
            return _Typed(_const_type(node.value), None, node.value, True)
        if type(node) is ArrayNode:
            for item in node.items:
                self.check(item, scopes)
            return _Typed("list")
        assert isinstance(node, Call)
        op = node.op
        intrinsic = node.operator.kind == "intrinsic"
        at_root = len(scopes) == 1
        if intrinsic and op == "var":
            path_node = node.args[0] if node.args else None
            for arg in node.args[1:]:
                self.check(arg, scopes)
            if path_node is None or type(path_node) is Const:
                raw = path_node.value if isinstance(path_node, Const) else None
                if at_root:
                    return self.field_type(list(split_var_path(raw)), node.path)
                return _Typed("any")
            self.check(path_node, scopes)
            return _Typed("any")
        if intrinsic and op in ("val", "exists"):
            values = _const_args(node)
            target = _level_for(scopes, values) if values is not None else None
            keys = _static_keys(target[1]) if target is not None else None
            if op == "val" and target is not None and keys is not None and target[0] == 0:
                if values == [None]:
                    return _Typed("object")
                return self.field_type(keys, node.path)
            self._children(node, scopes)
            return _Typed("boolean" if op == "exists" else "any")
        if intrinsic and op in _ITERATORS and len(node.args) >= 2:
            self.check(node.args[0], scopes)
            self.check(node.args[1], [*scopes, "meta", "item"])
            for arg in node.args[2:]:
                self.check(arg, scopes)
            return _Typed("list" if op in ("map", "filter") else "boolean")
        if intrinsic and op == "try" and node.args:
            self.check(node.args[0], scopes)
            for arg in node.args[1:]:
                self.check(arg, [*scopes, "error"])
            return _Typed("any")
        if op == "has_tag" and node.spread is None and len(node.args) == 1 and at_root:
            tags = self.field_type(["tags"], node.path)
            if tags.type not in ("json", "any"):
                raise RuleTypeError(
                    f'has_tag needs a json "tags" field, not {tags.type}', node.path
                )
        args = self._children(node, scopes)
        if op in _COMPARISONS and node.operator.kind == "intrinsic":
            for left, right in itertools.pairwise(args):
                self.compare(op, left, right, node.path)
            return _Typed("boolean")
        if op in ("+", "-", "*", "/", "%") and node.operator.kind == "function":
            for operand in args:
                if operand.type in _TEMPORAL or operand.type in ("list", "object", "json"):
                    raise RuleTypeError(
                        f"{op!r} needs numbers, but {self.name(operand)} is "
                        f"{_article(operand.type)}",
                        node.path,
                    )
            return _Typed("number")
        if op in _DATE_OPERATORS and node.operator.kind == "function":
            self.check_date_args(op, args, node.path)
        if intrinsic and op in ("if", "?:"):
            branches = [args[i] for i in range(1, len(args), 2)]
            if len(args) % 2 == 1 and len(args) > 1:
                branches.append(args[-1])
            kinds = {b.type for b in branches}
            return _Typed(kinds.pop() if len(kinds) == 1 else "any")
        if intrinsic and op in ("and", "or", "??") and args:
            kinds = {a.type for a in args}
            return _Typed(kinds.pop() if len(kinds) == 1 else "any")
        if intrinsic and op in ("!", "!!", "in"):
            return _Typed("boolean")
        return _Typed(_RETURNS.get(node.operator.returns, "any"))

    def _children(self, node: Call, scopes: list[str]) -> list[_Typed]:
        if node.spread is not None:
            self.check(node.spread, scopes)
            return []
        return [self.check(arg, scopes) for arg in node.args]

    @staticmethod
    def name(typed: _Typed) -> str:
        if typed.field is not None:
            return f'field "{typed.field}"'
        if typed.is_const:
            return describe(typed.const)
        return "the value"

    def compare(self, op: str, a: _Typed, b: _Typed, path: str) -> None:
        for x, y in ((a, b), (b, a)):
            if x.type in _TEMPORAL:
                if y.is_const and isinstance(y.const, str):
                    if self.semantics.parse_temporal(y.const) is None:
                        raise RuleTypeError(
                            f"{op!r} compares {x.type} {self.name(x)} with {describe(y.const)}, "
                            "which is not a date",
                            path,
                        )
                elif y.type in ("number", "boolean", "list", "object") or (
                    y.type in _NUMERIC_FIELDS and not y.is_const
                ):
                    raise RuleTypeError(
                        f"{op!r} compares {x.type} {self.name(x)} with {self.name(y)} "
                        f"({_article(y.type)})",
                        path,
                    )
            if (
                x.type in _NUMERIC_FIELDS
                and x.field is not None
                and op not in ("===", "!==")
                and y.is_const
                and isinstance(y.const, str)
                and parse_js_number(y.const) is None
            ):
                raise RuleTypeError(
                    f"{op!r} compares {x.type} {self.name(x)} with {describe(y.const)}, "
                    "which is not a number",
                    path,
                )

    def check_date_args(self, op: str, args: list[_Typed], path: str) -> None:
        date_count = 2 if op.startswith("diff_") else 1
        if op == "age_years":
            date_count = len(args)
        for index, arg in enumerate(args[:date_count]):
            if arg.is_const and isinstance(arg.const, str):
                if self.semantics.parse_temporal(arg.const) is None:
                    raise RuleTypeError(
                        f"{op} needs a date, but {describe(arg.const)} is not one", path
                    )
            elif arg.type in ("number", "boolean", "list", "object") or arg.type in _NUMERIC_FIELDS:
                raise RuleTypeError(
                    f"{op} needs a date as argument {index + 1}, not {self.name(arg)} "
                    f"({_article(arg.type)})",
                    path,
                )


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def check_types(
    rule: Any, field_types: Mapping[str, str], registry: OperatorRegistry | None = None
) -> str:
    """Check ``rule`` against an entity's ``field_types`` (path -> field type).

    Raises :class:`UnknownFieldError` for a field the entity does not have and
    :class:`RuleTypeError` (with the path) for comparisons or operations that
    cannot work, e.g. a date field compared with text that is not a date.
    Paths below a ``json`` field are not checked. Returns the rule's result
    type (``"boolean"``, ``"number"``, ``"text"``, ``"date"`` ... or ``"any"``).
    """
    from jimu.rules.registry import shared_default_registry

    registry = registry or shared_default_registry()
    tree = registry.parse(rule)
    checker = _TypeChecker(field_types, registry.semantics)
    return checker.check(tree, ["root"]).type
