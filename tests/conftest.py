"""Fixtures shared by the cross-package tests.

``database_url`` runs a test once on SQLite and once on the real PostgreSQL
server (a fresh database each time); ``new_site`` builds a throw-away site on
that database with the plugins a test asks for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from jimu.site import Site
from jimu_sdk.testing import make_site, postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """``None`` (SQLite in the site folder) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_database() as url:
        yield url


@pytest.fixture
def new_site(tmp_path: Path, database_url: str | None) -> Callable[..., Site]:
    """Factory: ``new_site(plugins=[...], extra_plugins={...})`` on the test's database."""
    counter = iter(range(1000))

    def factory(
        plugins: Sequence[str] = (),
        extra_plugins: Mapping[str, ModuleType] | None = None,
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> Site:
        return make_site(
            tmp_path / f"site{next(counter)}",
            plugins=plugins,
            extra_plugins=extra_plugins,
            database_url=database_url,
            env=env,
            **kwargs,
        )

    return factory
