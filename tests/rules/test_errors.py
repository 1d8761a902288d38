"""One exception hierarchy, with a path into the rule and a readable message."""

from __future__ import annotations

from typing import Any

import pytest

from jimu import rules
from jimu.rules import (
    InvalidArgumentsError,
    NaNError,
    Operator,
    OperatorFailedError,
    RuleError,
    RuleEvaluationError,
    RuleLimitExceeded,
    RuleNotSqlCompilable,
    RuleTypeError,
    ThrownError,
    UnknownFieldError,
    UnknownOperatorError,
    default_registry,
)


def test_hierarchy() -> None:
    for error in (
        UnknownOperatorError,
        RuleEvaluationError,
        RuleLimitExceeded,
        RuleTypeError,
        RuleNotSqlCompilable,
    ):
        assert issubclass(error, RuleError)
    for error in (InvalidArgumentsError, NaNError, ThrownError, OperatorFailedError):
        assert issubclass(error, RuleEvaluationError)
    assert issubclass(UnknownFieldError, RuleTypeError)
    assert not issubclass(RuleLimitExceeded, RuleEvaluationError)


def test_message_joins_path_and_reason() -> None:
    error = UnknownFieldError("citty", "and[1].>[0]")
    assert str(error) == 'and[1].>[0]: unknown field "citty"'
    assert error.reason == 'unknown field "citty"'
    assert error.field == "citty"
    assert str(RuleError("no path")) == "no path"
    assert repr(NaNError("x", "p")) == "NaNError('x', path='p')"


def test_unknown_operator_fails_at_compile_time_with_its_path() -> None:
    with pytest.raises(UnknownOperatorError) as raised:
        rules.compile({"and": [True, {">": [{"plus_one": [1]}, 0]}]})
    error = raised.value
    assert error.path == "and[1].>[0]"
    assert error.operator == "plus_one"
    assert error.type == "Unknown Operator"
    assert str(error) == "and[1].>[0]: unknown operator 'plus_one'"


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        ({"and": [{"<": [1]}]}, "and[0]", "'<' takes at least 2 arguments, not 1"),
        ({"or": [{"if": "x"}]}, "or[0]", "needs its arguments in an array"),
        ({"!": [{"substr": []}]}, "![0]", "'substr' takes 1 to 3 arguments, not 0"),
        ({"map": [None, 1]}, "", "needs an array, not null"),
        ({"filter": [[1], None]}, "", "needs an expression to apply"),
        ({"reduce": [[1]]}, "", "'reduce' takes 2 to 3 arguments"),
    ],
)
def test_bad_arguments_fail_at_compile_time(rule: Any, path: str, words: str) -> None:
    with pytest.raises(InvalidArgumentsError) as raised:
        rules.compile(rule)
    assert raised.value.path == path
    assert words in raised.value.reason
    assert raised.value.type == "Invalid Arguments"


@pytest.mark.parametrize(
    ("rule", "data", "error", "path"),
    [
        (
            {"and": [True, {">": [{"+": [{"var": "a"}, 1]}, 2]}]},
            {"a": "x"},
            NaNError,
            "and[1].>[0]",
        ),
        ({"if": [True, {"/": [1, {"var": "z"}]}]}, {"z": 0}, NaNError, "if[1]"),
        ({"map": [[1, 2], {"*": [{"var": ""}, "two"]}]}, None, NaNError, "map[1]"),
        ({"all": [{"var": "xs"}, True]}, {}, InvalidArgumentsError, ""),
        ({"or": [False, {"throw": "stop"}]}, None, ThrownError, "or[1]"),
        ({"-": {"var": "xs"}}, {"xs": []}, InvalidArgumentsError, ""),
    ],
)
def test_evaluation_errors_say_where_they_happened(
    rule: Any, data: Any, error: type[RuleError], path: str
) -> None:
    with pytest.raises(error) as raised:
        rules.apply(rule, data)
    assert raised.value.path == path


def test_thrown_values_keep_their_type() -> None:
    with pytest.raises(ThrownError) as raised:
        rules.apply({"throw": {"var": "e"}}, {"e": {"type": "Out of stock", "sku": 7}})
    assert raised.value.type == "Out of stock"
    assert raised.value.value == {"type": "Out of stock", "sku": 7}
    assert raised.value.error_value() == {"type": "Out of stock", "sku": 7}
    with pytest.raises(ThrownError) as plain:
        rules.apply({"throw": "busy"})
    assert plain.value.type == "busy"
    assert plain.value.error_value() == {"type": "busy"}
    assert 'threw "busy"' in str(plain.value)


def test_try_catches_evaluation_errors_but_not_limits() -> None:
    assert rules.apply({"try": [{"/": [1, 0]}, {"val": "type"}]}) == "NaN"
    assert rules.apply({"try": [{"throw": "x"}, {"cat": ["caught ", {"val": "type"}]}]}) == (
        "caught x"
    )
    limited = default_registry(limits=rules.Limits(max_steps=5))
    rule = {"try": [{"map": [{"var": "xs"}, 1]}, "fallback"]}
    assert limited.apply(rule, {"xs": [1, 2]}) == [1, 1]
    with pytest.raises(RuleLimitExceeded):
        limited.apply(rule, {"xs": list(range(10))})


def _explode(_value: Any) -> Any:
    raise ZeroDivisionError("kaboom")


def test_a_failing_plugin_operator_becomes_a_rule_error_with_its_path() -> None:
    registry = default_registry()
    registry.add(Operator("explode", _explode, min_args=1, max_args=1))
    with pytest.raises(OperatorFailedError) as raised:
        registry.apply({"and": [True, {"explode": [{"var": "x"}]}]}, {"x": 1})
    assert raised.value.path == "and[1]"
    assert "ZeroDivisionError: kaboom" in raised.value.reason
    assert isinstance(raised.value.__cause__, ZeroDivisionError)
    # ... and try can catch it like any evaluation error.
    caught = registry.apply({"try": [{"explode": [1]}, {"val": "type"}]})
    assert caught == "Operator Failed"


def test_errors_inside_iterators_point_into_the_body() -> None:
    rule = {"some": [{"var": "items"}, {">": [{"var": "price"}, {"var": "limit"}]}]}
    assert rules.apply(rule, {"items": [{"price": 1, "limit": 0}]}) is True
    with pytest.raises(NaNError) as raised:
        rules.apply(rule, {"items": [{"price": [1], "limit": 0}]})
    assert raised.value.path == "some[1]"
