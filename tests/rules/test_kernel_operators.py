"""The kernel's operators: dates in the site time zone, strings, regular expressions, tags.

The clock is fixed at 2024-05-15 09:30 in Shanghai (01:30 UTC), a Wednesday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from jimu.rules import (
    InvalidArgumentsError,
    NaNError,
    OperatorRegistry,
    RuleLimitExceeded,
    default_registry,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_now_and_today_come_from_the_registry_clock(registry: OperatorRegistry) -> None:
    now = registry.apply({"now": []})
    assert now == datetime(2024, 5, 15, 9, 30, tzinfo=SHANGHAI)
    assert now.utcoffset() == timedelta(hours=8)
    assert registry.apply({"today": []}) == date(2024, 5, 15)
    late = default_registry(clock=lambda: datetime(2024, 5, 15, 17, 0, tzinfo=UTC))
    assert late.apply({"today": []}) == date(2024, 5, 16)  # 01:00 next day in Shanghai


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"add_days": [{"today": []}, 3]}, date(2024, 5, 18)),
        ({"add_days": ["2024-02-28", 1]}, date(2024, 2, 29)),
        ({"add_days": ["2024-03-01", -1]}, date(2024, 2, 29)),
        ({"add_months": ["2024-01-31", 1]}, date(2024, 2, 29)),
        ({"add_months": ["2023-01-31", 1]}, date(2023, 2, 28)),
        ({"add_months": ["2024-03-31", -1]}, date(2024, 2, 29)),
        ({"add_months": ["2024-11-15", 3]}, date(2025, 2, 15)),
        ({"add_years": ["2024-02-29", 1]}, date(2025, 2, 28)),
        (
            {"add_hours": ["2024-05-15T23:00:00+08:00", 2]},
            datetime(2024, 5, 16, 1, 0, tzinfo=SHANGHAI),
        ),
        ({"add_minutes": [{"now": []}, -45]}, datetime(2024, 5, 15, 8, 45, tzinfo=SHANGHAI)),
        (
            {"add_days": ["2024-05-15T23:30:00+08:00", 1]},
            datetime(2024, 5, 16, 23, 30, tzinfo=SHANGHAI),
        ),
        ({"to_date": "2024-05-15T20:00:00Z"}, date(2024, 5, 16)),
        ({"diff_days": ["2024-05-01", {"today": []}]}, 14),
        ({"diff_days": [{"today": []}, "2024-05-01"]}, -14),
        # 23:59 UTC on 14 May is already 15 May in Shanghai: the same day as today.
        ({"diff_days": ["2024-05-14T23:59:00Z", {"now": []}]}, 0),
        ({"diff_hours": ["2024-05-15T07:45:00+08:00", {"now": []}]}, 1),
        ({"diff_minutes": ["2024-05-15T09:31:30+08:00", {"now": []}]}, -1),
        ({"diff_minutes": ["2024-05-15T09:00:00+08:00", {"now": []}]}, 30),
        ({"start_of_day": {"now": []}}, datetime(2024, 5, 15, 0, 0, tzinfo=SHANGHAI)),
        ({"start_of_day": "2024-05-14T18:00:00Z"}, datetime(2024, 5, 15, 0, 0, tzinfo=SHANGHAI)),
        ({"start_of_week": {"today": []}}, date(2024, 5, 13)),
        ({"start_of_week": "2024-05-19"}, date(2024, 5, 13)),
        ({"start_of_week": "2024-05-20"}, date(2024, 5, 20)),
        ({"start_of_month": {"today": []}}, date(2024, 5, 1)),
        ({"age_years": "1990-05-15"}, 34),
        ({"age_years": "1990-05-16"}, 33),
        ({"age_years": ["2000-02-29", "2024-02-28"]}, 23),
        ({"age_years": ["2000-02-29", "2024-02-29"]}, 24),
    ],
)
def test_date_operators(registry: OperatorRegistry, rule: Any, expected: Any) -> None:
    result = registry.apply(rule)
    assert result == expected
    assert type(result) is type(expected)


def test_date_operators_take_record_values_and_pass_null_through(
    registry: OperatorRegistry,
) -> None:
    record = {
        "birthday": date(1990, 5, 1),
        "last_order_at": datetime(2024, 5, 1, 4, 0, tzinfo=UTC),
        "missing": None,
    }
    assert registry.apply({"age_years": {"var": "birthday"}}, record) == 34
    assert registry.apply({"diff_days": [{"var": "last_order_at"}, {"today": []}]}, record) == 14
    for name in ("add_days", "add_months", "diff_days"):
        assert registry.apply({name: [{"var": "missing"}, 1]}, record) is None
    assert registry.apply({"start_of_month": {"var": "missing"}}, record) is None


def test_segment_idiom_last_order_within_30_days(registry: OperatorRegistry) -> None:
    rule = {">=": [{"var": "last_order_date"}, {"add_days": [{"today": []}, -30]}]}
    assert registry.apply(rule, {"last_order_date": date(2024, 4, 20)}) is True
    assert registry.apply(rule, {"last_order_date": date(2024, 4, 1)}) is False
    assert registry.apply(rule, {"last_order_date": "2024-05-01"}) is True
    # Customers who never ordered are not "recent".
    assert registry.apply(rule, {"last_order_date": None}) is False


def test_date_operators_reject_what_is_not_a_date(registry: OperatorRegistry) -> None:
    with pytest.raises(NaNError, match="not a date"):
        registry.apply({"add_days": ["next tuesday", 1]})
    with pytest.raises(InvalidArgumentsError, match="whole number"):
        registry.apply({"add_days": ["2024-01-01", 1.5]})
    with pytest.raises(NaNError):
        registry.apply({"add_days": ["2024-01-01", "many"]})


def test_time_zone_is_the_registry_setting() -> None:
    moment = datetime(2024, 1, 1, 20, 0, tzinfo=UTC)
    new_york = default_registry(timezone="America/New_York", clock=lambda: moment)
    shanghai = default_registry(clock=lambda: moment)
    assert new_york.apply({"today": []}) == date(2024, 1, 1)
    assert shanghai.apply({"today": []}) == date(2024, 1, 2)
    plus_eight = default_registry(timezone=timezone(timedelta(hours=8)), clock=lambda: moment)
    assert plus_eight.apply({"today": []}) == date(2024, 1, 2)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"lower": "HeLLo Ä"}, "hello ä"),
        ({"upper": "vip"}, "VIP"),
        ({"lower": None}, ""),
        ({"length": "上海市"}, 3),
        ({"length": [[1, 2, 3]]}, 3),
        ({"length": None}, 0),
        ({"contains": ["Shanghai", "hai"]}, True),
        ({"contains": ["Shanghai", "HAI"]}, False),
        ({"contains": [None, ""]}, False),
        ({"contains": [["a", 1], 1]}, True),
        ({"starts_with": ["138-0000", "138"]}, True),
        ({"starts_with": [None, ""]}, False),
        ({"ends_with": ["report.xlsx", ".xlsx"]}, True),
        ({"ends_with": ["report.xlsx", ".csv"]}, False),
        ({"regex_match": ["13812345678", "^1[3-9][0-9]{9}$"]}, True),
        ({"regex_match": ["12345", "^1[3-9][0-9]{9}$"]}, False),
        ({"regex_match": ["Order #A-17", "(?i)order #a-\\d+"]}, True),
        ({"regex_match": [None, "x"]}, False),
    ],
)
def test_string_operators(rule: Any, expected: Any) -> None:
    assert default_registry().apply(rule) == expected


def test_regex_rejects_bad_patterns_clearly() -> None:
    registry = default_registry()
    with pytest.raises(InvalidArgumentsError, match="invalid regular expression"):
        registry.apply({"regex_match": ["aa", "(a)\\1"]})
    with pytest.raises(InvalidArgumentsError, match="must be text"):
        registry.apply({"regex_match": ["aa", 5]})
    with pytest.raises(RuleLimitExceeded, match="257 characters"):
        registry.apply({"regex_match": ["aa", "a" * 257]})


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ({"has_tag": "vip"}, {"tags": ["vip", "new"]}, True),
        ({"has_tag": ["vip"]}, {"tags": ["new"]}, False),
        ({"has_tag": "vip"}, {"tags": None}, False),
        ({"has_tag": "vip"}, {}, False),
        ({"has_tag": "vip"}, {"tags": "vip"}, False),
        ({"has_tag": [{"var": "customer.tags"}, "gold"]}, {"customer": {"tags": ["gold"]}}, True),
        (
            {"some": [{"var": "friends"}, {"has_tag": "vip"}]},
            {"friends": [{"tags": ["vip"]}]},
            True,
        ),
    ],
)
def test_has_tag(rule: Any, data: Any, expected: bool) -> None:
    assert default_registry().apply(rule, data) is expected
