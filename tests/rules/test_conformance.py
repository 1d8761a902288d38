"""The JSON Logic compatibility suite: every one of its 1,138 cases must pass.

The suite lives beside the repository (``<repo>/../shared/conformance/jsonlogic/suites``),
exactly where CI has it. When it is missing the tests fail under ``CI=true``
and are skipped (with the reason) elsewhere.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from jimu import rules
from jimu.rules import RuleError

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO.parent / "shared" / "conformance" / "jsonlogic" / "suites"
EXPECTED_CASES = 1138
IN_CI = os.environ.get("CI", "").lower() == "true"


def _load_cases() -> list[tuple[str, dict[str, Any]]]:
    index = SUITES / "index.json"
    if not index.is_file():
        return []
    cases = []
    for name in json.loads(index.read_text(encoding="utf-8")):
        for position, case in enumerate(json.loads((SUITES / name).read_text(encoding="utf-8"))):
            if isinstance(case, dict):
                cases.append((f"{name}[{position}]", case))
    return cases


CASES = _load_cases()


def _suite_missing() -> None:
    message = f"the JSON Logic compatibility suite is missing: {SUITES}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def json_equal(actual: Any, expected: Any) -> bool:
    """Compare like JSON: numbers by value (2 == 2.0), but booleans are not numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and actual == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(json_equal(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(json_equal(actual[key], expected[key]) for key in expected)
        )
    return type(actual) is type(expected) and actual == expected


@pytest.mark.parametrize(
    ("case_id", "case"),
    CASES or [("suite-missing", {})],
    ids=[case_id for case_id, _ in CASES] or ["suite-missing"],
)
def test_case(case_id: str, case: dict[str, Any]) -> None:
    if not CASES:
        _suite_missing()
    rule, data = case["rule"], case.get("data")
    description = case.get("description", case_id)
    if "error" in case:
        with pytest.raises(RuleError) as raised:
            rules.apply(rule, data)
        assert raised.value.type == case["error"]["type"], description
    else:
        actual = rules.apply(rule, data)
        assert json_equal(actual, case["result"]), f"{description}: got {actual!r}"


def test_the_whole_suite_is_collected() -> None:
    if not CASES:
        _suite_missing()
    assert len(CASES) == EXPECTED_CASES


def test_json_equal_follows_json_not_python() -> None:
    assert json_equal(2.0, 2)
    assert not json_equal(True, 1)
    assert not json_equal(1, True)
    assert json_equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})
    assert not json_equal("1", 1)


def test_a_missing_suite_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="suite is missing"):
        _suite_missing()
    monkeypatch.setattr(module, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="suite is missing"):
        _suite_missing()
