"""A pytest plugin for testing Jimu plugins: throw-away sites and HTTP clients.

Installed with jimu-sdk and active automatically (``pytest11`` entry point).
Fixtures:

``jimu_make_site``
    ``jimu_make_site(plugins=[...], extra_plugins={"name": module}, database_url=None)``
    creates a site in a temporary folder (SQLite unless ``database_url`` is given)
    and returns the loaded, unopened :class:`~jimu.site.Site`. ``extra_plugins``
    registers plugin modules that are not installed, for the test only.
``jimu_client``
    ``with jimu_client(site) as client:`` an HTTP test client of the site's app,
    with the site opened for the duration of the block, signed in as a
    super-user (``jimu_client(site, user="alice")``: as that user, with her
    roles; ``anonymous=True``: without credentials).
``jimu_postgres_url``
    a fresh PostgreSQL database for the test, dropped afterwards. It uses the
    server in ``JIMU_TEST_POSTGRES_URL`` (default
    ``postgresql://postgres@127.0.0.1:5432/postgres``); when it is unreachable
    the test is skipped, unless ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from litestar.testing import TestClient

from jimu.errors import NotFound
from jimu.http import create_app
from jimu.site import Site, create_site

__all__ = ["make_site", "postgres_database", "site_client"]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def make_site(
    folder: Path,
    *,
    plugins: Sequence[str] = (),
    extra_plugins: Mapping[str, ModuleType] | None = None,
    database_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Site:
    """Create a site in ``folder`` and load it (not opened)."""
    create_site(folder, database_url=database_url, plugins=plugins)
    return Site.load(folder, extra_plugins=extra_plugins, env=env)


TEST_ADMIN = "test-admin"


async def _test_token(site: Site, login: str | None) -> str:
    """An API token for ``login`` (default: a super-user made for tests)."""
    if login is None:
        try:
            user = await site.auth.user_by_login(TEST_ADMIN)
        except NotFound:
            user = await site.auth.add_user(TEST_ADMIN, super_user=True)
    else:
        user = await site.auth.user_by_login(login)
    secret, _ = await site.auth.create_token(user.id, "jimu_sdk.testing")
    return secret


@contextmanager
def site_client(
    site: Site, *, user: str | None = None, anonymous: bool = False
) -> Iterator[TestClient[Any]]:
    """An HTTP client of ``site``'s app; the site is open inside the block.

    The client sends an API token: by default of a super-user made for
    tests (``test-admin``), with ``user=LOGIN`` of that user (so its roles
    apply), and with ``anonymous=True`` none at all.
    """
    with TestClient(create_app(site)) as client:
        if not anonymous:
            token = client.blocking_portal.call(_test_token, site, user)
            client.headers["Authorization"] = f"Bearer {token}"
        yield client


def _postgres_server_url() -> str:
    return os.environ.get("JIMU_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_postgres_server_url(), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create a uniquely named database on the test server; yield its URL; drop it."""
    name = f"jimu_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError) as exc:
        message = f"PostgreSQL is not reachable at {_postgres_server_url()}: {exc}"
        if _ci():
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    base = _postgres_server_url().rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def jimu_make_site(tmp_path: Path) -> Callable[..., Site]:
    """Factory of throw-away sites in the test's temporary folder."""
    counter = iter(range(1_000_000))

    def factory(**kwargs: Any) -> Site:
        return make_site(tmp_path / f"site{next(counter)}", **kwargs)

    return factory


@pytest.fixture
def jimu_client() -> Callable[..., AbstractContextManager[TestClient[Any]]]:
    """``with jimu_client(site) as client:`` — the site's app, opened."""
    return site_client


@pytest.fixture
def jimu_postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    with postgres_database() as url:
        yield url
