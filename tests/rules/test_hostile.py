"""Hostile or mistaken rules are rejected or bounded, quickly and with a clear error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from jimu import rules
from jimu.rules import (
    InvalidArgumentsError,
    Limits,
    RuleLimitExceeded,
    UnknownOperatorError,
    default_registry,
)

FAST = 1.0  # seconds; every hostile case here finishes far below this


@contextmanager
def quickly(limit: float = FAST) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"took {elapsed:.2f}s"


def _nested(depth: int) -> Any:
    rule: Any = {"var": "x"}
    for _ in range(depth):
        rule = {"!": [rule]}
    return rule


def test_deep_nesting_is_rejected_before_recursion() -> None:
    very_deep: Any = 1
    for _ in range(200_000):
        very_deep = [very_deep]
    with quickly(), pytest.raises(RuleLimitExceeded, match="nested deeper than 32"):
        rules.compile(very_deep)
    with quickly(), pytest.raises(RuleLimitExceeded, match="nested deeper"):
        rules.compile(_nested(40))


def test_the_deepest_allowed_rules_compile_and_run() -> None:
    assert rules.apply(_nested(15), {"x": 1}) is False  # depth 31: 15 ops of two levels each
    registry = default_registry(limits=Limits(max_depth=64))
    deep_if: Any = {"var": "x"}
    for _ in range(31):
        deep_if = {"if": [{"var": "x"}, deep_if, 0]}
    assert registry.apply(deep_if, {"x": 5}) == 5


def test_giant_rules_and_literals_are_rejected() -> None:
    with quickly(), pytest.raises(RuleLimitExceeded, match="more than 10000 nodes"):
        rules.compile({"or": [{"==": [{"var": "x"}, i]} for i in range(5000)]})
    with quickly(), pytest.raises(RuleLimitExceeded, match="1000000 items"):
        rules.compile({"in": [{"var": "x"}, list(range(1_000_000))]})
    with quickly(), pytest.raises(RuleLimitExceeded, match="characters"):
        rules.compile({"==": [{"var": "x"}, "x" * 100_000]})


def test_big_but_allowed_rules_compile_quickly() -> None:
    with quickly(2.0):
        compiled = rules.compile({"or": [{"==": [{"var": "x"}, i]} for i in range(1600)]})
    assert compiled({"x": 1599}) is True


@pytest.mark.parametrize(
    "rule",
    [
        {"map": [{"var": "xs"}, {"+": [{"var": ""}, 1]}]},
        {"filter": [{"var": "xs"}, True]},
        {"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
        {"all": [{"var": "xs"}, True]},
        {"some": [{"var": "xs"}, False]},
        {"none": [{"var": "xs"}, False]},
    ],
)
def test_iterators_over_huge_arrays_hit_the_step_budget(rule: Any) -> None:
    with quickly(), pytest.raises(RuleLimitExceeded, match="max_steps"):
        rules.apply(rule, {"xs": [1] * 2_000_000})


def test_nested_iteration_multiplies_into_the_budget() -> None:
    rule = {"map": [{"var": "xs"}, {"map": [{"val": [[2], "xs"]}, 1]}]}
    assert len(rules.apply(rule, {"xs": list(range(300))})) == 300  # 90,300 steps
    with quickly(), pytest.raises(RuleLimitExceeded) as raised:
        rules.apply(rule, {"xs": list(range(1000))})
    assert raised.value.path == "map[1]"


@pytest.mark.parametrize(
    ("rule", "match"),
    [
        ({"cat": [{"var": "accumulator"}, {"var": "accumulator"}]}, "concatenation"),
        ({"merge": [{"var": "accumulator"}, {"var": "accumulator"}]}, "merged array"),
    ],
)
def test_doubling_in_reduce_is_bounded(rule: Any, match: str) -> None:
    start: Any = "ab" if "cat" in rule else ["ab"]
    with quickly(), pytest.raises(RuleLimitExceeded, match=match):
        rules.apply({"reduce": [{"var": "xs"}, rule, start]}, {"xs": list(range(200))})


def test_numbers_stay_json_numbers() -> None:
    square = {"reduce": [{"var": "xs"}, {"*": [{"var": "accumulator"}, {"var": "accumulator"}]}, 3]}
    double = {"reduce": [{"var": "xs"}, {"+": [{"var": "accumulator"}, {"var": "accumulator"}]}, 3]}
    with quickly():
        assert rules.apply(square, {"xs": list(range(100))}) == float("inf")
        assert rules.apply(double, {"xs": list(range(90_000))}) == float("inf")
        assert type(rules.apply({"+": [2**62, 2**62]})) is float


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", "(a|aa)+$", "(.*a){12}$", "(\\w+\\s?)*$"])
def test_catastrophic_regular_expressions_run_in_linear_time(pattern: str) -> None:
    subject = "a" * 50_000 + "!"
    with quickly(0.5):
        assert rules.apply({"regex_match": [{"var": "s"}, pattern]}, {"s": subject}) in (
            True,
            False,
        )


def test_regular_expressions_are_size_bounded() -> None:
    registry = default_registry(limits=Limits(max_regex_length=16, max_regex_subject=100))
    with pytest.raises(RuleLimitExceeded, match="limit is 16"):
        registry.apply({"regex_match": ["x", "a{1,5}b{1,5}c{1,5}d"]})
    with pytest.raises(RuleLimitExceeded, match="limited to 100"):
        registry.apply({"regex_match": [{"var": "s"}, "a"]}, {"s": "a" * 101})
    with pytest.raises(InvalidArgumentsError, match="invalid regular expression"):
        registry.apply({"regex_match": ["x", "a{1001}"]})


@pytest.mark.parametrize(
    "rule",
    [
        {"__import__": ["os"]},
        {"and": [{"eval": "1+1"}]},
        {"map": [[1], {"exec": "x"}]},
    ],
)
def test_unknown_operators_are_rejected_at_compile_time(rule: Any) -> None:
    with quickly(), pytest.raises(UnknownOperatorError):
        rules.compile(rule)


def test_deep_data_cannot_crash_the_engine() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with quickly(), pytest.raises(RuleLimitExceeded, match="recursed too deeply"):
        rules.apply({"===": [{"var": "a"}, {"var": "a"}]}, {"a": deep})


def test_limits_are_configurable_per_registry() -> None:
    strict = default_registry(limits=Limits(max_nodes=5, max_steps=3, max_string_length=4))
    with pytest.raises(RuleLimitExceeded, match="more than 5 nodes"):
        strict.compile({"and": [1, 2, 3, 4, 5]})
    with pytest.raises(RuleLimitExceeded, match="more than 3 array items"):
        strict.apply({"map": [{"var": "xs"}, 1]}, {"xs": [1, 2, 3, 4]})
    with pytest.raises(RuleLimitExceeded, match="limit is 4"):
        strict.apply({"cat": [{"var": "a"}, "xyz"]}, {"a": "ab"})
