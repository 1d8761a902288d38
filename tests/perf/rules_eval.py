"""Rule evaluation speed: Jimu's compiled rules vs the best Python JsonLogic libraries.

Run: ``python -m tests.perf.rules_eval --scale 0.1`` (1.0 = 100,000 records).

A realistic set of store rules - segment conditions, loyalty earning rules,
recency, tier multipliers, string tests - is evaluated over generated customer
records four ways in one run: Jimu's compiled rules, panzi-json-logic,
json-logic-qubit and equivalent hand-written Python lambdas. All four must give
identical results (checked before timing). The libraries get plain data they
understand (dates as ISO strings, which every engine compares as text).

Targets: at least 10x faster than the faster library, and at most 3x slower
than the hand-written lambdas.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import json_logic as qubit
from json_logic.apply import apply as panzi_apply

from jimu import rules
from tests.perf._bench import Report, best_of, parse_args, scaled

CITIES = ["Shanghai", "Beijing", "Shenzhen", "Hangzhou", "Chengdu", "Wuhan", "Suzhou", "Xian"]
TIERS = ["gold", "silver", "bronze", "none"]
TAGS = ["vip", "wechat", "new", "churn-risk", "b2b"]
CUTOFF = "2024-04-15"
BIG_CITIES = ["Shanghai", "Beijing", "Shenzhen"]
BIG_CITY_SET = frozenset(BIG_CITIES)


def make_records(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Customer records as plain JSON-like data."""
    rng = random.Random(seed)
    start = date(2023, 1, 1)
    records = []
    for i in range(count):
        phone_prefix = rng.choice(["138", "139", "150", "186", "177"])
        records.append(
            {
                "id": i,
                "name": f"customer{i}",
                "email": f"c{i}@{rng.choice(['qq.com', '163.com', 'gmail.com'])}",
                "phone": phone_prefix + f"{rng.randrange(10**8):08d}",
                "city": rng.choice(CITIES),
                "tier": rng.choice(TIERS),
                "age": rng.randint(16, 80),
                "orders": rng.randint(0, 40),
                "total_spent": rng.randint(0, 20_000),
                "amount": round(rng.uniform(5, 800), 2),
                "blocked": rng.random() < 0.05,
                "tags": rng.sample(TAGS, rng.randint(0, 3)),
                "last_order_date": (start + timedelta(days=rng.randint(0, 500))).isoformat(),
            }
        )
    return records


TIER_MULTIPLIER = [
    {"==": [{"var": "tier"}, "gold"]},
    2,
    {"==": [{"var": "tier"}, "silver"]},
    1.5,
    1,
]


def _multiplier(tier: str) -> float:
    return 2 if tier == "gold" else 1.5 if tier == "silver" else 1


# (name, JsonLogic rule, the same rule as a hand-written lambda)
RULES: list[tuple[str, Any, Callable[[dict[str, Any]], Any]]] = [
    (
        "segment: big spender in a big city",
        {"and": [{">=": [{"var": "total_spent"}, 1000]}, {"in": [{"var": "city"}, BIG_CITIES]}]},
        lambda r: r["total_spent"] >= 1000 and r["city"] in BIG_CITY_SET,
    ),
    (
        "recency: ordered since the cutoff",
        {">=": [{"var": "last_order_date"}, CUTOFF]},
        lambda r: r["last_order_date"] >= CUTOFF,
    ),
    (
        "loyalty: tier multiplier",
        {"*": [{"var": "amount"}, {"if": TIER_MULTIPLIER}]},
        lambda r: r["amount"] * _multiplier(r["tier"]),
    ),
    (
        "loyalty: 10% back over 100",
        {"if": [{">=": [{"var": "amount"}, 100]}, {"*": [{"var": "amount"}, 0.1]}, 0]},
        lambda r: r["amount"] * 0.1 if r["amount"] >= 100 else 0,
    ),
    (
        "eligibility: active regulars",
        {
            "and": [
                {">": [{"var": "orders"}, 3]},
                {"or": [{"==": [{"var": "tier"}, "gold"]}, {">=": [{"var": "total_spent"}, 5000]}]},
                {"!": {"var": "blocked"}},
            ]
        },
        lambda r: (
            r["orders"] > 3
            and (r["tier"] == "gold" or r["total_spent"] >= 5000)
            and not r["blocked"]
        ),
    ),
    (
        "segment: adults 18-60",
        {"<": [18, {"var": "age"}, 60]},
        lambda r: 18 < r["age"] < 60,
    ),
    (
        "string: QQ mail",
        {"in": ["@qq.com", {"var": "email"}]},
        lambda r: "@qq.com" in r["email"],
    ),
    (
        "string: China Mobile 138",
        {"==": [{"substr": [{"var": "phone"}, 0, 3]}, "138"]},
        lambda r: r["phone"][:3] == "138",
    ),
    (
        "tags: vip",
        {"in": ["vip", {"var": "tags"}]},
        lambda r: "vip" in r["tags"],
    ),
    (
        "label: city-tier",
        {"cat": [{"var": "city"}, "-", {"var": "tier"}]},
        lambda r: r["city"] + "-" + r["tier"],
    ),
]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return bool(a == b)


def check_identical(records: list[dict[str, Any]]) -> None:
    """Every engine gives the same result for every rule and record."""
    for name, rule, hand in RULES:
        compiled = rules.compile(rule)
        for record in records:
            ours = compiled(record)
            results = (hand(record), qubit.jsonLogic(rule, record), panzi_apply(rule, record))
            if not all(_same(ours, other) for other in results):
                raise AssertionError(f"{name}: engines disagree on {record}: {ours!r} {results!r}")


def time_engine(
    functions: list[Callable[[dict[str, Any]], Any]], records: list[dict[str, Any]], repeats: int
) -> float:
    """Best wall time to evaluate every rule on every record."""

    def run() -> None:
        for function in functions:
            [function(record) for record in records]

    return best_of(repeats, run)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__.splitlines()[0] if __doc__ else "rules_eval", argv)
    count = scaled(100_000, args.scale, minimum=1000)
    records = make_records(count)
    check_identical(records[:2000])

    compiled = [rules.compile(rule) for _, rule, _ in RULES]
    hand = [h for _, _, h in RULES]
    qubit_fns = [lambda r, rule=rule: qubit.jsonLogic(rule, r) for _, rule, _ in RULES]
    panzi_fns = [lambda r, rule=rule: panzi_apply(rule, r) for _, rule, _ in RULES]

    evaluations = count * len(RULES)
    # Rounds interleave the engines so that a noisy moment on the machine hits
    # all of them alike; each engine keeps its best round.
    ours = lambdas = panzi = qubit_time = float("inf")
    for round_number in range(7):
        ours = min(ours, time_engine(compiled, records, 1))
        lambdas = min(lambdas, time_engine(hand, records, 1))
        if round_number < 2:
            panzi = min(panzi, time_engine(panzi_fns, records, 1))
            qubit_time = min(qubit_time, time_engine(qubit_fns, records, 1))
    best_library = min(panzi, qubit_time)

    print(f"{count} records x {len(RULES)} rules = {evaluations} evaluations")
    for label, seconds in (
        ("jimu.rules (compiled)", ours),
        ("hand-written lambdas", lambdas),
        ("panzi-json-logic", panzi),
        ("json-logic-qubit", qubit_time),
    ):
        print(f"  {label:24s} {seconds:8.3f} s  {seconds / evaluations * 1e9:8.0f} ns/evaluation")
    for (name, _, _), function, handwritten in zip(RULES, compiled, hand, strict=True):
        mine = theirs = float("inf")
        for _ in range(3):
            mine = min(mine, time_engine([function], records, 1))
            theirs = min(theirs, time_engine([handwritten], records, 1))
        print(f"  {name:40s} {mine / count * 1e9:6.0f} ns  ({mine / theirs:4.2f}x lambda)")

    report = Report()
    report.figure("rules_speedup_vs_best_library", best_library / ours, "ratio", ">=", 10)
    report.figure("rules_slowdown_vs_lambdas", ours / lambdas, "ratio", "<=", 3)
    report.print()


if __name__ == "__main__":
    main()
