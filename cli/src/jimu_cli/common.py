"""What every ``jimu`` command shares: the ``--site`` option, running a coroutine
with readable errors, loading a site."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jimu.errors import JimuError
from jimu.site import Site

__all__ = ["_friendly", "_load", "_run", "_site_option"]

T = TypeVar("T")

_site_option = click.option(
    "--site",
    "site_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: os.environ.get("JIMU_SITE", "."),
    show_default="$JIMU_SITE or the current folder",
    help="The site folder (the one holding site.toml).",
)


def _run(coro: Awaitable[T]) -> T:
    """Run a coroutine, turning the kernel's errors into a readable CLI error."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except JimuError as exc:
        raise click.ClickException(exc.detail) from exc


def _friendly(func: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except JimuError as exc:
            raise click.ClickException(exc.detail) from exc

    return wrapper


def _load(site_path: Path) -> Site:
    try:
        return Site.load(site_path)
    except JimuError as exc:
        raise click.ClickException(exc.detail) from exc
