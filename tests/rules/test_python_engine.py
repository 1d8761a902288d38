"""The Python compiler beyond the conformance suite: record types, caching and the API."""

from __future__ import annotations

import pickle
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from jimu import rules
from jimu.rules import CompiledRule, NaNError, OperatorRegistry, default_registry

RECORD = {
    "name": "Alice",
    "city": "Shanghai",
    "total_spent": Decimal("1200.50"),
    "orders": 7,
    "vip": True,
    "birthday": date(1990, 5, 1),
    "last_order_at": datetime(2024, 5, 1, 4, 0, tzinfo=UTC),
    "tags": ["vip", "wechat"],
    "customer": {"city": "Hangzhou"},
    "nothing": None,
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({">=": [{"var": "total_spent"}, 1000]}, True),
        ({"==": [{"var": "total_spent"}, 1200.5]}, True),
        ({"==": [{"var": "total_spent"}, "1200.50"]}, True),
        ({"<": [{"var": "total_spent"}, 1200.49]}, False),
        ({"==": [{"var": "birthday"}, "1990-05-01"]}, True),
        ({"===": [{"var": "birthday"}, "1990-05-01"]}, True),
        ({">": [{"var": "birthday"}, "2000-01-01"]}, False),
        ({"<": ["1980-01-01", {"var": "birthday"}, "2000-01-01"]}, True),
        ({">": [{"var": "last_order_at"}, "2024-05-01T11:59:59+08:00"]}, True),
        # A naive time is read in the site's zone: 12:00 in Shanghai is 04:00 UTC.
        ({"==": [{"var": "last_order_at"}, "2024-05-01 12:00:00"]}, True),
        # A date against a datetime compares with the date's local midnight.
        ({"<": [{"var": "birthday"}, {"var": "last_order_at"}]}, True),
        ({"in": [{"var": "city"}, ["Beijing", "Shanghai"]]}, True),
        ({"in": ["vip", {"var": "tags"}]}, True),
        ({"==": [{"var": "customer.city"}, "Hangzhou"]}, True),
        ({"==": [{"var": "nothing"}, None]}, True),
        ({"==": [{"var": "absent"}, None]}, True),
        ({"==": [{"var": "nothing"}, 0]}, True),
        ({"==": [{"var": "city"}, None]}, False),
        ({"<": [{"var": "nothing"}, "m"]}, False),
        ({"<": [{"var": "nothing"}, {"var": "birthday"}]}, False),
        ({"*": [{"var": "total_spent"}, 1.5]}, Decimal("1800.750")),
        ({"+": [{"var": "total_spent"}, 0.1]}, Decimal("1200.60")),
        ({"if": [{"var": "vip"}, "gold", "silver"]}, "gold"),
        ({"cat": [{"var": "name"}, "@", {"var": "birthday"}]}, "Alice@1990-05-01"),
        ({"var": ["absent", "fallback"]}, "fallback"),
        ({"var": ["nothing", "fallback"]}, "fallback"),
    ],
)
def test_rules_work_on_records_as_the_api_gives_them(rule: Any, expected: Any) -> None:
    assert rules.apply(rule, RECORD) == expected


def test_decimal_and_float_agree_on_what_people_mean() -> None:
    # Decimal("0.1") == 0.1 is False in Python; in rules it is true.
    assert rules.apply({"==": [{"var": "x"}, 0.1]}, {"x": Decimal("0.1")}) is True
    assert rules.apply({"+": [{"var": "x"}, 0.2]}, {"x": Decimal("0.1")}) == Decimal("0.3")


def test_comparing_a_date_with_text_that_is_not_a_date_raises_nan() -> None:
    with pytest.raises(NaNError) as raised:
        rules.apply({"and": [True, {">": [{"var": "birthday"}, "soon"]}]}, RECORD)
    assert raised.value.path == "and[1]"
    assert "not a date" in raised.value.reason


def test_dotted_paths_also_find_flat_keys() -> None:
    assert rules.apply({"var": "customer.city"}, {"customer.city": "Suzhou"}) == "Suzhou"
    assert rules.apply({"var": "a.b.c"}, {"a.b.c": 1}) == 1


def test_data_that_is_not_a_dict_is_read_like_json() -> None:
    assert rules.apply({"var": 1}, ["a", "b"]) == "b"
    assert rules.apply({"var": "x"}, None) is None
    assert rules.apply({"var": ""}, 7) == 7
    assert rules.apply({"var": "x"}, "text") is None


def test_compiled_rule_api() -> None:
    compiled = rules.compile({"and": [{">": [{"var": "orders"}, 5]}, {"var": "city"}]})
    assert isinstance(compiled, CompiledRule)
    assert compiled(RECORD) == "Shanghai"
    assert compiled.evaluate(RECORD) == "Shanghai"
    assert compiled.matches(RECORD) is True
    assert compiled.matches({"orders": 1}) is False
    assert compiled() is False
    assert compiled.fields_read() == {"orders", "city"}
    assert "def _rule" in compiled.source


def test_compiled_rules_are_not_picklable_but_their_rules_are() -> None:
    compiled = rules.compile({"var": "a"})
    with pytest.raises(TypeError, match="pickle the rule"):
        pickle.dumps(compiled)
    assert rules.compile(pickle.loads(pickle.dumps(compiled.rule))) is compiled


def test_compiled_rules_are_cached_by_canonical_form() -> None:
    registry = default_registry()
    first = registry.compile({"and": [{"==": [{"var": "a"}, 1]}, {"var": "b"}]})
    same = registry.compile({"and": [{"==": [{"var": "a"}, 1]}, {"var": "b"}]})
    assert first is same
    # 1 and 1.0 and true are different rules.
    assert registry.compile({"==": [{"var": "a"}, 1.0]}) is not registry.compile(
        {"==": [{"var": "a"}, 1]}
    )
    assert registry.compile({"==": [{"var": "a"}, True]}) is not registry.compile(
        {"==": [{"var": "a"}, 1]}
    )


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    registry = default_registry(limits=rules.Limits(cache_size=2))
    a = registry.compile({"var": "a"})
    registry.compile({"var": "b"})
    assert registry.compile({"var": "a"}) is a  # a is now the most recent
    registry.compile({"var": "c"})  # evicts b
    assert registry.compile({"var": "a"}) is a
    assert len(registry._cache) == 2


def test_rules_with_python_only_values_are_compiled_but_not_cached() -> None:
    registry = default_registry()
    rule = {"==": [{"var": "d"}, date(2024, 1, 1)]}
    assert registry.compile(rule)({"d": "2024-01-01"}) is True
    assert registry.compile(rule) is not registry.compile(rule)
    decimal_rule = {"==": [{"var": "x"}, Decimal("1.5")]}
    assert registry.compile(decimal_rule)({"x": "1.5"}) is True


def test_constant_results_are_not_shared_between_evaluations() -> None:
    compiled = rules.compile({"if": [{"var": "x"}, {"preserve": [1, 2]}, ["a"]]})
    first = compiled({"x": True})
    first.append(3)
    assert compiled({"x": True}) == [1, 2]
    other = compiled({"x": False})
    other.append("b")
    assert compiled({"x": False}) == ["a"]


def test_constant_parts_are_folded_at_compile_time() -> None:
    compiled = rules.compile({"if": [{"<": [1, 2]}, {"+": [1, 2]}, {"var": "never"}]})
    assert compiled(None) == 3
    assert "never" not in compiled.source


def test_errors_in_branches_not_taken_do_not_happen() -> None:
    rule = {"if": [{"var": "ok"}, 1, {"/": [1, 0]}]}
    assert rules.apply(rule, {"ok": True}) == 1
    with pytest.raises(NaNError):
        rules.apply(rule, {"ok": False})


def test_evaluation_is_thread_safe() -> None:
    compiled = rules.compile({"map": [{"var": "xs"}, {"*": [{"var": ""}, {"val": [[2], "k"]}]}]})
    results: list[list[int]] = []

    def work(k: int) -> None:
        for _ in range(200):
            results.append(compiled({"xs": [1, 2, 3], "k": k}))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 800
    assert all(r in ([1, 2, 3], [2, 4, 6], [3, 6, 9], [0, 0, 0]) for r in results)


def test_generated_code_cannot_be_escaped_through_the_rule() -> None:
    nasty = "'); __import__('os').system('echo pwned'); ('"
    compiled = rules.compile({"==": [{"var": nasty}, nasty]})
    assert compiled({nasty: nasty}) is True
    assert compiled({}) is False
    assert rules.apply({"cat": ["\n#@0\n", {"var": "x"}]}, {"x": "y"}) == "\n#@0\ny"


def test_apply_accepts_a_registry(registry: OperatorRegistry) -> None:
    assert rules.apply({"today": []}, None, registry) == date(2024, 5, 15)
    assert rules.compile({"today": []}, registry)() == date(2024, 5, 15)


def test_truthiness_helper_matches_the_rules() -> None:
    for value in (0, 0.0, "", [], None, False, Decimal(0), float("nan")):
        assert rules.truthy(value) is False
        assert rules.apply({"!!": [{"var": "v"}]}, {"v": value}) is False
    for value in ({}, "0", [0], 1, -1, Decimal("0.1"), date(2020, 1, 1)):
        assert rules.truthy(value) is True
        assert rules.apply({"!!": [{"var": "v"}]}, {"v": value}) is True
