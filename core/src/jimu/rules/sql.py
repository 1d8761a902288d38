"""Compile a rule into a parameterised SQL condition for SQLite or PostgreSQL.

The condition has the same truthiness as the Python engine for every row,
including NULLs: the compiler mirrors :mod:`jimu.rules.values` (``null`` is 0
for numbers, only equal to ``null``/0/``false``, and never ordered against
text or dates). Conditions may be NULL internally (meaning false, as in
WHERE); negation and the final condition are made two-valued, so the
fragment can be negated or combined safely. Values are always parameters.

Whatever has no exact SQL form raises :class:`RuleNotSqlCompilable` naming the
path and operator: a comparison that would raise NaN for some rows (text
against a number), dynamic paths, iterators, ``try``, regular expressions,
division by anything but a non-zero constant ...

``now`` and ``today`` are read from the registry's clock once, when the rule
is compiled, and bound as parameters.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, NoReturn

from jimu.rules.errors import RuleError, RuleLimitExceeded, RuleNotSqlCompilable, UnknownFieldError
from jimu.rules.kernel import KERNEL_OPERATORS
from jimu.rules.operators import OperatorContext
from jimu.rules.sqlbase import (
    FIELD_TYPES,
    NUMERIC_TYPES,
    Dialect,
    SqlCall,
    SqlFragment,
    SqlScope,
    SqlValue,
    sql_param,
)
from jimu.rules.stdlib import STANDARD_OPERATORS
from jimu.rules.tree import ArrayNode, Call, Const, Node
from jimu.rules.values import (
    describe,
    js_str,
    parse_js_number,
    split_var_path,
    strict_equals,
    to_number,
    truthy,
)

if TYPE_CHECKING:
    from jimu.rules.registry import OperatorRegistry

__all__ = ["compile_sql_tree"]

_MIRROR: Final = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "===": "==="}
_SQL_OPS: Final = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "===": "="}
_TEXTUAL: Final = frozenset({"text", "date", "datetime"})
_NUMBERS: Final = frozenset({"integer", "decimal", "float", "link"})
_FOLDABLE_CONTEXT_OPS: Final = frozenset(
    name for name in KERNEL_OPERATORS if name not in ("has_tag", "now", "today", "regex_match")
)


def _natural_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def _const(value: Any) -> SqlValue:
    return SqlValue("", (), _natural_type(value), value is None, (), value)


_TRUE: Final = SqlValue("TRUE", (), "boolean", False, (), True)
_FALSE: Final = SqlValue("FALSE", (), "boolean", False, (), False)


def _bool(value: bool) -> SqlValue:
    return _TRUE if value else _FALSE


def _join_null_if(*values: SqlValue) -> tuple[str, ...] | None:
    joined: tuple[str, ...] = ()
    for value in values:
        if value.null_if is None:
            return None
        joined += value.null_if
    return joined


class _SqlCompiler:
    def __init__(self, scope: SqlScope, dialect: Dialect, registry: OperatorRegistry) -> None:
        if dialect not in ("sqlite", "postgres"):
            raise ValueError(f"unknown SQL dialect {dialect!r}; use 'sqlite' or 'postgres'")
        self.scope = scope
        self.dialect: Dialect = dialect
        self.registry = registry
        self.sem = registry.semantics
        self.pg = dialect == "postgres"

    # ------------------------------------------------------------------ helpers

    def fail(self, node: Node, reason: str) -> NoReturn:
        op = node.op if isinstance(node, Call) else None
        raise RuleNotSqlCompilable(reason, node.path, op)

    def param(self, value: Any, type_: str) -> SqlValue:
        return sql_param(self.dialect, value, type_)

    def materialize(self, node: Node, value: SqlValue) -> SqlValue:
        """A literal as a parameter of its own type (other values as they are)."""
        if not value.is_const or value.sql:
            return value
        natural = _natural_type(value.const)
        if natural in ("array", "object"):
            self.fail(node, f"{describe(value.const)} has no SQL value here")
        return self.param(value.const, natural)

    def field(self, keys: tuple[str, ...] | list[str], node: Node) -> SqlValue:
        name = ".".join(keys)
        if not keys:
            self.fail(node, "reading the whole record has no SQL form")
        column = self.scope.resolve(name)
        if column is None:
            raise UnknownFieldError(name, node.path)
        if column.type not in FIELD_TYPES:
            self.fail(node, f"field {name!r} has type {column.type!r}, which SQL rules do not know")
        expr = column.expr.replace("{", "{{").replace("}", "}}")
        return SqlValue(expr, (), column.type, True, (expr,))

    def resolve_for_call(self, name: str, path: str) -> SqlValue:
        return self.field(tuple(name.split(".")), Const(path, None))

    def coalesce_false(self, cond: SqlValue) -> SqlValue:
        false = "FALSE" if self.pg else "0"
        return SqlValue(f"COALESCE({cond.sql}, {false})", cond.params, "boolean", False, ())

    def two_valued(self, cond: SqlValue) -> SqlValue:
        """A condition that is never NULL (NULL meant false).

        ``null_if`` of a condition lists expressions such that the condition is
        NULL or false whenever one of them is NULL, and not NULL otherwise; so
        ``cond AND e IS NOT NULL ...`` has the same truth and is never NULL.
        """
        if not cond.nullable:
            return cond
        if cond.null_if is None:
            return self.coalesce_false(cond)
        if not cond.null_if:
            return _FALSE
        checks = " AND ".join(f"{expr} IS NOT NULL" for expr in dict.fromkeys(cond.null_if))
        return SqlValue(f"({cond.sql} AND {checks})", cond.params, "boolean", False, ())

    def numeric_view(self, value: SqlValue) -> SqlValue:
        """A numeric expression (booleans as 0/1), NULL read as 0."""
        sql = value.sql
        if value.type == "boolean" and self.pg:
            sql = f"({sql})::int"
        if value.nullable:
            sql = f"COALESCE({sql}, 0)"
        type_ = "integer" if value.type == "boolean" else value.type
        return SqlValue(sql, value.params, type_, False, ())

    # ------------------------------------------------------------------ conditions

    def condition(self, node: Node) -> SqlValue:
        if type(node) is Const:
            return _bool(truthy(node.value))
        if type(node) is ArrayNode:
            return _bool(bool(node.items))
        assert isinstance(node, Call)
        if node.operator is STANDARD_OPERATORS.get(node.op):
            handler = _CONDITIONS.get(node.op)
            if handler is not None:
                return handler(self, node)
        return self.truth(node, self.value(node))

    def truth(self, node: Node, value: SqlValue) -> SqlValue:
        if value.is_const:
            return _bool(truthy(value.const))
        kind = value.type
        if kind == "boolean":
            return value
        if kind in _NUMBERS:
            return SqlValue(f"({value.sql} <> 0)", value.params, "boolean", value.nullable,
                            value.null_if)  # fmt: skip
        if kind == "text":
            return SqlValue(f"({value.sql} <> '')", value.params, "boolean", value.nullable,
                            value.null_if)  # fmt: skip
        if kind in ("date", "datetime"):
            if not value.nullable:
                return _TRUE
            return SqlValue(f"({value.sql} IS NOT NULL)", value.params, "boolean", False, ())
        if kind == "null":
            return _FALSE
        self.fail(node, f"the truthiness of a {kind} value has no SQL form")

    def and_or(self, node: Call, is_and: bool) -> SqlValue:
        parts: list[SqlValue] = []
        for arg in node.args:
            cond = self.condition(arg)
            if cond.is_const:
                if bool(cond.const) is not is_and:
                    return cond
                continue
            parts.append(cond)
        if not node.args:
            return _FALSE
        if not parts:
            return _bool(is_and)
        if len(parts) == 1:
            return parts[0]
        if not is_and:
            # NULL OR TRUE is TRUE: a NULL source does not make an OR false, so each
            # operand is made two-valued (an AND stays false when a source is NULL).
            parts = [self.two_valued(p) for p in parts]
        word = " AND " if is_and else " OR "
        sql = "(" + word.join(p.sql for p in parts) + ")"
        params = tuple(x for p in parts for x in p.params)
        nullable = any(p.nullable for p in parts)
        return SqlValue(sql, params, "boolean", nullable, _join_null_if(*parts) if nullable else ())

    def not_(self, node: Call) -> SqlValue:
        if not node.args:
            return _TRUE
        return self.negate(self.condition(node.args[0]))

    def negate(self, cond: SqlValue) -> SqlValue:
        if cond.is_const:
            return _bool(not cond.const)
        solid = self.two_valued(cond)
        return SqlValue(f"(NOT {solid.sql})", solid.params, "boolean", False, ())

    def not_not(self, node: Call) -> SqlValue:
        if not node.args:
            return _FALSE
        return self.condition(node.args[0])

    def if_(self, node: Call) -> SqlValue:
        args = node.args
        if not args:
            return _FALSE
        if len(args) == 1:
            return self.condition(args[0])
        sql = ["CASE"]
        params: list[Any] = []
        index = 0
        while index + 1 < len(args):
            test = self.condition(args[index])
            then = self.condition(args[index + 1])
            then_sql = self.materialize_bool(then)
            sql.append(f"WHEN {test.sql} THEN {then_sql.sql}")
            params += [*test.params, *then_sql.params]
            index += 2
        otherwise = self.condition(args[index]) if index < len(args) else _FALSE
        other = self.materialize_bool(otherwise)
        sql.append(f"ELSE {other.sql} END")
        params += other.params
        return SqlValue("(" + " ".join(sql) + ")", tuple(params), "boolean", True, None)

    def materialize_bool(self, cond: SqlValue) -> SqlValue:
        if cond.is_const:
            return SqlValue("TRUE" if cond.const else "FALSE", (), "boolean", False, ())
        return cond

    # ------------------------------------------------------------------ comparisons

    def compare(self, node: Call) -> SqlValue:
        operands = [self.value(arg) for arg in node.args]
        pieces = []
        for left, right in itertools.pairwise(operands):
            piece = self.compare2(node, node.op, left, right)
            if piece.is_const:
                if not piece.const:
                    return _FALSE
                continue
            pieces.append(piece)
        if not pieces:
            return _TRUE
        if len(pieces) == 1:
            return pieces[0]
        sql = "(" + " AND ".join(p.sql for p in pieces) + ")"
        params = tuple(x for p in pieces for x in p.params)
        nullable = any(p.nullable for p in pieces)
        return SqlValue(
            sql, params, "boolean", nullable, _join_null_if(*pieces) if nullable else ()
        )

    def python_compare(self, op: str) -> Callable[[Any, Any], bool]:
        return {
            "<": self.sem.lt,
            "<=": self.sem.le,
            ">": self.sem.gt,
            ">=": self.sem.ge,
            "==": self.sem.eq,
            "===": self.sem.seq,
        }[op]

    def compare2(self, node: Call, op: str, a: SqlValue, b: SqlValue) -> SqlValue:
        if op in ("!=", "!=="):
            return self.negate(self.compare2(node, "==" if op == "!=" else "===", a, b))
        py = self.python_compare(op)
        if a.is_const and b.is_const:
            try:
                return _bool(py(a.const, b.const))
            except RuleError as exc:
                self.fail(node, f"the comparison always fails in Python ({exc.reason})")
        if a.is_const or b.is_const:
            if a.is_const:
                return self.compare_const(node, _MIRROR[op], b, a.const)
            return self.compare_const(node, op, a, b.const)
        return self.compare_columns(node, op, a, b)

    def null_result(self, node: Call, op: str, constant: Any) -> bool:
        try:
            return self.python_compare(op)(None, constant)
        except RuleError as exc:  # pragma: no cover - null never raises against a scalar
            self.fail(node, f"comparing null with {describe(constant)} fails ({exc.reason})")

    def compare_const(self, node: Call, op: str, x: SqlValue, k: Any) -> SqlValue:
        if x.type == "null":
            return _bool(self.python_compare(op)(None, k))
        if isinstance(k, (list, tuple, dict)):
            self.fail(node, f"comparing with {describe(k)} has no SQL form")
        if op == "===" and k is None:
            if not x.nullable:
                return _FALSE
            return SqlValue(f"({x.sql} IS NULL)", x.params, "boolean", False, ())
        on_null = self.null_result(node, op, k)
        target = self.coerce_constant(node, op, x, k)
        if target is None:  # no non-null value of x can match
            return self.null_test(x) if on_null else _FALSE
        left, right, sql_op = self.operands_for(op, x, target)
        cond = SqlValue(
            f"({left.sql} {sql_op} {right.sql})",
            left.params + right.params,
            "boolean",
            x.nullable,
            x.null_if if x.nullable else (),
        )
        if on_null and x.nullable:
            is_null = self.null_test(x)
            return SqlValue(
                f"({is_null.sql} OR {cond.sql})", is_null.params + cond.params, "boolean", False, ()
            )
        return cond

    def null_test(self, x: SqlValue) -> SqlValue:
        if not x.nullable:
            return _FALSE
        return SqlValue(f"({x.sql} IS NULL)", x.params, "boolean", False, ())

    def operands_for(self, op: str, x: SqlValue, k: SqlValue) -> tuple[SqlValue, SqlValue, str]:
        sql_op = _SQL_OPS[op]
        if x.type == "boolean" and k.type != "boolean":
            x = self.numeric_view(SqlValue(x.sql, x.params, x.type, False, ()))
        if x.type == "text":
            if self.pg and op not in ("==", "==="):
                x = SqlValue(f'({x.sql} COLLATE "C")', x.params, x.type, x.nullable, x.null_if)
            elif not self.pg:
                x = SqlValue(f"({x.sql} COLLATE BINARY)", x.params, x.type, x.nullable, x.null_if)
        return x, k, sql_op

    def coerce_constant(self, node: Call, op: str, x: SqlValue, k: Any) -> SqlValue | None:
        """The constant as a parameter in x's domain; None when no non-null x can match."""
        kind = x.type
        strict = op == "==="
        if kind == "json":
            self.fail(node, "comparing a json field has no SQL form")
        if kind in _NUMBERS or kind == "boolean":
            if strict:
                if kind == "boolean":
                    return self.param(k, "boolean") if isinstance(k, bool) else None
                if isinstance(k, bool) or not isinstance(k, (int, float, Decimal)):
                    return None
                return self.number_param(k, kind)
            if k is None:
                return self.number_param(0, kind)
            if isinstance(k, bool):
                return self.number_param(int(k), kind)
            if isinstance(k, (int, float, Decimal)):
                return self.number_param(k, kind)
            if isinstance(k, str):
                number = parse_js_number(k)
                if number is None:
                    self.fail(node, f"{describe(k)} is not a number, so the comparison raises NaN")
                return self.number_param(number, kind)
            self.fail(node, f"comparing a {kind} field with {describe(k)} raises NaN")
        if kind == "text":
            if isinstance(k, str):
                return self.param(k, "text")
            if strict or k is None:
                return None
            self.fail(node, f"comparing a text field with {describe(k)} needs number coercion")
        if kind in ("date", "datetime"):
            if k is None:
                return None
            moment: date | datetime | None = None
            if isinstance(k, (date, datetime)):
                moment = k
            elif isinstance(k, str):
                moment = self.sem.parse_temporal(k)
            if moment is None:
                if strict:
                    return None
                self.fail(node, f"{describe(k)} is not a date, so the comparison raises NaN")
            if kind == "date":
                if type(moment) is not date:
                    self.fail(node, "comparing a date field with a date-time has no SQL form")
                return self.param(moment, "date")
            return self.param(self.sem.to_datetime(moment), "datetime")
        self.fail(node, f"comparing a {kind} value has no SQL form")

    def number_param(self, number: Any, kind: str) -> SqlValue:
        if kind == "decimal" or isinstance(number, Decimal):
            return self.param(number, "decimal")
        if isinstance(number, float) and not number.is_integer():
            return self.param(number, "decimal" if self.pg else "float")
        if isinstance(number, float):
            return (
                self.param(int(number), "integer")
                if abs(number) < 2**63
                else self.param(number, "float")
            )
        return self.param(number, "integer")

    def compare_columns(self, node: Call, op: str, a: SqlValue, b: SqlValue) -> SqlValue:
        ta, tb = a.type, b.type
        numeric_a = ta in NUMERIC_TYPES
        numeric_b = tb in NUMERIC_TYPES
        if ta == "json" or tb == "json":
            self.fail(node, "comparing a json field has no SQL form")
        if op == "===":
            same = (ta == tb) or (ta in _NUMBERS and tb in _NUMBERS)
            both_null = self.both_null(a, b)
            if not same:
                return both_null
            return self.null_case(a, b, both_null, f"({a.sql} = {b.sql})", a.params + b.params)
        if numeric_a and numeric_b:
            left, right = self.numeric_view(a), self.numeric_view(b)
            sql = f"({left.sql} {_SQL_OPS[op]} {right.sql})"
            return SqlValue(sql, left.params + right.params, "boolean", False, ())
        if ta == tb and ta in _TEXTUAL:
            both = self.python_compare(op)(None, None)
            left_sql = a.sql
            if ta == "text":
                if self.pg and op != "==":
                    left_sql = f'({a.sql} COLLATE "C")'
                elif not self.pg:
                    left_sql = f"({a.sql} COLLATE BINARY)"
            compare_sql = f"({left_sql} {_SQL_OPS[op]} {b.sql})"
            on_nulls = self.both_null(a, b) if both else _FALSE
            return self.null_case(a, b, on_nulls, compare_sql, a.params + b.params)
        self.fail(node, f"comparing a {ta} value with a {tb} value has no SQL form")

    def both_null(self, a: SqlValue, b: SqlValue) -> SqlValue:
        if not a.nullable or not b.nullable:
            return _FALSE
        return SqlValue(
            f"({a.sql} IS NULL AND {b.sql} IS NULL)", a.params + b.params, "boolean", False, ()
        )

    def null_case(
        self, a: SqlValue, b: SqlValue, on_null: SqlValue, sql: str, params: tuple[Any, ...]
    ) -> SqlValue:
        if not a.nullable and not b.nullable:
            return SqlValue(sql, params, "boolean", False, ())
        tests = [v for v in (a, b) if v.nullable]
        when = " OR ".join(f"{v.sql} IS NULL" for v in tests)
        when_params = tuple(x for v in tests for x in v.params)
        null_sql = self.materialize_bool(on_null)
        return SqlValue(
            f"(CASE WHEN {when} THEN {null_sql.sql} ELSE {sql} END)",
            when_params + null_sql.params + params,
            "boolean",
            False,
            (),
        )

    def in_(self, node: Call) -> SqlValue:
        needle, haystack = (self.value(arg) for arg in node.args)
        if needle.is_const and haystack.is_const:
            return _bool(self.sem.contains(needle.const, haystack.const))
        if haystack.is_const:
            items = haystack.const
            if isinstance(items, (list, tuple)):
                return self.in_list(node, needle, list(items))
            if isinstance(items, str):
                return self.in_text(node, needle, items)
            if items is None:
                return _FALSE
            self.fail(node, f"'in' needs an array or text, not {describe(items)}")
        if needle.is_const and haystack.type == "json":
            return self.in_json(node, needle.const, haystack)
        if needle.is_const and haystack.type == "text":
            if needle.const is None:
                return _FALSE
            text = self.param(js_str(needle.const), "text")
            function = "strpos" if self.pg else "instr"
            return SqlValue(
                f"({function}({haystack.sql}, {text.sql}) > 0)",
                haystack.params + text.params,
                "boolean",
                haystack.nullable,
                haystack.null_if if haystack.nullable else (),
            )
        self.fail(node, "'in' compiles to SQL only with a constant array or text")

    def in_list(self, node: Call, needle: SqlValue, items: list[Any]) -> SqlValue:
        if needle.type == "json":
            self.fail(node, "'in' on a json field has no SQL form")
        has_null = any(item is None for item in items)
        members: list[SqlValue] = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, (list, tuple, dict)):
                continue
            param = self.coerce_constant(node, "===", needle, item)
            if param is not None and not any(
                strict_equals(param.const, m.const, self.sem) for m in members
            ):
                members.append(param)
        parts: list[str] = []
        params: list[Any] = []
        if members:
            subject, _, _ = self.operands_for("==", needle, members[0])
            placeholders = ", ".join(m.sql for m in members)
            parts.append(f"{subject.sql} IN ({placeholders})")
            params += [*subject.params, *(x for m in members for x in m.params)]
        if has_null and needle.nullable:
            parts.append(f"{needle.sql} IS NULL")
            params += needle.params
        if not parts:
            return _FALSE
        if len(parts) == 1 and members:
            return SqlValue(
                f"({parts[0]})",
                tuple(params),
                "boolean",
                needle.nullable,
                needle.null_if if needle.nullable else (),
            )
        return SqlValue("(" + " OR ".join(parts) + ")", tuple(params), "boolean", False, ())

    def in_json(self, node: Call, needle: Any, haystack: SqlValue) -> SqlValue:
        """A constant ``in`` a JSON field: a member (``===``) of an array, a substring of
        a string, false for anything else (multi-links, tags, JSON fields)."""
        if isinstance(needle, (list, tuple, dict)):
            self.fail(node, "'in' with an array or object inside a json field has no SQL form")
        h, hp = haystack.sql, haystack.params
        kinds: tuple[str, ...]
        if isinstance(needle, bool):
            kinds, value = (("true",) if needle else ("false",)), None
        elif needle is None:
            kinds, value = ("null",), None
        elif isinstance(needle, str):
            kinds, value = ("text",), self.param(needle, "text")
        else:  # a number: equal to any JSON number of the same value
            kinds, value = ("integer", "real"), self.number_param(needle, _natural_type(needle))
        if self.pg:
            pg_kind = {"true": "boolean", "false": "boolean", "null": "null", "text": "string"}
            item_type = pg_kind.get(kinds[0], "number")
            test = f"jsonb_typeof(_je.v) = '{item_type}'"
            if isinstance(needle, bool):
                test += f" AND _je.v = '{'true' if needle else 'false'}'::jsonb"
            elif value is not None:
                cast = "" if isinstance(needle, str) else "::numeric"
                test += f" AND (_je.v #>> '{{{{}}}}'){cast} = {value.sql}"
            member = f"EXISTS (SELECT 1 FROM jsonb_array_elements({h}) AS _je(v) WHERE {test})"
            text_test = f"strpos({h} #>> '{{{{}}}}', {{}}) > 0"
            sql = (
                f"(CASE jsonb_typeof({h}) WHEN 'array' THEN {member} "
                f"WHEN 'string' THEN {text_test} ELSE FALSE END)"
            )
        else:
            test = "_je.type IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"
            if value is not None:
                test += f" AND _je.value = {value.sql}"
            member = f"EXISTS (SELECT 1 FROM json_each({h}) AS _je WHERE {test})"
            text_test = f"instr(json_extract({h}, '$'), {{}}) > 0"
            sql = (
                f"(CASE json_type({h}) WHEN 'array' THEN {member} "
                f"WHEN 'text' THEN {text_test} ELSE 0 END)"
            )
        params = (
            hp
            + hp
            + (value.params if value is not None else ())
            + hp
            + (js_str(needle) if needle is not None else "\x00",)
        )
        if needle is None:  # null is never inside text
            sql = sql.replace(text_test, "FALSE" if self.pg else "0")
            params = hp + hp
        return SqlValue(sql, params, "boolean", False, ())

    def in_text(self, node: Call, needle: SqlValue, text: str) -> SqlValue:
        if needle.type == "text":
            as_text = needle
        elif needle.type in ("integer", "link"):
            as_text = SqlValue(
                f"({needle.sql})::text" if self.pg else f"CAST({needle.sql} AS TEXT)",
                needle.params,
                "text",
                needle.nullable,
                needle.null_if,
            )
        elif needle.type == "null":
            return _FALSE
        else:
            self.fail(node, f"'in' with a {needle.type} value inside text has no SQL form")
        haystack = self.param(text, "text")
        function = "strpos" if self.pg else "instr"
        return SqlValue(
            f"({function}({haystack.sql}, {as_text.sql}) > 0)",
            haystack.params + as_text.params,
            "boolean",
            needle.nullable,
            needle.null_if if needle.nullable else (),
        )

    # ------------------------------------------------------------------ missing

    def static_keys(self, node: Call) -> list[Any]:
        if node.spread is not None:
            if type(node.spread) is Const:
                value = node.spread.value
                return list(value) if isinstance(value, list) else [value]
            self.fail(node, f"{node.op!r} needs constant keys to compile to SQL")
        values = []
        for arg in node.args:
            if type(arg) is not Const:
                self.fail(node, f"{node.op!r} needs constant keys to compile to SQL")
            values.append(arg.value)
        return values

    def absent(self, node: Call, key: Any) -> SqlValue:
        column = self.field(split_var_path(key), node)
        if column.type == "text":
            return SqlValue(
                f"({column.sql} IS NULL OR {column.sql} = '')",
                column.params * 2,
                "boolean",
                False,
                (),
            )
        return SqlValue(f"({column.sql} IS NULL)", column.params, "boolean", False, ())

    def missing(self, node: Call) -> SqlValue:
        values = self.static_keys(node)
        keys = values[0] if values and isinstance(values[0], list) else values
        if not keys:
            return _FALSE
        parts = [self.absent(node, key) for key in keys]
        return SqlValue(
            "(" + " OR ".join(p.sql for p in parts) + ")",
            tuple(x for p in parts for x in p.params),
            "boolean",
            False,
            (),
        )

    def missing_some(self, node: Call) -> SqlValue:
        values = self.static_keys(node)
        if len(values) != 2 or not isinstance(values[1], list):
            self.fail(node, "missing_some needs [count, [keys...]]")
        need = to_number(values[0])
        keys = values[1]
        # Truthy when the missing list is returned and not empty: fewer than
        # min(need, len(keys)) keys are present.
        limit = min(need, len(keys))
        if not keys or limit <= 0:
            return _FALSE
        parts = [self.absent(node, key) for key in keys]
        counted = " + ".join(f"(CASE WHEN {p.sql} THEN 0 ELSE 1 END)" for p in parts)
        threshold = self.number_param(limit, "integer")
        return SqlValue(
            f"(({counted}) < {threshold.sql})",
            tuple(x for p in parts for x in p.params) + threshold.params,
            "boolean",
            False,
            (),
        )

    # ------------------------------------------------------------------ values

    def value(self, node: Node) -> SqlValue:
        if type(node) is Const:
            return _const(node.value)
        if type(node) is ArrayNode:
            self.fail(node, "an array of expressions has no SQL value")
        assert isinstance(node, Call)
        op = node.op
        if node.operator is STANDARD_OPERATORS.get(op):
            handler = _VALUES.get(op)
            if handler is not None:
                return handler(self, node)
            if op in _CONDITIONS:
                return self.two_valued(self.condition(node))
        if node.operator is KERNEL_OPERATORS.get(op) and op in ("now", "today"):
            moment = self.registry.now()
            return _const(moment if op == "now" else moment.date())
        return self.function(node)

    def var(self, node: Call) -> SqlValue:
        args = node.args
        path_node = args[0] if args else None
        if path_node is not None and type(path_node) is not Const:
            self.fail(node, "a computed variable path has no SQL form")
        raw = path_node.value if isinstance(path_node, Const) else None
        column = self.field(split_var_path(raw), node)
        if len(args) < 2:
            return column
        default = self.value(args[1])
        if not default.is_const:
            self.fail(node, "a variable default must be a constant to compile to SQL")
        if default.const is None:
            return column
        return self.coalesce(node, [column, default])

    def val(self, node: Call) -> SqlValue:
        values = self.static_keys(node)
        if values and isinstance(values[0], list):
            values = values[1:]  # there is only the record scope in SQL
        keys = []
        for key in values:
            if isinstance(key, str):
                keys.append(key)
            elif isinstance(key, (int, float)) and not isinstance(key, bool):
                keys.append(js_str(key))
            else:
                self.fail(node, f"{describe(key)} is not a field name")
        return self.field(keys, node)

    def coalesce(self, node: Call, values: list[SqlValue]) -> SqlValue:
        kinds = {v.type for v in values if not v.is_const and v.type != "null"}
        if len(kinds) > 1 and not kinds <= NUMERIC_TYPES - {"boolean"}:
            self.fail(node, f"mixing {sorted(kinds)} values has no SQL form")
        kind = kinds.pop() if len(kinds) == 1 else None
        parts: list[SqlValue] = []
        for v in values:
            if v.is_const:
                if v.const is None:
                    continue
                parts.append(self.convert_const(node, kind, v.const))
                break
            parts.append(v)
        if not parts:
            return _const(None)
        if len(parts) == 1:
            return parts[0]
        nullable = parts[-1].nullable
        result_kind = kind or parts[0].type
        return SqlValue(
            "COALESCE(" + ", ".join(p.sql for p in parts) + ")",
            tuple(x for p in parts for x in p.params),
            result_kind,
            nullable,
            None if nullable else (),
        )

    def convert_const(self, node: Call, kind: str | None, value: Any) -> SqlValue:
        """A constant as a parameter of the type ``kind`` it stands in for."""
        natural = _natural_type(value)
        if kind is None or natural == kind:
            return self.materialize(node, _const(value))
        if kind in NUMERIC_TYPES and natural in ("integer", "float", "decimal"):
            return self.number_param(value, kind)
        if kind in ("date", "datetime") and natural in ("date", "datetime", "text"):
            moment = self.sem.parse_temporal(value) if isinstance(value, str) else value
            if kind == "date" and type(moment) is date:
                return self.param(moment, "date")
            if kind == "datetime" and moment is not None:
                return self.param(self.sem.to_datetime(moment), "datetime")
        self.fail(node, f"{describe(value)} cannot stand in for a {kind} value")

    def coalesce_op(self, node: Call) -> SqlValue:
        return self.coalesce(node, [self.value(arg) for arg in node.args])

    def if_value(self, node: Call) -> SqlValue:
        args = node.args
        if not args:
            return _const(None)
        if len(args) == 1:
            return self.value(args[0])
        tests: list[SqlValue] = []
        branches: list[SqlValue] = []
        index = 0
        while index + 1 < len(args):
            tests.append(self.condition(args[index]))
            branches.append(self.value(args[index + 1]))
            index += 2
        otherwise = self.value(args[index]) if index < len(args) else _const(None)
        branches.append(otherwise)
        kinds = {b.type for b in branches if not b.is_const}
        consts = [b.const for b in branches if b.is_const and b.const is not None]
        if not kinds:
            const_kinds = {_natural_type(c) for c in consts}
            if const_kinds <= {"integer", "float", "decimal"} and const_kinds:
                kind = (
                    "decimal"
                    if "decimal" in const_kinds
                    else ("float" if "float" in const_kinds else "integer")
                )
            elif len(const_kinds) == 1:
                kind = const_kinds.pop()
            elif not const_kinds:
                return _const(None)
            else:
                self.fail(node, "the branches have different types")
        elif len(kinds) == 1:
            kind = kinds.pop()
        elif kinds <= _NUMBERS:
            kind = "decimal" if "decimal" in kinds else "float"
        else:
            self.fail(node, f"the branches have different types ({', '.join(sorted(kinds))})")
        rendered = [self.convert_const(node, kind, b.const) if b.is_const else b for b in branches]
        sql = ["CASE"]
        params: list[Any] = []
        for test, branch in zip(tests, rendered, strict=False):
            solid = self.materialize_bool(test)
            sql.append(f"WHEN {solid.sql} THEN {branch.sql}")
            params += [*solid.params, *branch.params]
        sql.append(f"ELSE {rendered[-1].sql} END")
        params += rendered[-1].params
        nullable = any(b.nullable for b in rendered)
        return SqlValue("(" + " ".join(sql) + ")", tuple(params), kind, nullable, None)

    def number_operand(self, node: Call, value: SqlValue) -> SqlValue:
        if value.is_const:
            try:
                number = to_number(value.const)
            except RuleError as exc:
                self.fail(node, f"{exc.reason}, so the arithmetic raises NaN")
            type_ = _natural_type(number)
            return self.param(number, type_)
        if value.type not in NUMERIC_TYPES:
            self.fail(node, f"arithmetic on a {value.type} value has no SQL form")
        return self.numeric_view(value)

    def arithmetic(self, node: Call) -> SqlValue:
        op = node.op
        if node.spread is not None:
            self.fail(node, "arithmetic over a computed array has no SQL form")
        values = [self.value(arg) for arg in node.args]
        if all(v.is_const for v in values):
            func = node.operator.func
            assert func is not None
            try:
                return _const(func(*[v.const for v in values]))
            except RuleError as exc:
                self.fail(node, f"the arithmetic always fails ({exc.reason})")
        operands = [self.number_operand(node, v) for v in values]
        kinds = {o.type for o in operands}
        kind = "decimal" if "decimal" in kinds else "float" if "float" in kinds else "integer"
        if kind == "decimal" and self.pg:
            operands = [self.as_decimal(o) for o in operands]
        if op in ("+", "*"):
            if len(operands) == 1:
                return operands[0]
            return self.join_numbers(f" {op} ", operands, kind)
        if op == "-":
            if len(operands) == 1:
                return SqlValue(f"(- {operands[0].sql})", operands[0].params, kind, False, ())
            return self.join_numbers(" - ", operands, kind)
        divisors = values[1:]
        if not divisors:
            self.fail(node, f"{op!r} with one variable argument has no SQL form")
        for divisor in divisors:
            try:
                nonzero = divisor.is_const and bool(to_number(divisor.const))
            except RuleError:
                nonzero = False
            if not nonzero:
                self.fail(node, f"{op!r} compiles to SQL only by a non-zero number constant")
        if op == "/":
            return self.divide(operands, kind)
        return self.modulo(node, operands, kind)

    def as_decimal(self, value: SqlValue) -> SqlValue:
        if value.type == "decimal":
            return value
        return SqlValue(f"({value.sql})::numeric", value.params, "decimal", False, ())

    def join_numbers(self, word: str, operands: list[SqlValue], kind: str) -> SqlValue:
        sql = "(" + word.join(o.sql for o in operands) + ")"
        return SqlValue(sql, tuple(x for o in operands for x in o.params), kind, False, ())

    def divide(self, operands: list[SqlValue], kind: str) -> SqlValue:
        result_kind = "decimal" if kind == "decimal" else "float"
        first = operands[0]
        if result_kind == "decimal" and self.pg:
            sql = f"({first.sql})"
        elif self.pg:
            sql = f"({first.sql})::float8"
        else:
            sql = f"CAST({first.sql} AS REAL)"
        params = first.params
        for divisor in operands[1:]:
            sql = f"({sql} / {divisor.sql})"
            params += divisor.params
        return SqlValue(sql, params, result_kind, False, ())

    def modulo(self, node: Call, operands: list[SqlValue], kind: str) -> SqlValue:
        if kind != "integer" and not self.pg:
            self.fail(node, "'%' compiles to SQLite only for whole numbers")
        if kind == "float":
            self.fail(node, "'%' with fractions has no exact SQL form")
        sql, params = operands[0].sql, operands[0].params
        for divisor in operands[1:]:
            sql = f"mod({sql}, {divisor.sql})" if kind == "decimal" else f"({sql} % {divisor.sql})"
            params += divisor.params
        return SqlValue(sql, params, kind, False, ())

    def extreme(self, node: Call) -> SqlValue:
        if node.spread is not None:
            self.fail(node, f"{node.op!r} over a computed array has no SQL form")
        values = [self.value(arg) for arg in node.args]
        if all(v.is_const for v in values):
            func = node.operator.func
            assert func is not None
            try:
                return _const(func(*[v.const for v in values]))
            except RuleError as exc:
                self.fail(node, f"{node.op!r} always fails ({exc.reason})")
        operands = [self.number_operand(node, v) for v in values]
        if len(operands) == 1:
            return operands[0]
        kinds = {o.type for o in operands}
        kind = "decimal" if "decimal" in kinds else "float" if "float" in kinds else "integer"
        if kind == "decimal" and self.pg:
            operands = [self.as_decimal(o) for o in operands]
        function = ("GREATEST" if node.op == "max" else "LEAST") if self.pg else node.op
        sql = f"{function}(" + ", ".join(o.sql for o in operands) + ")"
        return SqlValue(sql, tuple(x for o in operands for x in o.params), kind, False, ())

    def text_piece(self, node: Call, value: SqlValue) -> SqlValue:
        if value.is_const:
            if isinstance(value.const, (Decimal, float, list, dict)):
                self.fail(node, f"{describe(value.const)} has no exact SQL text form")
            return self.param(js_str(value.const), "text")
        kind = value.type
        if kind == "text" or (kind == "date" and not self.pg):
            sql = value.sql
        elif kind in ("integer", "link"):
            sql = f"({value.sql})::text" if self.pg else f"CAST({value.sql} AS TEXT)"
        elif kind == "date":
            sql = f"to_char({value.sql}, 'YYYY-MM-DD')"
        elif kind == "boolean":
            return SqlValue(
                f"(CASE WHEN {value.sql} IS NULL THEN '' WHEN {value.sql} THEN 'true' "
                "ELSE 'false' END)",
                value.params * 2,
                "text",
                False,
                (),
            )
        else:
            self.fail(node, f"a {kind} value has no exact SQL text form")
        if value.nullable:
            sql = f"COALESCE({sql}, '')"
        return SqlValue(sql, value.params, "text", False, ())

    def cat(self, node: Call) -> SqlValue:
        if node.spread is not None:
            self.fail(node, "'cat' over a computed array has no SQL form")
        values = [self.value(arg) for arg in node.args]
        if all(v.is_const for v in values):
            return _const(self.registry.runtime.cat(*[v.const for v in values]))
        pieces = [self.text_piece(node, v) for v in values]
        if len(pieces) == 1:
            return pieces[0]
        return SqlValue(
            "(" + " || ".join(p.sql for p in pieces) + ")",
            tuple(x for p in pieces for x in p.params),
            "text",
            False,
            (),
        )

    def substr(self, node: Call) -> SqlValue:
        values = [self.value(arg) for arg in node.args]
        if all(v.is_const for v in values):
            func = node.operator.func
            assert func is not None
            return _const(func(*[v.const for v in values]))
        text = self.text_piece(node, values[0])
        numbers = []
        for v in values[1:]:
            if not v.is_const:
                self.fail(node, "'substr' needs constant positions to compile to SQL")
            try:
                numbers.append(int(to_number(v.const)) if v.const is not None else None)
            except RuleError as exc:
                self.fail(node, f"{exc.reason}, so 'substr' raises NaN")
        start = numbers[0] if numbers and numbers[0] is not None else 0
        count = numbers[1] if len(numbers) > 1 else None
        size = "char_length" if self.pg else "length"
        bigger = "GREATEST" if self.pg else "max"
        params: tuple[Any, ...] = ()
        if start >= 0:
            begin = str(start)
        else:
            begin = f"{bigger}({size}({text.sql}) - {-start}, 0)"
            params += text.params
        if count is None:
            return SqlValue(
                f"substr({text.sql}, {begin} + 1)", text.params + params, "text", False, ()
            )
        if count >= 0:
            return SqlValue(
                f"substr({text.sql}, {begin} + 1, {count})", text.params + params, "text", False, ()
            )
        end = f"{bigger}({size}({text.sql}) - {-count}, 0)"
        sql = f"substr({text.sql}, {begin} + 1, {bigger}({end} - {begin}, 0))"
        all_params = text.params + params + text.params + params
        return SqlValue(sql, all_params, "text", False, ())

    def function(self, node: Call) -> SqlValue:
        operator = node.operator
        if node.spread is not None:
            self.fail(node, f"{node.op!r} over a computed array has no SQL form")
        values = [self.value(arg) for arg in node.args]
        func = operator.func
        foldable = operator.pure and (
            not operator.needs_context or node.op in _FOLDABLE_CONTEXT_OPS
        )
        if func is not None and foldable and all(v.is_const for v in values):
            args = [v.const for v in values]
            if operator.needs_context and node.operator is KERNEL_OPERATORS.get(node.op):
                args = [OperatorContext(None, self.registry), *args]
            try:
                return _const(func(*args))
            except RuleLimitExceeded:
                raise
            except RuleError as exc:
                self.fail(node, f"{node.op!r} always fails ({exc.reason})")
        if operator.sql is None:
            self.fail(node, f"operator {node.op!r} has no SQL form")
        call_args = [self.materialize(node, v) for v in values]
        call = SqlCall(node.op, node.path, self.dialect, call_args, self.registry,
                       self.resolve_for_call)  # fmt: skip
        result = operator.sql(call)
        if not isinstance(result, SqlValue):
            raise TypeError(f"the SQL form of {node.op!r} returned {type(result).__name__}")
        return result


_CONDITIONS: dict[str, Callable[[_SqlCompiler, Call], SqlValue]] = {
    "and": lambda c, n: c.and_or(n, True),
    "or": lambda c, n: c.and_or(n, False),
    "!": _SqlCompiler.not_,
    "!!": _SqlCompiler.not_not,
    "if": _SqlCompiler.if_,
    "?:": _SqlCompiler.if_,
    "in": _SqlCompiler.in_,
    "missing": _SqlCompiler.missing,
    "missing_some": _SqlCompiler.missing_some,
    **{op: _SqlCompiler.compare for op in ("==", "!=", "===", "!==", "<", "<=", ">", ">=")},
}

_VALUES: dict[str, Callable[[_SqlCompiler, Call], SqlValue]] = {
    "var": _SqlCompiler.var,
    "val": _SqlCompiler.val,
    "if": _SqlCompiler.if_value,
    "?:": _SqlCompiler.if_value,
    "??": _SqlCompiler.coalesce_op,
    "+": _SqlCompiler.arithmetic,
    "-": _SqlCompiler.arithmetic,
    "*": _SqlCompiler.arithmetic,
    "/": _SqlCompiler.arithmetic,
    "%": _SqlCompiler.arithmetic,
    "max": _SqlCompiler.extreme,
    "min": _SqlCompiler.extreme,
    "cat": _SqlCompiler.cat,
    "substr": _SqlCompiler.substr,
}


def compile_sql_tree(
    tree: Node, scope: SqlScope, dialect: Dialect, registry: OperatorRegistry
) -> SqlFragment:
    """Compile a parsed rule into a two-valued SQL condition."""
    compiler = _SqlCompiler(scope, dialect, registry)
    if (
        isinstance(tree, Call)
        and tree.operator.kind == "intrinsic"
        and tree.op not in (_CONDITIONS.keys() | _VALUES.keys())
    ):
        compiler.fail(tree, f"operator {tree.op!r} has no SQL form")
    cond = compiler.two_valued(compiler.condition(tree))
    if cond.is_const:
        return SqlFragment("TRUE" if cond.const else "FALSE", ())
    return SqlFragment(cond.sql, cond.params)
