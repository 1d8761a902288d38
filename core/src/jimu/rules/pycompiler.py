"""Compile a parsed rule into one Python function.

The compiler emits Python source for the whole rule and compiles it once:
evaluating a rule is then a single function call with no interpretation
left. Common shapes get inline fast paths (a constant-path ``var`` is a dict
lookup; comparing with a number constant is a native comparison guarded by
a type check), and everything unusual falls back to the helpers of
:mod:`jimu.rules.runtime`, which implement the full semantics.

Safety: the source never contains text from the rule except through
``repr()`` of strings and numbers; other constants are bound by name. Each
node's own code sits on lines tagged with the node's id, so an error raised
at evaluation time is located in the rule from its traceback, at no cost
while nothing fails.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from jimu.rules.errors import InvalidArgumentsError, RuleError, RuleLimitExceeded
from jimu.rules.operators import OperatorContext
from jimu.rules.runtime import ErrorLocator
from jimu.rules.stdlib import STANDARD_OPERATORS
from jimu.rules.tree import ArrayNode, Call, Const, Node
from jimu.rules.values import js_str, split_var_path, truthy

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry

__all__ = ["CompiledRule", "compile_tree"]

_NOCONST: Final = object()
_NATIVE_TRUTH: Final = frozenset({"bool", "num", "str", "list", "null"})
_PY_OPS: Final = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "==": "==",
    "!=": "!=",
    "===": "==",
    "!==": "!=",
}
_SLOW_OPS: Final = {
    "<": "_lt",
    "<=": "_le",
    ">": "_gt",
    ">=": "_ge",
    "==": "_eq",
    "!=": "_ne",
    "===": "_seq",
    "!==": "_sne",
}
_HOIST_DEPTH: Final = 12
_filenames = itertools.count(1)


class CompiledRule(functools.partial[Any]):
    """A rule compiled to a Python function: ``compiled(data)`` evaluates it.

    ``compiled.matches(data)`` gives the result's truthiness (filters,
    conditions, permissions). ``evaluate`` is the generated function itself.
    Calling the object is dispatched in C (it is a ``functools.partial``), so
    it costs about as much as calling ``evaluate`` directly.
    """

    rule: Any
    tree: Node
    evaluate: Callable[..., Any]
    source: str
    registry: OperatorRegistry

    def __new__(
        cls,
        rule: Any,
        tree: Node,
        evaluate: Callable[..., Any],
        source: str,
        registry: OperatorRegistry,
    ) -> CompiledRule:
        self = super().__new__(cls, evaluate)
        self.rule = rule
        self.tree = tree
        self.evaluate = evaluate
        self.source = source
        self.registry = registry
        return self

    def matches(self, data: Any = None) -> bool:
        """Whether the rule is truthy for ``data``."""
        return truthy(self.evaluate(data))

    def fields_read(self) -> set[str]:
        """The data fields (dotted paths) the rule reads; see :func:`jimu.rules.fields_read`."""
        from jimu.rules.analysis import fields_of_tree

        return fields_of_tree(self.tree)

    def __repr__(self) -> str:
        return f"CompiledRule({self.rule!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a CompiledRule cannot be pickled; pickle the rule and compile it again")


@dataclass(slots=True)
class _Expr:
    code: str
    kind: str = "any"
    const: Any = _NOCONST
    simple: bool = False
    ref: str | None = None  # code for uses that do not let the value escape

    @property
    def is_const(self) -> bool:
        return self.const is not _NOCONST

    @property
    def raw(self) -> str:
        return self.ref if self.ref is not None else self.code


@dataclass(slots=True, eq=False)
class _Frame:
    name: str
    parent: _Frame | None
    defs: list[str] = field(default_factory=list)
    levels: list[_Level] = field(default_factory=list)
    nest: int = 0


@dataclass(slots=True, eq=False)
class _Level:
    """One scope level: the root data, an iterator item, its metadata, or a caught error."""

    kind: str  # root | item | meta | reduce | error
    frame: _Frame
    ctx: str
    view: str
    index: str | None = None
    current: str | None = None
    accumulator: str | None = None
    needs_view: bool = False
    needs_ctx: bool = False
    index_used: bool = False


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "bool"
    if t is int or t is Decimal or (t is float and value == value):
        return "num"
    if t is str:
        return "str"
    if t is list:
        return "list"
    if t is dict:
        return "dict"
    return "any"


def _clone(value: Any) -> Any:
    t = type(value)
    if t is list:
        return [_clone(item) for item in value]
    if t is dict:
        return {key: _clone(item) for key, item in value.items()}
    return value


_RETURN_KINDS: Final = {
    "boolean": "bool",
    "number": "num",
    "integer": "num",
    "text": "str",
    "list": "list",
    "null": "null",
}


class _Compiler:
    def __init__(self, registry: OperatorRegistry, trusted: frozenset[str]) -> None:
        self.registry = registry
        self.runtime = registry.runtime
        self.limits = registry.limits
        self.ns = self.runtime.namespace()
        self.trusted = trusted
        self.paths: list[str] = []
        self.counter = itertools.count()
        self.bound: dict[int, str] = {}
        self.uses_budget = False
        self.factory: str | None = None
        self.top = _Frame("_rule", None)
        self.frame = self.top
        root = _Level("root", self.top, "data", "_vroot")
        self.top.levels.append(root)
        self.scopes: list[_Level] = [root]

    # ------------------------------------------------------------------ plumbing

    def tmp(self, prefix: str = "_t") -> str:
        return f"{prefix}{next(self.counter)}"

    def bind(self, value: Any, prefix: str = "_k") -> str:
        key = id(value)
        name = self.bound.get(key)
        if name is None or self.ns.get(name) is not value:
            name = self.tmp(prefix)
            self.ns[name] = value
            self.bound[key] = name
        return name

    def node_id(self, node: Node) -> int:
        self.paths.append(node.path)
        return len(self.paths) - 1

    def emit(self, node: Node, *parts: str | _Expr, kind: str = "any") -> _Expr:
        """Join own text and child code; own text lines carry the node's tag."""
        tag = f"  #@{self.node_id(node)}\n"
        out: list[str] = []
        line: list[str] = []
        for part in parts:
            if isinstance(part, str):
                line.append(part)
            elif part.simple:
                line.append(part.code)
            else:
                if line:
                    out.append("".join(line) + tag)
                    line = []
                out.append(part.code)
        if line:
            out.append("".join(line) + tag)
        return _Expr("".join(out), kind)

    def constant(self, value: Any) -> _Expr:
        t = type(value)
        kind = _kind_of(value)
        if value is None or t is bool:
            return _Expr(repr(value), kind, value, simple=True)
        if t is int and -(2**63) < value < 2**63:
            text = repr(value)
            return _Expr(f"({text})" if value < 0 else text, kind, value, simple=True)
        if t is float and math.isfinite(value):
            text = repr(value)
            return _Expr(f"({text})" if value < 0 else text, kind, value, simple=True)
        if t is str and len(value) <= 256:
            return _Expr(repr(value), kind, value, simple=True)
        name = self.bind(value)
        if t is list or t is dict:
            return _Expr(f"_clone({name})", kind, value, simple=True, ref=name)
        return _Expr(name, kind, value, simple=True)

    def fold(self, func: Callable[..., Any], *args: Any) -> Any:
        """Evaluate at compile time; ``_NOCONST`` when it raises (it then raises at run time)."""
        try:
            return func(*args)
        except RuleLimitExceeded:
            raise
        except (RuleError, ArithmeticError, ValueError, TypeError):
            return _NOCONST

    # ------------------------------------------------------------------ scopes

    def view_of(self, level: _Level) -> str:
        level.needs_view = True
        return level.view

    def ctx_of(self, level: _Level) -> str:
        if level.kind == "meta":
            level.index_used = True
            return f"{{'index': {level.index}}}"
        if level.kind == "reduce":
            level.needs_ctx = True
        return level.ctx

    def all_contexts(self) -> str:
        return "(" + "".join(f"{self.ctx_of(level)}, " for level in self.scopes) + ")"

    # ------------------------------------------------------------------ entry points

    def value(self, node: Node) -> _Expr:
        if type(node) is Const:
            return self.constant(node.value)
        if type(node) is ArrayNode:
            return self.array(node)
        assert isinstance(node, Call)
        if self.frame.nest >= _HOIST_DEPTH:
            return self.hoist(node)
        self.frame.nest += 1
        try:
            handler = None
            if node.operator is STANDARD_OPERATORS.get(node.op):
                handler = _VALUE_HANDLERS.get(node.op)
            if handler is not None:
                return handler(self, node)
            return self.function_call(node)
        finally:
            self.frame.nest -= 1

    def cond(self, node: Node) -> _Expr:
        """Code whose Python truthiness is the rule's truthiness."""
        if type(node) is Call and node.operator is STANDARD_OPERATORS.get(node.op):
            handler = _COND_HANDLERS.get(node.op)
            if handler is not None and self.frame.nest < _HOIST_DEPTH:
                self.frame.nest += 1
                try:
                    return handler(self, node)
                finally:
                    self.frame.nest -= 1
        return self.truth(node, self.value(node))

    def truth(self, node: Node, expr: _Expr) -> _Expr:
        if expr.is_const:
            value = truthy(expr.const)
            return _Expr(repr(value), "bool", value, simple=True)
        if expr.kind in _NATIVE_TRUTH:
            return expr
        t = self.tmp()
        return self.emit(
            node,
            "(",
            t,
            " if type(",
            t,
            " := ",
            expr,
            ") is bool else _truthy(",
            t,
            "))",
            kind="bool",
        )

    def hoist(self, node: Node) -> _Expr:
        """Move a deep subtree into its own function so Python's parser stays within bounds."""
        frame = _Frame(self.tmp("_s"), self.frame)
        outer = self.frame
        self.frame = frame
        try:
            body = self.value(node)
        finally:
            self.frame = outer
        self.render_def(frame, [], body, outer)
        return self.emit(node, frame.name, "()", kind=body.kind)

    def array(self, node: ArrayNode) -> _Expr:
        parts: list[str | _Expr] = ["["]
        for item in node.items:
            parts.append(self.value(item))
            parts.append(", ")
        parts.append("]")
        return self.emit(node, *parts, kind="list")

    # ------------------------------------------------------------------ functions

    def function_call(self, call: Call) -> _Expr:
        op = call.operator
        func = op.func
        assert func is not None
        standard = op is STANDARD_OPERATORS.get(call.op)
        kind = "any"
        if call.op in self.trusted:
            kind = _RETURN_KINDS.get(op.returns, "any")
        head: list[str | _Expr] = []
        if op.needs_context:
            ctx = self.ctx_of(self.scopes[-1])
            if standard:
                head = [ctx, ", "]
            else:
                if self.factory is None:
                    self.factory = self.bind(self.context_factory(), "_ctx")
                factory = self.factory
                head = [f"{factory}({ctx}), "]
        fname = self.bind(func, "_f")
        if call.spread is not None:
            spread = self.value(call.spread)
            if spread.is_const and not op.needs_context and op.pure:
                args = spread.const if type(spread.const) is list else [spread.const]
                if len(args) >= op.min_args and (op.max_args is None or len(args) <= op.max_args):
                    folded = self.fold(func, *args)
                    if folded is not _NOCONST:
                        return self.constant(folded)
            limits = f"{call.op!r}, {op.min_args}, {op.max_args!r}"
            return self.emit(
                call, fname, "(", *head, "*_spread_n(", spread, f", {limits}))", kind=kind
            )
        args_expr = [self.value(arg) for arg in call.args]
        if op.pure and not op.needs_context and all(a.is_const for a in args_expr):
            folded = self.fold(func, *[a.const for a in args_expr])
            if folded is not _NOCONST:
                return self.constant(folded)
        parts: list[str | _Expr] = [fname, "(", *head]
        for arg in args_expr:
            parts += [arg, ", "]
        parts.append(")")
        return self.emit(call, *parts, kind=kind)

    def context_factory(self) -> Callable[[Any], OperatorContext]:
        registry = self.registry

        def make_context(data: Any) -> OperatorContext:
            return OperatorContext(data, registry)

        return make_context

    # ------------------------------------------------------------------ data access

    def lookup(self, node: Node, level: _Level, keys: tuple[str, ...], dotted: bool) -> _Expr:
        if not keys:
            return _Expr(self.ctx_of(level), "any", simple=True)
        if level.kind == "reduce":
            if keys[0] == "current":
                base = level.current
            elif keys[0] == "accumulator":
                base = level.accumulator
            else:
                return self.constant(None)
            assert base is not None
            if len(keys) == 1:
                return _Expr(base, "any", simple=True)
            return self.emit(node, f"_path_from({base}, {keys[1:]!r})")
        if level.kind == "meta":
            if keys == ("index",):
                level.index_used = True
                assert level.index is not None
                return _Expr(level.index, "num", simple=True)
            return self.constant(None)
        view = self.view_of(level)
        first = f"{view}.get({keys[0]!r})"
        if len(keys) == 1:
            return self.emit(node, first)
        fallback = f"_flat_key({level.ctx}, {'.'.join(keys)!r}, {keys!r})" if dotted else None
        if len(keys) == 2:
            t = self.tmp()
            if fallback is None:
                fallback = f"_path_from({t}, {keys[1:]!r})"
            return self.emit(
                node, f"({t}.get({keys[1]!r}) if type({t} := {first}) is dict else {fallback})"
            )
        if fallback is not None:
            return self.emit(node, fallback)
        return self.emit(node, f"_path({level.ctx}, {keys!r})")

    def with_default(self, node: Node, found: _Expr, default: Node | None) -> _Expr:
        if default is None:
            return found
        fallback = self.value(default)
        t = self.tmp()
        return self.emit(
            node, "(", t, " if (", t, " := ", found, ") is not None else ", fallback, ")"
        )

    def var(self, call: Call) -> _Expr:
        args = call.args
        path_node = args[0] if args else None
        default = args[1] if len(args) > 1 else None
        if path_node is None or type(path_node) is Const:
            raw = path_node.value if isinstance(path_node, Const) else None
            try:
                keys = split_var_path(raw)
            except InvalidArgumentsError as exc:
                exc.path = call.path
                raise
            found = self.lookup(call, self.scopes[-1], keys, dotted=len(keys) > 1)
            return self.with_default(call, found, default)
        path_expr = self.value(path_node)
        default_expr = (
            self.value(default) if default is not None else _Expr("_MISSING", simple=True)
        )
        ctx = self.ctx_of(self.scopes[-1])
        return self.emit(call, f"_var_dyn({ctx}, ", path_expr, ", ", default_expr, ")")

    def static_val_target(self, values: list[Any]) -> tuple[_Level, tuple[str, ...]] | None:
        level = self.scopes[-1]
        keys = values
        if values and type(values[0]) is list:
            spec = values[0]
            climb = 0
            if spec:
                if not (isinstance(spec[0], (int, float)) and not isinstance(spec[0], bool)):
                    return None
                climb = abs(int(spec[0]))
            level = self.scopes[max(0, len(self.scopes) - 1 - climb)]
            keys = values[1:]
        out = []
        for key in keys:
            if type(key) is str:
                out.append(key)
            elif type(key) is int or (type(key) is float and key.is_integer()):
                out.append(js_str(key))
            else:
                return None
        return level, tuple(out)

    def val(self, call: Call) -> _Expr:
        if call.spread is None and all(type(arg) is Const for arg in call.args):
            values = [arg.value for arg in call.args]  # type: ignore[attr-defined]
            if values == [None]:
                return _Expr(self.ctx_of(self.scopes[-1]), "any", simple=True)
            target = self.static_val_target(values)
            if target is not None:
                level, keys = target
                return self.lookup(call, level, keys, dotted=False)
        return self.emit(call, "_val_dyn(", self.all_contexts(), ", ", self.arg_list(call), ")")

    def exists(self, call: Call) -> _Expr:
        if call.spread is None and all(type(arg) is Const for arg in call.args):
            values = [arg.value for arg in call.args]  # type: ignore[attr-defined]
            target = self.static_val_target(values)
            if target is not None:
                level, keys = target
                ctx = self.ctx_of(level)
                return self.emit(call, f"(_get_path({ctx}, {keys!r}) is not _MISSING)", kind="bool")
        return self.emit(
            call, "_exists_dyn(", self.all_contexts(), ", ", self.arg_list(call), ")", kind="bool"
        )

    def arg_list(self, call: Call) -> _Expr:
        if call.spread is not None:
            return self.emit(call, "_spread(", self.value(call.spread), ")", kind="list")
        parts: list[str | _Expr] = ["["]
        for arg in call.args:
            parts += [self.value(arg), ", "]
        parts.append("]")
        return self.emit(call, *parts, kind="list")

    # ------------------------------------------------------------------ logic

    def if_(self, call: Call, mode: str) -> _Expr:
        args = call.args
        gen = self.value if mode == "value" else self.cond
        if not args:
            return self.constant(None)
        if len(args) == 1:
            return gen(args[0])
        branches: list[tuple[_Expr, Node]] = []
        otherwise: Node | None = None
        index = 0
        while index + 1 < len(args):
            test = self.cond(args[index])
            if test.is_const:
                if test.const:
                    otherwise = args[index + 1]
                    break
                index += 2
                continue
            branches.append((test, args[index + 1]))
            index += 2
        else:
            if index < len(args):
                otherwise = args[index]
        result = gen(otherwise) if otherwise is not None else self.constant(None)
        if mode == "cond" and otherwise is None:
            result = _Expr("False", "bool", False, simple=True)
        kinds = {result.kind}
        for test, then_node in reversed(branches):
            then = gen(then_node)
            kinds.add(then.kind)
            result = self.emit(call, "(", then, " if ", test, " else ", result, ")")
        result.kind = kinds.pop() if len(kinds) == 1 else "any"
        return result

    def and_or(self, call: Call, is_and: bool) -> _Expr:
        args = call.args
        if not args:
            return self.constant(False)
        exprs: list[_Expr] = []
        for arg in args:
            expr = self.value(arg)
            if expr.is_const:
                decisive = not truthy(expr.const) if is_and else truthy(expr.const)
                if decisive:
                    exprs.append(expr)
                    break
                if arg is not args[-1]:
                    continue
            exprs.append(expr)
        if len(exprs) == 1:
            return exprs[0]
        word = " and " if is_and else " or "
        if all(e.kind in _NATIVE_TRUTH for e in exprs):
            parts: list[str | _Expr] = ["("]
            for i, e in enumerate(exprs):
                parts += [word if i else "", e]
            parts.append(")")
            kinds = {e.kind for e in exprs}
            return self.emit(call, *parts, kind=kinds.pop() if len(kinds) == 1 else "any")
        result = exprs[-1]
        for e in reversed(exprs[:-1]):
            t = self.tmp()
            if e.kind in _NATIVE_TRUTH:
                test: list[str | _Expr] = ["(", t, " := ", e, ")"]
            else:
                test = ["_truthy(", t, " := ", e, ")"]
            if is_and:
                result = self.emit(call, "(", t, " if not ", *test, " else ", result, ")")
            else:
                result = self.emit(call, "(", t, " if ", *test, " else ", result, ")")
        return result

    def and_or_cond(self, call: Call, is_and: bool) -> _Expr:
        args = call.args
        if not args:
            return _Expr("False", "bool", False, simple=True)
        exprs: list[_Expr] = []
        for arg in args:
            expr = self.cond(arg)
            if expr.is_const:
                if bool(expr.const) is not is_and:
                    if not exprs:
                        return _Expr(repr(not is_and), "bool", not is_and, simple=True)
                    exprs.append(expr)
                    break
                continue
            exprs.append(expr)
        if not exprs:
            return _Expr(repr(is_and), "bool", is_and, simple=True)
        if len(exprs) == 1:
            return exprs[0]
        word = " and " if is_and else " or "
        parts: list[str | _Expr] = ["("]
        for i, e in enumerate(exprs):
            parts += [word if i else "", e]
        parts.append(")")
        return self.emit(call, *parts, kind="bool")

    def not_(self, call: Call) -> _Expr:
        if not call.args:
            return self.constant(True)
        test = self.cond(call.args[0])
        if test.is_const:
            return self.constant(not test.const)
        return self.emit(call, "(not ", test, ")", kind="bool")

    def not_not(self, call: Call) -> _Expr:
        if not call.args:
            return self.constant(False)
        test = self.cond(call.args[0])
        if test.is_const:
            return self.constant(bool(test.const))
        if test.kind == "bool":
            return test
        return self.emit(call, "(not not ", test, ")", kind="bool")

    def not_not_cond(self, call: Call) -> _Expr:
        if not call.args:
            return self.constant(False)
        return self.cond(call.args[0])

    def coalesce(self, call: Call) -> _Expr:
        exprs: list[_Expr] = []
        for arg in call.args:
            expr = self.value(arg)
            if expr.is_const:
                if expr.const is None:
                    continue
                exprs.append(expr)
                break
            exprs.append(expr)
        if not exprs:
            return self.constant(None)
        result = exprs[-1]
        for e in reversed(exprs[:-1]):
            t = self.tmp()
            result = self.emit(
                call, "(", t, " if (", t, " := ", e, ") is not None else ", result, ")"
            )
        return result

    # ------------------------------------------------------------------ comparisons

    def compare(self, call: Call) -> _Expr:
        op = call.op
        operands = [self.value(arg) for arg in call.args]
        pieces: list[_Expr] = []
        for i in range(len(operands) - 1):
            left, right = operands[i], operands[i + 1]
            if i + 2 < len(operands) and not right.simple:
                t = self.tmp()
                operands[i + 1] = _Expr(t, right.kind, simple=True)
                right = self.emit(call, "(", t, " := ", right, ")", kind=right.kind)
            piece = self.compare2(call, op, left, right)
            if piece.is_const:
                if not piece.const:
                    if not pieces:
                        return piece
                    pieces.append(piece)
                    break
                continue
            pieces.append(piece)
        if not pieces:
            return self.constant(True)
        if len(pieces) == 1:
            return pieces[0]
        parts: list[str | _Expr] = ["("]
        for i, piece in enumerate(pieces):
            parts += [" and " if i else "", piece]
        parts.append(")")
        return self.emit(call, *parts, kind="bool")

    def compare2(self, node: Node, op: str, a: _Expr, b: _Expr) -> _Expr:
        slow = _SLOW_OPS[op]
        pyop = _PY_OPS[op]
        if a.is_const and b.is_const:
            folded = self.fold(self.ns[slow], a.const, b.const)
            if folded is not _NOCONST:
                return self.constant(bool(folded))
        if a.is_const or b.is_const:
            x, k, x_left = (a, b, True) if b.is_const else (b, a, False)
            kv = k.const
            kcode = k.raw
            t = self.tmp()
            native = f"{t} {pyop} {kcode}" if x_left else f"{kcode} {pyop} {t}"
            fallback = f"{slow}({t}, {kcode})" if x_left else f"{slow}({kcode}, {t})"
            tk = type(kv)
            if (tk is int or tk is float) and math.isfinite(kv):
                return self.emit(
                    node, "(", native, " if type(", t, " := ", x, ") in _NF else ", fallback, ")",
                    kind="bool",
                )  # fmt: skip
            if tk is str and x.kind == "str" and op not in ("===", "!=="):
                return self.emit(node, "(", x, f" {pyop} {kcode})", kind="bool")
            if tk is str:
                day = _iso_date(kv)
                if day is not None:
                    dname = self.bind(day, "_d")
                    dnative = f"{t} {pyop} {dname}" if x_left else f"{dname} {pyop} {t}"
                    return self.emit(
                        node, "(", native, " if type(", t, " := ", x, ") is str else ", dnative,
                        " if type(", t, ") is _date else ", fallback, ")", kind="bool",
                    )  # fmt: skip
                return self.emit(
                    node, "(", native, " if type(", t, " := ", x, ") is str else ", fallback, ")",
                    kind="bool",
                )  # fmt: skip
            if kv is None:
                if op == "===":
                    return self.emit(node, "(", x, " is None)", kind="bool")
                if op == "!==":
                    return self.emit(node, "(", x, " is not None)", kind="bool")
                if op in ("==", "!="):
                    hit = "True" if op == "==" else "False"
                    return self.emit(
                        node, f"({hit} if (", t, " := ", x, ") is None else ", fallback, ")",
                        kind="bool",
                    )  # fmt: skip
            if tk is bool and op in ("===", "!=="):
                word = "is" if op == "===" else "is not"
                return self.emit(node, "(", x, f" {word} {kv!r})", kind="bool")
        if a.is_const or b.is_const:
            return self.emit(node, f"{slow}(", a if not a.is_const else a.raw, ", ",
                             b if not b.is_const else b.raw, ")", kind="bool")  # fmt: skip
        ta, tb = self.tmp(), self.tmp()
        return self.emit(
            node, f"({ta} {pyop} {tb} if (type(", ta, " := ", a, ") in _NF) & (type(", tb,
            " := ", b, f") in _NF) else {slow}({ta}, {tb}))", kind="bool",
        )  # fmt: skip

    def in_(self, call: Call) -> _Expr:
        needle, haystack = (self.value(arg) for arg in call.args)
        if needle.is_const and haystack.is_const:
            folded = self.fold(self.ns["_in"], needle.const, haystack.const)
            if folded is not _NOCONST:
                return self.constant(bool(folded))
        if haystack.is_const:
            hv = haystack.const
            t = self.tmp()
            if type(hv) is list and hv and all(type(item) is str for item in hv):
                members = self.bind(frozenset(hv), "_m")
                return self.emit(
                    call, "(", t, f" in {members} if type(", t, " := ", needle,
                    f") is str else _in({t}, {haystack.raw}))", kind="bool",
                )  # fmt: skip
            if type(hv) is str:
                return self.emit(
                    call, "(", t, f" in {haystack.raw} if type(", t, " := ", needle,
                    f") is str else _in({t}, {haystack.raw}))", kind="bool",
                )  # fmt: skip
            return self.emit(call, "_in(", needle, f", {haystack.raw})", kind="bool")
        if needle.is_const and type(needle.const) is str:
            t = self.tmp()
            k = needle.code
            return self.emit(
                call, f"({k} in {t} if type(", t, " := ", haystack, ") is str else True ",
                f"if type({t}) is list and {k} in {t} else _in({k}, {t}))", kind="bool",
            )  # fmt: skip
        return self.emit(call, "_in(", needle, ", ", haystack, ")", kind="bool")

    # ------------------------------------------------------------------ arithmetic

    def arithmetic(self, call: Call) -> _Expr:
        op = call.op
        if call.spread is not None or len(call.args) > 2:
            return self.function_call(call)
        args = [self.value(arg) for arg in call.args]
        func = call.operator.func
        assert func is not None
        if all(a.is_const for a in args):
            folded = self.fold(func, *[a.const for a in args])
            if folded is not _NOCONST:
                return self.constant(folded)
        if op in ("/", "%") or not args:
            return self.function_call(call)
        if len(args) == 1:
            if op in ("+", "*"):
                t = self.tmp()
                return self.emit(
                    call, "(", t, " if type(", t, " := ", args[0], ") in _NF else _num(", t, "))",
                    kind="num",
                )  # fmt: skip
            t = self.tmp()
            return self.emit(
                call, "(-", t, " if type(", t, " := ", args[0], ") in _NF else _neg(", t, "))",
                kind="num",
            )  # fmt: skip
        a, b = args
        slow = {"+": "_add", "-": "_sub", "*": "_mul"}[op]
        if b.is_const and type(b.const) in (int, float) and math.isfinite(b.const):
            t = self.tmp()
            guard = "in _NF"
            if op == "*" and type(b.const) is int:
                if abs(b.const) >= 2**31:
                    return self.function_call(call)
                return self.emit(
                    call, "(", t, f" * {b.code} if type(", t, " := ", a, ") is float or (type(",
                    t, ") is int and -_S31 < ", t, f" < _S31) else _mul({t}, {b.code}))", kind="num",
                )  # fmt: skip
            r = self.tmp()
            return self.emit(
                call, f"(({r} if type({r} := {t} {op} {b.code}) is float or -_S63 < {r} < _S63 ",
                f"else _fixn({r})) if type(", t, " := ", a, f") {guard} else ",
                f"{slow}({t}, {b.code}))", kind="num",
            )  # fmt: skip
        ta, tb = self.tmp(), self.tmp()
        if op == "*":
            guard = (
                f" and (type({ta}) is float or type({tb}) is float or "
                f"-_S31 < {ta} < _S31 and -_S31 < {tb} < _S31)"
            )
            result = f"{ta} * {tb}"
        else:
            r = self.tmp()
            guard = ""
            result = (
                f"({r} if type({r} := {ta} {op} {tb}) is float or -_S63 < {r} < _S63 "
                f"else _fixn({r}))"
            )
        return self.emit(
            call, f"({result} if (type(", ta, " := ", a, ") in _NF) & (type(", tb, " := ",
            b, f") in _NF){guard} else {slow}({ta}, {tb}))", kind="num",
        )  # fmt: skip

    def cat(self, call: Call) -> _Expr:
        if call.spread is not None or not call.args:
            return self.runtime_call(call, "_cat", "str")
        parts = [self.value(arg) for arg in call.args]
        if all(p.is_const for p in parts):
            return self.runtime_call(call, "_cat", "str")
        names: list[str] = []
        checks: list[str | _Expr] = []
        for part in parts:
            if part.is_const:
                names.append(repr(js_str(part.const)))
                continue
            t = self.tmp()
            names.append(t)
            checks += [" & " if checks else "", "(type(", t, " := ", part, ") is str)"]
        joined = " + ".join(names)
        fallback = f"_cat({', '.join(names)})"
        r = self.tmp()
        limit = self.limits.max_string_length
        fast = f"({r} if len({r} := {joined}) <= {limit} else {fallback})"
        return self.emit(call, f"({fast} if ", *checks, f" else {fallback})", kind="str")

    def substr(self, call: Call) -> _Expr:
        args = call.args
        bounds = [a.value for a in args[1:] if type(a) is Const]
        exact = (
            len(bounds) == len(args) - 1
            and all(type(b) is int for b in bounds)
            and (len(bounds) == 1 or (len(bounds) == 2 and bounds[0] >= 0))
        )
        if not exact or type(args[0]) is Const:
            return self.function_call(call)
        # JavaScript's substr equals Python slicing here: a negative start alone,
        # or a non-negative start with any length.
        start = bounds[0]
        if len(bounds) == 1:
            piece = f"[{start}:]"
        else:
            length = bounds[1]
            piece = f"[{start}:{start + length if length >= 0 else length}]"
        t = self.tmp()
        fname = self.bind(call.operator.func, "_f")
        rest = ", ".join(repr(b) for b in bounds)
        return self.emit(
            call, f"({t}{piece} if type(", t, " := ", self.value(args[0]),
            f") is str else {fname}({t}, {rest}))", kind="str",
        )  # fmt: skip

    def merge(self, call: Call) -> _Expr:
        return self.runtime_call(call, "_merge", "list")

    def runtime_call(self, call: Call, helper: str, kind: str) -> _Expr:
        if call.spread is not None:
            spread = self.value(call.spread)
            return self.emit(call, f"{helper}(*_spread(", spread, "))", kind=kind)
        args = [self.value(arg) for arg in call.args]
        if all(a.is_const for a in args):
            folded = self.fold(self.ns[helper], *[a.const for a in args])
            if folded is not _NOCONST:
                return self.constant(folded)
        parts: list[str | _Expr] = [helper, "("]
        for arg in args:
            parts += [arg, ", "]
        parts.append(")")
        return self.emit(call, *parts, kind=kind)

    # ------------------------------------------------------------------ iterators and try

    def new_frame(self) -> _Frame:
        frame = _Frame(self.tmp("_fn"), self.frame)
        return frame

    def render_def(self, frame: _Frame, params: list[str], body: _Expr, into: _Frame) -> None:
        lines = [f"def {frame.name}({', '.join(params)}):"]
        for level in frame.levels:
            if level.kind == "reduce" and level.needs_ctx:
                lines.append(
                    f"    {level.ctx} = {{'current': {level.current}, "
                    f"'accumulator': {level.accumulator}}}"
                )
            if level.needs_view:
                lines.append(
                    f"    {level.view} = {level.ctx} if type({level.ctx}) is dict "
                    f"else _view({level.ctx})"
                )
        for block in frame.defs:
            lines.extend("    " + line for line in block.splitlines())
        lines.append("    return (")
        lines.append(body.code.rstrip("\n"))
        lines.append("    )")
        into.defs.append("\n".join(lines))

    def iterator(self, call: Call) -> _Expr:
        op = call.op
        source_node, body_node = call.args[0], call.args[1]
        if type(source_node) is Const and source_node.value is None:
            raise InvalidArgumentsError(f"{op!r} needs an array, not null", call.path)
        if (
            op in ("map", "filter", "reduce")
            and type(body_node) is Const
            and body_node.value is None
        ):
            raise InvalidArgumentsError(f"{op!r} needs an expression to apply, not null", call.path)
        source = self.value(source_node)
        if source.is_const:
            source = _Expr(source.code, source.kind, simple=True)
        self.uses_budget = True
        frame = self.new_frame()
        n = frame.name[3:]
        meta = _Level("meta", frame, f"_m{n}", f"_mv{n}", index=f"_i{n}")
        if op == "reduce":
            level = _Level(
                "reduce", frame, f"_c{n}", f"_v{n}", current=f"_u{n}", accumulator=f"_a{n}"
            )
        else:
            level = _Level("item", frame, f"_c{n}", f"_v{n}")
        frame.levels += [meta, level]
        outer = self.frame
        self.frame = frame
        self.scopes += [meta, level]
        try:
            body = self.value(body_node) if op in ("map", "reduce") else self.cond(body_node)
        finally:
            self.scopes = self.scopes[:-2]
            self.frame = outer
        if op == "reduce":
            params = [f"_u{n}", f"_a{n}", f"_i{n}"]
        else:
            params = [f"_c{n}"] + ([f"_i{n}"] if meta.index_used else [])
        self.render_def(frame, params, body, outer)
        if op == "reduce":
            initial: _Expr | str = self.value(call.args[2]) if len(call.args) > 2 else "_NOINIT"
            return self.emit(call, "_reduce(", source, f", {frame.name}, ", initial, ", _B)")
        if op in ("map", "filter"):
            helper = f"_{op}_i" if meta.index_used else f"_{op}"
            return self.emit(call, f"{helper}(", source, f", {frame.name}, _B)", kind="list")
        return self.emit(
            call, f"_{op}(", source, f", {frame.name}, _B, {meta.index_used})", kind="bool"
        )

    def try_(self, call: Call) -> _Expr:
        args = call.args
        if not args:
            return self.constant(None)
        if len(args) == 1:
            return self.value(args[0])
        names: list[str] = []
        outer = self.frame
        first = self.new_frame()
        self.frame = first
        try:
            body = self.value(args[0])
        finally:
            self.frame = outer
        self.render_def(first, [], body, outer)
        names.append(first.name)
        for arg in args[1:]:
            frame = self.new_frame()
            n = frame.name[3:]
            level = _Level("error", frame, f"_c{n}", f"_v{n}")
            frame.levels.append(level)
            self.frame = frame
            self.scopes.append(level)
            try:
                body = self.value(arg)
            finally:
                self.scopes.pop()
                self.frame = outer
            self.render_def(frame, [level.ctx], body, outer)
            names.append(frame.name)
        return self.emit(call, f"_try({', '.join(names)})")

    # ------------------------------------------------------------------ assembly

    def build(self, tree: Node) -> tuple[Callable[[Any], Any], str]:
        body = self.value(tree)
        filename = f"<jimu-rule-{next(_filenames)}>"
        # Records are dicts: the fast path reads keys with ``data.get``. Other data
        # (lists, scalars, None) makes that raise; the rule then runs once more
        # with a read-only view of the data (``_vroot``) for keyed lookups.
        lines = ["def _rule(data=None, *, _vroot=None):"]
        if self.uses_budget:
            steps = self.limits.max_steps
            lines.append(f"    _B = [{steps}, {steps}]")
        root = self.top.levels[0]
        if root.needs_view:
            lines.append("    if _vroot is None:")
            lines.append("        _vroot = data")
        for block in self.top.defs:
            lines.extend("    " + line for line in block.splitlines())
        lines.append("    try:")
        lines.append("        return (")
        lines.append(body.code.rstrip("\n"))
        lines.append("        )")
        lines.append("    except Exception as _e:")
        if root.needs_view:
            lines.append("        if _vroot is data and not isinstance(data, _Mapping):")
            lines.append("            return _rule(data, _vroot=_view(data))")
        lines.append("        raise _locate(_e)")
        source = "\n".join(lines) + "\n"
        line_paths: dict[int, str] = {}
        for number, text in enumerate(source.splitlines(), start=1):
            marker = text.rfind("  #@")
            if marker >= 0:
                line_paths[number] = self.paths[int(text[marker + 4 :])]
        self.ns["_locate"] = ErrorLocator(filename, line_paths)
        self.ns["_clone"] = _clone
        self.ns["_date"] = date
        self.ns["_Mapping"] = Mapping
        code = compile(source, filename, "exec")
        exec(code, self.ns)
        return self.ns["_rule"], source


def _iso_date(text: str) -> date | None:
    if len(text) != 10:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def compile_tree(rule: Any, tree: Node, registry: OperatorRegistry) -> CompiledRule:
    """Compile a parsed rule for ``registry``."""
    compiler = _Compiler(registry, registry.trusted_names())
    try:
        func, source = compiler.build(tree)
    except (RecursionError, MemoryError) as exc:
        raise RuleLimitExceeded(
            f"the rule is too complex to compile ({type(exc).__name__})"
        ) from None
    except SyntaxError as exc:  # pragma: no cover - guarded by the depth limit
        raise RuleLimitExceeded(f"the rule is too complex to compile ({exc.msg})") from None
    return CompiledRule(rule, tree, func, source, registry)


def _h_if(c: _Compiler, call: Call) -> _Expr:
    return c.if_(call, "value")


def _h_if_cond(c: _Compiler, call: Call) -> _Expr:
    return c.if_(call, "cond")


_VALUE_HANDLERS: dict[str, Callable[[_Compiler, Call], _Expr]] = {
    "var": _Compiler.var,
    "val": _Compiler.val,
    "exists": _Compiler.exists,
    "if": _h_if,
    "?:": _h_if,
    "and": lambda c, call: c.and_or(call, True),
    "or": lambda c, call: c.and_or(call, False),
    "!": _Compiler.not_,
    "!!": _Compiler.not_not,
    "??": _Compiler.coalesce,
    "in": _Compiler.in_,
    "+": _Compiler.arithmetic,
    "-": _Compiler.arithmetic,
    "*": _Compiler.arithmetic,
    "/": _Compiler.arithmetic,
    "%": _Compiler.arithmetic,
    "cat": _Compiler.cat,
    "substr": _Compiler.substr,
    "merge": _Compiler.merge,
    "map": _Compiler.iterator,
    "filter": _Compiler.iterator,
    "reduce": _Compiler.iterator,
    "all": _Compiler.iterator,
    "some": _Compiler.iterator,
    "none": _Compiler.iterator,
    "try": _Compiler.try_,
    **{op: _Compiler.compare for op in _PY_OPS},
}

_COND_HANDLERS: dict[str, Callable[[_Compiler, Call], _Expr]] = {
    "if": _h_if_cond,
    "?:": _h_if_cond,
    "and": lambda c, call: c.and_or_cond(call, True),
    "or": lambda c, call: c.and_or_cond(call, False),
    "!!": _Compiler.not_not_cond,
}
