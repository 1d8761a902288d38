"""The guard index that narrows which automations' conditions a record event evaluates.

It may only skip an automation whose condition is false for the record: a
property test compares it with evaluating every condition, over conditions
and records that mix text, numbers, booleans, nulls and numeric text.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jimu import rules
from jimu.automation.matching import GuardIndex, equality_guards

FIELDS = ("city", "score", "tier")
VALUES = st.sampled_from(
    ["Shanghai", "Beijing", "1", "0", "", 0, 1, 2, True, False, None, 1.0, Decimal("1")]
)


def test_equality_guards_reads_leading_equalities_only() -> None:
    condition = {
        "and": [
            {"==": [{"var": "city"}, "Shanghai"]},
            {"===": [3, {"var": "score"}]},
            {"==": [{"var": "tier"}, True]},  # a boolean: not a lookup
            {"==": [{"var": "owner.region"}, "east"]},  # a path: not a plain field
            {">": [{"var": "score"}, 1]},
        ]
    }
    assert equality_guards(condition) == [("city", "Shanghai"), ("score", 3)]
    assert equality_guards({"==": [{"var": "city"}, "Beijing"]}) == [("city", "Beijing")]
    assert equality_guards({"or": [{"==": [{"var": "city"}, "Beijing"]}]}) == []
    assert equality_guards(None) == []


def test_the_most_telling_field_narrows_the_candidates() -> None:
    items = [
        (f"a{i}", {"and": [{"==": [{"var": "city"}, f"c{i % 2}"]}, {"==": [{"var": "score"}, i]}]})
        for i in range(10)
    ]
    items.append(("always", None))
    index = GuardIndex(items)
    assert index.candidates({"city": "c1", "score": 3}) == ["a3", "always"]
    assert index.candidates({"city": "c1", "score": 42}) == ["always"]
    # a value a lookup cannot compare: every automation guarded on it is a candidate
    assert index.candidates({"city": "c1", "score": "3"}) == [name for name, _ in items]


condition_strategy = st.one_of(
    st.none(),
    st.lists(
        st.tuples(st.sampled_from(FIELDS), VALUES, st.sampled_from(["==", "==="])),
        min_size=1,
        max_size=3,
    ).map(lambda parts: {"and": [{op: [{"var": name}, value]} for name, value, op in parts]}),
    st.tuples(st.sampled_from(FIELDS), VALUES).map(
        lambda part: {"==": [part[1], {"var": part[0]}]}
    ),
)


def _holds(rule: rules.CompiledRule, record: dict[str, Any]) -> bool:
    """As the engine decides: a rule that fails on the record (NaN, ...) does not hold."""
    try:
        return rule.matches(dict(record))
    except rules.RuleError:
        return False


@settings(max_examples=300, deadline=None)
@given(
    conditions=st.lists(condition_strategy, min_size=1, max_size=12),
    records=st.lists(st.fixed_dictionaries({name: VALUES for name in FIELDS}), max_size=8),
)
def test_never_skips_an_automation_whose_condition_holds(
    conditions: list[Any], records: list[dict[str, Any]]
) -> None:
    index = GuardIndex(list(enumerate(conditions)))
    compiled = [None if c is None else rules.compile(c) for c in conditions]
    for record in records:
        candidates = index.candidates(record)
        assert candidates == sorted(set(candidates))  # in the automations' order, once each
        holding = [
            position
            for position, rule in enumerate(compiled)
            if rule is None or _holds(rule, record)
        ]
        assert set(holding) <= set(candidates), (record, conditions)
