"""The operator registry and how plugins add operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jimu import rules
from jimu.rules import (
    InvalidArgumentsError,
    Limits,
    Operator,
    OperatorContext,
    OperatorRegistry,
    SqlCall,
    SqlValue,
    UnknownOperatorError,
    default_registry,
)
from jimu.rules.kernel import kernel_operators
from jimu.rules.registry import shared_default_registry
from jimu.rules.stdlib import standard_operators
from tests.rules.tables import CustomerScope


def _double(value: Any) -> Any:
    return rules.apply({"*": [{"var": ""}, 2]}, value)


def _double_sql(call: SqlCall) -> SqlValue:
    arg = call.args[0]
    if arg.type not in ("integer", "decimal"):
        call.fail("needs a number")
    return SqlValue(f"({arg.sql} * 2)", arg.params, arg.type, arg.nullable, arg.null_if)


DOUBLE = Operator(
    "double", _double, sql=_double_sql, min_args=1, max_args=1, returns="number", doc="x * 2"
)


def plugin_operators() -> list[Operator]:
    """What a plugin's ``jimu_rule_operators`` hook returns."""
    return [DOUBLE, Operator("greeting", lambda name: f"你好, {name}", max_args=1)]


def test_default_registry_has_standard_and_kernel_operators() -> None:
    registry = default_registry()
    names = set(registry.names())
    assert {op.name for op in standard_operators()} <= names
    assert {op.name for op in kernel_operators()} <= names
    assert {"var", "val", "if", "==", "map", "try", "??", "exists"} <= names
    assert {"today", "add_days", "lower", "regex_match", "has_tag"} <= names
    assert len(registry) == len(names)
    assert str(registry.timezone) == "Asia/Shanghai"


def test_each_call_gives_an_independent_registry() -> None:
    first, second = default_registry(), default_registry()
    first.add(DOUBLE)
    assert "double" in first
    assert "double" not in second


def test_plugin_operators_extend_a_copy() -> None:
    registry = default_registry()
    extended = registry.copy()
    extended.extend(plugin_operators())
    assert extended.apply({"double": [{"var": "n"}]}, {"n": 21}) == 42
    assert extended.apply({"greeting": "小明"}) == "你好, 小明"
    with pytest.raises(UnknownOperatorError):
        registry.compile({"double": [1]})


def test_plugin_operator_compiles_to_sql_too() -> None:
    registry = default_registry()
    registry.add(DOUBLE)
    scope = CustomerScope()
    fragment = registry.compile_sql({">": [{"double": {"var": "age"}}, 60]}, scope, "sqlite")
    assert fragment.sql == '((("customer"."age" * 2) > {}) AND "customer"."age" IS NOT NULL)'
    assert fragment.params == (60,)
    with pytest.raises(rules.RuleNotSqlCompilable, match="needs a number") as raised:
        registry.compile_sql({"double": {"var": "name"}}, scope, "sqlite")
    assert raised.value.operator == "double"


def test_adding_a_taken_name_is_an_error_unless_replacing() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.add(Operator("lower", str.lower))
    registry.add(Operator("lower", lambda text: "replaced"), replace=True)
    assert registry.apply({"lower": "ABC"}) == "replaced"


def test_adding_an_operator_drops_compiled_rules() -> None:
    registry = default_registry()
    with pytest.raises(UnknownOperatorError):
        registry.compile({"double": 1})
    registry.add(DOUBLE)
    assert registry.apply({"double": 4}) == 8
    registry.remove("double")
    with pytest.raises(UnknownOperatorError):
        registry.compile({"double": 4})


def test_the_shared_default_registry_is_frozen() -> None:
    shared = shared_default_registry()
    with pytest.raises(RuntimeError, match="frozen"):
        shared.add(DOUBLE)
    assert rules.compile({"var": "a"}).registry is shared


def test_operator_definitions_are_validated() -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        Operator("", len)
    with pytest.raises(ValueError, match="Python implementation"):
        Operator("nothing")
    with pytest.raises(ValueError, match="impossible argument count"):
        Operator("bad", len, min_args=2, max_args=1)
    with pytest.raises(ValueError, match="returns must be one of"):
        Operator("bad", len, returns="colour")
    with pytest.raises(TypeError):
        default_registry().add("not an operator")  # type: ignore[arg-type]


def test_arity_is_checked_when_compiling() -> None:
    registry = default_registry()
    registry.add(DOUBLE)
    with pytest.raises(InvalidArgumentsError, match="'double' takes 1 argument, not 2"):
        registry.compile({"double": [1, 2]})


def test_context_operators_see_the_data_and_the_clock() -> None:
    def since_signup(ctx: OperatorContext) -> int:
        signed_up = ctx.registry.semantics.to_date(ctx.data["signed_up"])
        return (ctx.today() - signed_up).days

    registry = default_registry(clock=lambda: datetime(2024, 1, 10, 20, 0, tzinfo=UTC))
    registry.add(Operator("days_since_signup", since_signup, needs_context=True, max_args=0))
    # 20:00 UTC on the 10th is already the 11th in Shanghai.
    assert registry.apply({"days_since_signup": []}, {"signed_up": "2024-01-01"}) == 10


def test_spreading_operators_take_an_array_expression() -> None:
    registry = default_registry()
    registry.add(Operator("total", lambda *xs: sum(xs), args="spread"))
    assert registry.apply({"total": {"var": "xs"}}, {"xs": [1, 2, 3]}) == 6
    assert registry.apply({"total": [1, 2]}) == 3


def test_clock_timezone_and_limits_are_configurable() -> None:
    fixed = datetime(2024, 12, 31, 20, 0, tzinfo=UTC)
    shanghai = OperatorRegistry(kernel_operators(), clock=lambda: fixed)
    assert shanghai.today().isoformat() == "2025-01-01"
    utc = shanghai.copy(timezone="UTC")
    assert utc.today().isoformat() == "2024-12-31"
    assert utc.timezone == ZoneInfo("UTC")
    naive = shanghai.copy(clock=lambda: datetime(2024, 6, 1, 23, 30))
    assert naive.now().isoformat() == "2024-06-01T23:30:00+08:00"
    tight = shanghai.copy(limits=Limits(max_nodes=3))
    assert tight.limits.max_nodes == 3
    with pytest.raises(rules.RuleLimitExceeded):
        tight.compile({"lower": [{"lower": ["x"]}]})


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        Limits(max_steps=0)
    with pytest.raises(ValueError, match="max_depth"):
        Limits(max_depth=1000)
