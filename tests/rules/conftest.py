"""Fixtures for the rule engine tests: a fixed clock and the test databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from jimu.rules import OperatorRegistry, default_registry
from tests.rules.tables import CustomerScope, PgCustomers, SqliteCustomers, pg_customers

# 2024-05-15 09:30 in Shanghai (a Wednesday); 01:30 UTC.
FIXED_NOW = datetime(2024, 5, 15, 1, 30, tzinfo=UTC)


@pytest.fixture
def registry() -> OperatorRegistry:
    """The default operators with the clock fixed at FIXED_NOW (Asia/Shanghai)."""
    return default_registry(clock=lambda: FIXED_NOW)


@pytest.fixture
def scope() -> CustomerScope:
    return CustomerScope()


@pytest.fixture
def sqlite_customers() -> Iterator[SqliteCustomers]:
    customers = SqliteCustomers()
    yield customers
    customers.db.close()


@pytest.fixture(scope="session")
def pg_session() -> Iterator[PgCustomers]:
    yield from pg_customers()


@pytest.fixture
def pg(pg_session: PgCustomers) -> PgCustomers:
    return pg_session
