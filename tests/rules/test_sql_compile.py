"""The SQL compiler: parameters only, clear refusals, and the same answers as Python."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from piccolo.querystring import QueryString

from jimu import rules
from jimu.rules import (
    OperatorRegistry,
    RuleNotSqlCompilable,
    SqlColumn,
    SqlFragment,
    UnknownFieldError,
    compile_sql,
)
from tests.rules.tables import CustomerScope, PgCustomers, SqliteCustomers, python_record

ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Alice",
        "city": "Shanghai",
        "age": 34,
        "points": 1200,
        "score": Decimal("12.50"),
        "active": True,
        "birthday": date(1990, 5, 15),
        "joined_at": datetime(2024, 5, 14, 16, 30, tzinfo=UTC),  # 15 May 00:30 in Shanghai
        "tags": ["vip", "wechat"],
        "company_id": 1,
    },
    {"id": 2, "name": "", "tags": [], "company_id": 2},  # everything else NULL
    {
        "id": 3,
        "name": "bob o'neil",
        "city": "x' OR 1=1 --",
        "age": 0,
        "points": -5,
        "score": Decimal("0.1"),
        "active": False,
        "birthday": date(2000, 2, 29),
        "joined_at": datetime(2024, 1, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "tags": "vip",
        "company_id": 3,
    },
    {
        "id": 4,
        "name": "Zoë",
        "city": "Beijing",
        "age": 61,
        "points": 0,
        "score": Decimal("-3"),
        "active": True,
        "birthday": date(1963, 1, 31),
        "joined_at": datetime(2023, 12, 31, 16, 0, tzinfo=UTC),  # 1 Jan 00:00 in Shanghai
        "tags": {"vip": True},
        "company_id": None,
    },
]

SAME_AS_PYTHON: list[Any] = [
    {"==": [{"var": "city"}, None]},
    {"!=": [{"var": "city"}, "Shanghai"]},
    {"===": [{"var": "age"}, 0]},
    {"!==": [{"var": "city"}, None]},
    {"<": [{"var": "age"}, 18]},
    {">=": [{"var": "points"}, "1000"]},
    {"<=": [{"var": "score"}, 0.1]},
    {"==": [{"var": "score"}, 12.5]},
    {"==": [{"var": "active"}, False]},
    {"===": [{"var": "active"}, True]},
    {"!": {"var": "active"}},
    {"!!": {"var": "name"}},
    {"var": "points"},
    {"<": [18, {"var": "age"}, 65]},
    {"<=": [{"var": "city"}, {"var": "name"}]},
    {"==": [{"var": "age"}, {"var": "points"}]},
    {"===": [{"var": "city"}, {"var": "name"}]},
    {"in": [{"var": "city"}, ["Shanghai", "Beijing", None]]},
    {"in": [{"var": "age"}, [0, 34, 34.0, "61", True]]},
    {"in": ["o", {"var": "name"}]},
    {"in": [{"var": "name"}, "Alice and Bob"]},
    {"and": [{"var": "active"}, {">": [{"var": "points"}, 100]}]},
    {"or": [{"var": "city"}, {"<": [{"var": "age"}, 1]}]},
    {"!": {"or": [{"==": [{"var": "city"}, "Beijing"]}, {"var": "active"}]}},
    {"if": [{"var": "active"}, {">": [{"var": "age"}, 40]}, {"missing": ["birthday"]}]},
    {"missing": ["city", "name"]},
    {"!": {"missing_some": [2, ["city", "age", "birthday"]]}},
    {">": [{"+": [{"var": "points"}, {"*": [{"var": "age"}, 10]}]}, 500]},
    {"==": [{"-": [{"var": "points"}]}, 5]},
    {"<": [{"/": [{"var": "points"}, 4]}, 1]},
    {"==": [{"%": [{"var": "age"}, 2]}, 0]},
    {">": [{"*": [{"var": "score"}, 1.5]}, 18]},
    {"==": [{"max": [{"var": "age"}, {"var": "points"}]}, 1200]},
    {"==": [{"cat": [{"var": "name"}, "/", {"var": "age"}]}, "Alice/34"]},
    {"==": [{"substr": [{"var": "name"}, -3, 2]}, "ic"]},
    {"==": [{"lower": {"var": "city"}}, "beijing"]},
    {"==": [{"length": {"var": "name"}}, 3]},
    {"contains": [{"var": "name"}, "o"]},
    {"starts_with": [{"var": "city"}, "Sh"]},
    {"ends_with": [{"var": "name"}, "neil"]},
    {"has_tag": "vip"},
    {"==": [{"var": "company.city"}, "Hangzhou"]},
    {"!": {"var": "company.city"}},
    {"==": [{"??": [{"var": "city"}, "unknown"]}, "unknown"]},
    {"==": [{"var": ["age", 99]}, 99]},
    {">": [{"if": [{"var": "active"}, {"var": "points"}, 0]}, 10]},
    {">": [{"var": "birthday"}, "1999-12-31"]},
    {"<": [{"var": "joined_at"}, "2024-01-01"]},
    {">=": [{"var": "joined_at"}, {"start_of_day": {"now": []}}]},
    {">=": [{"var": "joined_at"}, {"start_of_month": {"today": []}}]},
    {"==": [{"age_years": {"var": "birthday"}}, 34]},
    {">=": [{"diff_days": [{"var": "birthday"}, {"today": []}]}, 10000]},
    {"<": [{"diff_days": [{"var": "joined_at"}, {"today": []}]}, 1]},
    {">": [{"diff_minutes": [{"var": "joined_at"}, {"now": []}]}, 60]},
    {">=": [{"var": "birthday"}, {"add_days": [{"today": []}, -20000]}]},
    {"==": [{"add_months": [{"var": "birthday"}, 1]}, "2000-03-29"]},
    {"==": [{"add_months": [{"var": "birthday"}, 1]}, "1963-02-28"]},
    {"==": [{"add_years": [{"var": "birthday"}, 1]}, "2001-02-28"]},
    {"==": [{"add_days": [{"var": "birthday"}, 1]}, "2000-03-01"]},
    {">": [{"add_hours": [{"var": "joined_at"}, 2]}, "2024-05-15T02:00:00+08:00"]},
    {"==": [{"start_of_week": {"var": "birthday"}}, "2000-02-28"]},
    {"==": [{"start_of_month": {"var": "joined_at"}}, "2024-01-01"]},
    {"==": [{"start_of_day": {"var": "joined_at"}}, "2024-02-01"]},
    {"==": [{"to_date": {"var": "joined_at"}}, "2024-05-15"]},
    {"<": [{"to_date": {"var": "birthday"}}, "1995-01-01"]},
]


def _python_ids(rule: Any, registry: OperatorRegistry) -> set[int]:
    compiled = registry.compile(rule)
    return {row["id"] for row in ROWS if compiled.matches(python_record(row))}


def _assert_same_everywhere(
    rule: Any, registry: OperatorRegistry, database: SqliteCustomers | PgCustomers, dialect: str
) -> None:
    expected = _python_ids(rule, registry)
    fragment = registry.compile_sql(rule, CustomerScope(), dialect)  # type: ignore[arg-type]
    assert database.matching_ids(fragment) == expected, fragment
    negated = SqlFragment(f"NOT ({fragment.sql})", fragment.params)
    assert database.matching_ids(negated) == {row["id"] for row in ROWS} - expected


@pytest.mark.parametrize("rule", SAME_AS_PYTHON, ids=[str(r)[:60] for r in SAME_AS_PYTHON])
def test_sqlite_matches_python(
    rule: Any, registry: OperatorRegistry, sqlite_customers: SqliteCustomers
) -> None:
    sqlite_customers.replace_rows(ROWS)
    _assert_same_everywhere(rule, registry, sqlite_customers, "sqlite")


@pytest.mark.postgres
@pytest.mark.parametrize("rule", SAME_AS_PYTHON, ids=[str(r)[:60] for r in SAME_AS_PYTHON])
def test_postgres_matches_python(rule: Any, registry: OperatorRegistry, pg: PgCustomers) -> None:
    pg.replace_rows(ROWS)
    _assert_same_everywhere(rule, registry, pg, "postgres")


def test_the_rule_table_really_discriminates(registry: OperatorRegistry) -> None:
    outcomes = [frozenset(_python_ids(rule, registry)) for rule in SAME_AS_PYTHON]
    assert all(o and o != {1, 2, 3, 4} for o in outcomes[:10])
    assert len(set(outcomes)) > 10


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_values_are_always_parameters(dialect: str) -> None:
    hostile = "x' OR 1=1 --"
    fragment = compile_sql(
        {"or": [{"==": [{"var": "city"}, hostile]}, {"in": [{"var": "name"}, [hostile, "{}"]]}]},
        CustomerScope(),
        dialect,  # type: ignore[arg-type]
    )
    assert hostile not in fragment.sql
    assert "OR 1=1" not in fragment.sql
    assert fragment.params.count(hostile) == 2
    assert "{}" in fragment.params
    sql, params = QueryString(fragment.sql, *fragment.params).compile_string(dialect)
    assert len(params) == len(fragment.params)
    assert sql.count("?" if dialect == "sqlite" else "$") == len(params)


def test_injection_attempt_only_matches_its_own_row(
    registry: OperatorRegistry, sqlite_customers: SqliteCustomers
) -> None:
    sqlite_customers.replace_rows(ROWS)
    fragment = registry.compile_sql(
        {"==": [{"var": "city"}, "x' OR 1=1 --"]}, CustomerScope(), "sqlite"
    )
    assert sqlite_customers.matching_ids(fragment) == {3}


def test_parameters_are_typed_for_each_dialect(registry: OperatorRegistry) -> None:
    rule = {
        "and": [
            {">": [{"var": "birthday"}, "2000-01-01"]},
            {"<": [{"var": "joined_at"}, "2024-05-01T08:00:00+08:00"]},
            {"==": [{"var": "score"}, 0.1]},
            {"===": [{"var": "active"}, True]},
        ]
    }
    pg = registry.compile_sql(rule, CustomerScope(), "postgres")
    assert pg.params == (
        date(2000, 1, 1),
        datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
        Decimal("0.1"),
        True,
    )
    assert "::date" in pg.sql
    assert "::timestamptz" in pg.sql
    sqlite = registry.compile_sql(rule, CustomerScope(), "sqlite")
    assert sqlite.params == ("2000-01-01", "2024-05-01 00:00:00.000000+00:00", 0.1, 1)


def test_now_and_today_are_bound_when_compiling(registry: OperatorRegistry) -> None:
    fragment = registry.compile_sql(
        {">=": [{"var": "birthday"}, {"add_days": [{"today": []}, -7]}]}, CustomerScope(), "sqlite"
    )
    assert fragment.params == ("2024-05-08",)


def test_unknown_fields_fail_at_compile_time_with_their_path() -> None:
    with pytest.raises(UnknownFieldError) as raised:
        compile_sql({"and": [True, {">": [{"var": "citty"}, 1]}]}, CustomerScope(), "sqlite")
    assert str(raised.value) == 'and[1].>[0]: unknown field "citty"'


@pytest.mark.parametrize(
    ("rule", "path", "operator", "words"),
    [
        ({"and": [True, {"regex_match": [{"var": "name"}, "^A"]}]}, "and[1]", "regex_match",
         "no SQL form"),
        ({"some": [{"var": "tags"}, {"==": [{"var": ""}, "vip"]}]}, "", "some", "no SQL form"),
        ({"==": [{"var": {"cat": ["ci", "ty"]}}, "x"]}, "==[0]", "var", "computed variable path"),
        ({"==": [{"var": "city"}, 5]}, "", "==", "needs number coercion"),
        ({">": [{"var": "age"}, "old"]}, "", ">", "is not a number"),
        ({"<": [{"/": [{"var": "age"}, {"var": "points"}]}, 1]}, "<[0]", "/", "non-zero"),
        ({"==": [{"var": "tags"}, None]}, "", "==", "json field"),
        ({"!!": {"try": [{"var": "age"}, 0]}}, "!![0]", "try", "no SQL form"),
        ({">": [{"var": "birthday"}, "someday"]}, "", ">", "is not a date"),
    ],
)  # fmt: skip
def test_what_has_no_sql_form_says_where_and_why(
    rule: Any, path: str, operator: str, words: str
) -> None:
    for dialect in ("sqlite", "postgres"):
        with pytest.raises(RuleNotSqlCompilable) as raised:
            compile_sql(rule, CustomerScope(), dialect)  # type: ignore[arg-type]
        assert raised.value.path == path
        assert raised.value.operator == operator
        assert words in raised.value.reason


def test_column_expressions_with_braces_are_escaped(sqlite_customers: SqliteCustomers) -> None:
    class Scope:
        def resolve(self, path: str) -> SqlColumn | None:
            return SqlColumn('"customer"."name"', "text") if path == "{weird}" else None

    fragment = compile_sql({"==": [{"var": "{weird}"}, "Alice"]}, Scope(), "sqlite")
    sqlite_customers.replace_rows(ROWS)
    assert sqlite_customers.matching_ids(fragment) == {1}


def test_constant_rules_become_constant_conditions() -> None:
    assert compile_sql({"<": [1, 2]}, CustomerScope(), "sqlite") == SqlFragment("TRUE", ())
    assert compile_sql({"and": []}, CustomerScope(), "postgres") == SqlFragment("FALSE", ())


def test_unknown_dialects_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        compile_sql({"var": "age"}, CustomerScope(), "mysql")  # type: ignore[arg-type]


def test_fragment_renders_through_piccolo() -> None:
    fragment = compile_sql({"==": [{"var": "age"}, 3]}, CustomerScope(), "postgres")
    querystring = fragment.querystring()
    assert querystring.compile_string("postgres") == (
        '(("customer"."age" = $1::bigint) AND "customer"."age" IS NOT NULL)',
        [3],
    )
    assert isinstance(rules.compile_sql, type(compile_sql))


def test_unreachable_postgres_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.rules import tables

    async def refuse(database: str) -> Any:
        raise OSError(f"connection to {database} refused")

    monkeypatch.setattr(tables, "_connect", refuse)
    monkeypatch.setattr(tables, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true requires it"):
        next(tables.pg_customers())
    monkeypatch.setattr(tables, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="not reachable"):
        next(tables.pg_customers())
