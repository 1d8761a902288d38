"""The examples in docs/concepts/rules.md run as written."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from jimu.rules import Operator, RuleNotSqlCompilable, default_registry
from tests.rules.tables import CustomerScope

DOC = Path(__file__).resolve().parents[2] / "docs" / "concepts" / "rules.md"


def _python_block_after(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match is not None, f"no python example under {heading!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def plugin() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(_python_block_after("## Adding an operator (plugins)"), namespace)
    return namespace


def test_plugin_example_operators_work(plugin: dict[str, Any]) -> None:
    operators = plugin["jimu_rule_operators"]()
    assert all(isinstance(op, Operator) for op in operators)
    registry = default_registry(clock=lambda: datetime(2024, 5, 15, 1, 30, tzinfo=UTC))
    registry.extend(operators)
    assert registry.apply({"points_for": [{"var": "amount"}, "gold"]}, {"amount": 120}) == 240
    assert registry.apply({"member_days": []}, {"member_since": date(2024, 5, 1)}) == 14
    assert registry.apply({"double": 21}) == 42
    fragment = registry.compile_sql(
        {">": [{"double": {"var": "age"}}, 60]}, CustomerScope(), "sqlite"
    )
    assert '("customer"."age" * 2)' in fragment.sql
    with pytest.raises(RuleNotSqlCompilable, match="needs a number field"):
        registry.compile_sql({"double": {"var": "name"}}, CustomerScope(), "sqlite")
    with pytest.raises(RuleNotSqlCompilable, match="no SQL form"):
        registry.compile_sql({"points_for": [{"var": "age"}, "gold"]}, CustomerScope(), "sqlite")


def test_documented_results_hold() -> None:
    registry = default_registry(clock=lambda: datetime(2024, 5, 15, 1, 30, tzinfo=UTC))
    text = DOC.read_text(encoding="utf-8")
    table = text.split("### Kernel extras", 1)[1].split("## The Python compiler", 1)[0]
    checked = 0
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split("|")[1:-1]]
        if len(cells) != 3 or not cells[2].startswith("`"):
            continue
        examples = re.findall(r"`(\{.*?\})`", cells[1])
        expected = re.match(r"`([^`]*)`", cells[2])
        if not examples or expected is None or "var" in examples[0]:
            continue
        # The last example of a row is the one its result describes.
        result = registry.apply(json.loads(examples[-1]))
        shown = result.isoformat() if hasattr(result, "isoformat") else str(result)
        assert shown == expected.group(1), line
        checked += 1
    assert checked >= 9
