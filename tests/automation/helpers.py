"""A throw-away store for automation tests: entities, users, an engine on a controllable clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import msgspec

from jimu.automation.clock import ManualClock
from jimu.automation.engine import AutomationEngine
from jimu.meta import EntityDef, FieldDef
from jimu.meta.automations import AutomationDef
from jimu.site import Site
from jimu_sdk.testing import make_site

T = TypeVar("T")

#: 2024-05-01 09:00 in Shanghai.
START = dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)


STORE_ENTITIES = [
    EntityDef(
        name="customer",
        fields=[
            FieldDef(name="nickname", type="text"),
            FieldDef(name="email", type="text"),
            FieldDef(name="phone", type="text"),
            FieldDef(name="birthday", type="date"),
            FieldDef(name="tags", type="tags"),
            FieldDef(name="owner", type="integer"),
            FieldDef(name="last_order_at", type="datetime"),
            FieldDef(name="coupon_used", type="boolean", default=False),
        ],
    ),
    EntityDef(
        name="shop_order",
        fields=[
            FieldDef(name="customer", type="link", options={"target": "customer"}),
            FieldDef(name="total", type="decimal", options={"precision": 12, "scale": 2}),
            FieldDef(name="paid", type="boolean", default=False),
        ],
    ),
    EntityDef(
        name="cart",
        fields=[
            FieldDef(name="customer", type="link", options={"target": "customer"}),
            FieldDef(name="items", type="integer", default=0),
            FieldDef(name="checked_out", type="boolean", default=False),
        ],
    ),
    EntityDef(
        name="lead",
        fields=[
            FieldDef(name="name", type="text"),
            FieldDef(name="region", type="text"),
            FieldDef(name="owner", type="integer"),
            FieldDef(name="followed_up", type="boolean", default=False),
        ],
    ),
    EntityDef(
        name="task",
        fields=[
            FieldDef(name="title", type="text"),
            FieldDef(name="assignee", type="integer"),
            FieldDef(name="due_at", type="datetime"),
            FieldDef(name="about_id", type="integer"),
        ],
    ),
]


def new_store(
    folder: Path,
    database_url: str | None = None,
    extra: Mapping[str, ModuleType] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Site:
    """A site (not opened) whose store entities are created when :func:`open_engine` opens it.

    The entities belong to the site itself (not to a test plugin), so worker
    processes that load the site folder see them too.
    """
    site = make_site(
        folder, plugins=list(extra or {}), extra_plugins=extra, database_url=database_url
    )
    if settings:
        site.config = msgspec.structs.replace(
            site.config, plugin_settings={"automation": dict(settings)}
        )
        site.save_config()
    return site


def run(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion (tests are synchronous)."""
    return asyncio.run(coro)  # type: ignore[arg-type]


async def open_engine(site: Site, clock: ManualClock | None = None) -> AutomationEngine:
    """Open ``site`` (creating the store entities) and build an inline engine on ``clock``."""
    await site.open()
    for entity in STORE_ENTITIES:
        if entity.name not in site.entities:
            await site.create_entity(entity)
    engine = AutomationEngine(site, clock=clock or ManualClock(START))
    await engine.start()
    return engine


def automation(data: Mapping[str, Any]) -> AutomationDef:
    """An AutomationDef from plain data (as the API and fixtures give it)."""
    return msgspec.convert(dict(data), AutomationDef)


async def messages(site: Site) -> list[dict[str, Any]]:
    """Every message sent, oldest first."""
    return await site.db.fetch(
        "SELECT channel, recipient, body, entity, record_id FROM jimu_message ORDER BY id"
    )


Scenario = Callable[[Site, AutomationEngine, ManualClock], Awaitable[None]]
