"""The six seed journeys as scenarios, each driven by a controllable clock.

A scenario gets a :class:`Driver`: the site, an engine to save definitions
and read the run log, the clock, and ``settle()`` which processes everything
due now — inline, or by Celery workers (embedded or distributed). The same
scenarios run in every mode (tests/automation/test_journeys*.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jimu.automation.clock import ManualClock
from jimu.automation.engine import AutomationEngine
from jimu.automation.seeds import SEED_JOURNEYS
from jimu.automation.store import time_param
from jimu.site import Site
from tests.automation.gateway import Gateway
from tests.automation.helpers import automation

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@dataclass
class Driver:
    """What a scenario drives: the site, an engine, the clock, the SMS gateway, and settling."""

    site: Site
    engine: AutomationEngine
    clock: ManualClock
    sms: Gateway
    #: ``None``: run inline; else queue a tick (Celery) and wait until nothing is pending.
    send_tick: Callable[[], None] | None = None
    users: dict[str, int] = field(default_factory=dict)

    async def settle(self, patience: float = 60.0) -> None:
        """Process everything that is due at the clock's current time."""
        if self.send_tick is None:
            await self.engine.settle()
            return
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            before = await self.engine.ticks()
            self.send_tick()
            while await self.engine.ticks() == before:  # wait for a worker to run the tick
                await self._pause(deadline)
            while (await self.pending())[1]:  # the runs it queued, advanced by the workers
                await self._pause(deadline)
            if not any(await self.pending()):
                return
        raise AssertionError("the workers did not finish the work that is due in time")

    @staticmethod
    async def _pause(deadline: float) -> None:
        if time.monotonic() > deadline:
            raise AssertionError("the workers did not finish the work that is due in time")
        await asyncio.sleep(0.05)

    async def pending(self) -> tuple[bool, bool]:
        """Whether events or due timers wait for a tick; whether runs wait for a worker."""
        db = self.site.db
        now = time_param(db, self.engine.now())
        row = await db.fetch_one(
            "SELECT (SELECT COUNT(*) FROM jimu_event WHERE dispatched_at IS NULL) AS events, "
            "(SELECT COUNT(*) FROM jimu_timer WHERE due_at <= {}) AS timers, "
            "(SELECT COUNT(*) FROM jimu_automation_run WHERE status IN ('ready', 'running')) "
            "AS runs",
            [now],
        )
        assert row is not None
        return bool(row["events"] or row["timers"]), bool(row["runs"])

    async def use(self, name: str) -> None:
        """Switch on one seed journey (only that one: the others are switched off)."""
        for definition, _ in await self.engine.definitions():
            if definition.name != name:
                await self.engine.delete(definition.name)
        data = dict(SEED_JOURNEYS[name])
        data["enabled"] = True
        await self.engine.save(automation(data))

    def jump_to_local(self, hour: int, minute: int = 0) -> None:
        """Move the clock forward to the next HH:MM in Shanghai."""
        now = self.clock().astimezone(SHANGHAI)
        target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if target <= now:
            target += dt.timedelta(days=1)
        self.clock.set(target)

    async def texts(self, entity: str, ids: list[int]) -> list[tuple[int, str]]:
        """(record id, body) of the messages sent about these records, per record in order."""
        marks = ", ".join("{}" for _ in ids)
        rows = await self.site.db.fetch(
            f"SELECT record_id, body FROM jimu_message WHERE entity = {{}} "
            f"AND record_id IN ({marks}) ORDER BY record_id, id",
            [entity, *ids],
        )
        return [(int(r["record_id"]), r["body"]) for r in rows]

    async def user(self, login: str, roles: list[str], region: str | None = None) -> int:
        """A user (created once per site) holding ``roles``."""
        if login not in self.users:
            from jimu.errors import NotFound

            auth = self.site.auth
            try:
                self.users[login] = (await auth.user_by_login(login)).id
                return self.users[login]
            except NotFound:
                pass
            existing = {role for role in await auth.role_names()}
            from jimu.auth import RoleDef

            for role in roles:
                if role not in existing:
                    await auth.save_role(RoleDef(name=role))
            user = await auth.add_user(
                login, roles=roles, attributes={"region": region} if region else None
            )
            self.users[login] = user.id
        return self.users[login]


Scenario = Callable[[Driver], Awaitable[None]]


async def welcome_new_customer(d: Driver) -> None:
    """Welcome at once; 3 days later tag those who used the coupon, nudge the others."""
    await d.use("welcome_new_customer")
    d.jump_to_local(10)
    used = await d.site.records.create("customer", {"nickname": "Li", "phone": "13800000001"})
    idle = await d.site.records.create("customer", {"nickname": "Wu", "phone": "13800000002"})
    await d.settle()
    ids = [used["id"], idle["id"]]
    assert await d.texts("customer", ids) == [
        (used["id"], "Hi Li, welcome! Your coupon WELCOME10 is waiting."),
        (idle["id"], "Hi Wu, welcome! Your coupon WELCOME10 is waiting."),
    ]
    await d.site.records.update("customer", used["id"], {"coupon_used": True})
    d.clock.advance(days=3, seconds=1)
    await d.settle()
    assert (await d.texts("customer", ids)) == [
        (used["id"], "Hi Li, welcome! Your coupon WELCOME10 is waiting."),
        (idle["id"], "Hi Wu, welcome! Your coupon WELCOME10 is waiting."),
        (idle["id"], "Wu, your coupon WELCOME10 expires soon."),
    ]
    assert "coupon_user" in (await d.site.records.get("customer", used["id"]))["tags"]
    assert "coupon_user" not in ((await d.site.records.get("customer", idle["id"]))["tags"] or [])
    runs = {r["record_id"]: r for r in await d.engine.runs(automation="welcome_new_customer")}
    branch = [
        s
        for s in (await d.engine.run_detail(runs[used["id"]]["id"]))["steps"]
        if s["kind"] == "branch"
    ]
    assert branch[0]["outcome"] == "then"
    d.clock.advance(days=30)
    await d.settle()
    assert len(await d.texts("customer", ids)) == 3  # nothing more, ever


async def unpaid_order_reminder(d: Driver) -> None:
    """Reminders at 15 min, 2 h and 24 h; nothing after payment."""
    await d.use("unpaid_order_reminder")
    customer = await d.site.records.create("customer", {"nickname": "Zhao"})
    order = await d.site.records.create("shop_order", {"customer": customer["id"]})
    paid = await d.site.records.create("shop_order", {"customer": customer["id"]})
    ids = [order["id"], paid["id"]]
    await d.settle()
    d.clock.advance(minutes=14)
    await d.settle()
    assert await d.texts("shop_order", ids) == []
    d.clock.advance(minutes=1, seconds=1)
    await d.settle()
    assert [r for r, _ in await d.texts("shop_order", ids)] == ids  # both at 15 minutes
    await d.site.records.update("shop_order", paid["id"], {"paid": True})
    d.clock.advance(minutes=105)
    await d.settle()
    d.clock.advance(hours=22)
    await d.settle()
    d.clock.advance(days=10)
    await d.settle()
    assert await d.texts("shop_order", ids) == [
        (order["id"], f"Your order #{order['id']} is waiting for payment."),
        (order["id"], f"Order #{order['id']}: still unpaid, pay now to keep it."),
        (order["id"], f"Last call: order #{order['id']} closes soon."),
        (paid["id"], f"Your order #{paid['id']} is waiting for payment."),
    ]
    runs = {r["record_id"]: r["status"] for r in await d.engine.runs(entity="shop_order")}
    assert runs[order["id"]] == "done"
    assert runs[paid["id"]] == "exited"


async def wake_dormant_customer(d: Driver) -> None:
    """Every day at 10:00: customers without a purchase in 90 days get a message and a task."""
    owner = await d.user("rep_wake", ["sales"])
    now = d.clock()
    sleepy = await d.site.records.create(
        "customer",
        {
            "nickname": "Qian",
            "phone": "13900000001",
            "owner": owner,
            "last_order_at": (now - dt.timedelta(days=100)).isoformat(),
        },
    )
    active = await d.site.records.create(
        "customer",
        {
            "nickname": "Sun",
            "phone": "13900000002",
            "owner": owner,
            "last_order_at": (now - dt.timedelta(days=10)).isoformat(),
        },
    )
    await d.settle()
    await d.use("wake_dormant_customer")
    d.jump_to_local(10)
    d.clock.advance(seconds=1)
    await d.settle()
    ids = [sleepy["id"], active["id"]]
    assert await d.texts("customer", ids) == [
        (sleepy["id"], "Qian, we miss you: 20% off this week.")
    ]
    assert "dormant" in (await d.site.records.get("customer", sleepy["id"]))["tags"]
    tasks = await d.site.db.fetch(
        "SELECT title, assignee, about_id FROM task WHERE about_id = {}", [sleepy["id"]]
    )
    assert tasks == [
        {"title": "Call Qian (no purchase in 90 days)", "assignee": owner, "about_id": sleepy["id"]}
    ]
    d.clock.advance(days=1)
    await d.settle()
    assert len(await d.texts("customer", ids)) == 1  # tagged dormant: not woken twice


async def abandoned_cart(d: Driver) -> None:
    """A cart with items left 30 minutes gets one message; a checked-out cart none."""
    await d.use("abandoned_cart")
    customer = await d.site.records.create("customer", {"nickname": "Zhou"})
    left = await d.site.records.create("cart", {"customer": customer["id"]})
    bought = await d.site.records.create("cart", {"customer": customer["id"]})
    await d.site.records.update("cart", left["id"], {"items": 2})
    await d.site.records.update("cart", bought["id"], {"items": 1})
    await d.site.records.update("cart", left["id"], {"items": 3})  # still one run for this cart
    await d.settle()
    d.clock.advance(minutes=10)
    await d.site.records.update("cart", bought["id"], {"checked_out": True})
    await d.settle()
    d.clock.advance(minutes=20, seconds=1)
    await d.settle()
    assert await d.texts("cart", [left["id"], bought["id"]]) == [
        (left["id"], "You left 3 item(s) in your cart.")
    ]
    statuses = sorted(r["status"] for r in await d.engine.runs(automation="abandoned_cart"))
    assert statuses == ["done", "exited"]


async def birthday_coupon(d: Driver) -> None:
    """At 09:00 on the birthday a coupon message, and the timer moves to next year."""
    await d.use("birthday_coupon")
    local = d.clock().astimezone(SHANGHAI)
    tomorrow = local.date() + dt.timedelta(days=1)
    try:
        born = tomorrow.replace(year=tomorrow.year - 30)
    except ValueError:  # 29 February
        born = tomorrow.replace(year=tomorrow.year - 30, day=28)
    customer = await d.site.records.create(
        "customer", {"nickname": "Feng", "phone": "13700000001", "birthday": born.isoformat()}
    )
    await d.settle()
    d.jump_to_local(8, 59)
    await d.settle()
    assert await d.texts("customer", [customer["id"]]) == []
    d.jump_to_local(9, 0)
    d.clock.advance(seconds=1)
    await d.settle()
    assert await d.texts("customer", [customer["id"]]) == [
        (customer["id"], "Happy birthday Feng! Your gift: BDAY50.")
    ]
    timers = await d.site.db.fetch(
        "SELECT due_at FROM jimu_timer WHERE kind = 'date' AND record_id = {}", [customer["id"]]
    )
    assert len(timers) == 1  # next year's
    d.clock.advance(days=2)
    await d.settle()
    assert len(await d.texts("customer", [customer["id"]])) == 1


async def route_new_lead(d: Driver) -> None:
    """Leads go round-robin to the reps of their region; managers hear of those left 3 days."""
    east_1 = await d.user("rep_east_1", ["sales"], "华东")
    east_2 = await d.user("rep_east_2", ["sales"], "华东")
    south = await d.user("rep_south", ["sales"], "华南")
    manager = await d.user("manager_1", ["sales_manager"])
    await d.use("route_new_lead")
    first = await d.site.records.create("lead", {"name": "A Co", "region": "华东"})
    second = await d.site.records.create("lead", {"name": "B Co", "region": "华东"})
    third = await d.site.records.create("lead", {"name": "C Co", "region": "华南"})
    await d.settle()
    owners = [
        (await d.site.records.get("lead", lead["id"]))["owner"] for lead in (first, second, third)
    ]
    assert owners[2] == south
    assert sorted(owners[:2]) == sorted([east_1, east_2])  # round robin within the region
    d.clock.advance(days=1)
    await d.site.records.update("lead", second["id"], {"followed_up": True})
    await d.settle()
    d.clock.advance(days=2, seconds=1)
    await d.settle()
    inbox = await d.site.db.fetch(
        "SELECT user_id, title, body, record_id FROM jimu_inbox WHERE entity = 'lead' "
        "AND record_id IN ({}, {}, {}) ORDER BY id",
        [first["id"], second["id"], third["id"]],
    )
    to_owners = [(r["user_id"], r["record_id"]) for r in inbox if r["title"] == "New lead"]
    # runs may advance in any order on several workers: compare as sets
    assert sorted(to_owners) == sorted(
        zip(owners, [first["id"], second["id"], third["id"]], strict=True)
    )
    escalated = sorted((r["user_id"], r["body"]) for r in inbox if r["title"] != "New lead")
    assert escalated == [
        (manager, "Nobody followed up lead A Co in 3 days."),
        (manager, "Nobody followed up lead C Co in 3 days."),
    ]


SCENARIOS: dict[str, Scenario] = {
    "welcome_new_customer": welcome_new_customer,
    "unpaid_order_reminder": unpaid_order_reminder,
    "wake_dormant_customer": wake_dormant_customer,
    "abandoned_cart": abandoned_cart,
    "birthday_coupon": birthday_coupon,
    "route_new_lead": route_new_lead,
}

__all__ = ["SCENARIOS", "Any", "Driver"]
