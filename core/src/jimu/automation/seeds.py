"""The seed journeys: six customer-operation automations an integrator switches on.

They are plain data (what ``POST /api/v1/meta/automations`` takes), written
over a small vocabulary of entities and fields a store has under some name:

* ``customer``: ``nickname``, ``phone``, ``birthday`` (date), ``tags``,
  ``owner`` (a user id), ``last_order_at`` (datetime), ``coupon_used`` (boolean)
* ``shop_order``: ``customer`` (link), ``paid`` (boolean)
* ``cart``: ``customer`` (link), ``items``, ``checked_out`` (boolean)
* ``lead``: ``name``, ``region``, ``owner`` (a user id), ``followed_up`` (boolean)
* ``task``: ``title``, ``assignee``, ``due_at``, ``about_id``

Messages to customers go through a channel named ``sms`` (configure it, e.g.
as an HTTP channel of the site's SMS gateway); notices to staff go to the
in-app inbox. :func:`seed_journeys` returns them disabled unless asked, with
entity names mapped when a plugin calls its entities otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import msgspec

from jimu.meta.automations import AutomationDef

__all__ = ["SEED_JOURNEYS", "seed_journeys"]

_NOT_PAID = {"!": [{"var": "paid"}]}


def _reminder(step: str, body: str) -> dict[str, Any]:
    return {
        "id": step,
        "kind": "action",
        "action": "send_message",
        "params": {"channel": "sms", "to": "{{ record.customer }}", "body": body},
    }


SEED_JOURNEYS: dict[str, dict[str, Any]] = {
    # 1. Welcome a new customer, check 3 days later whether the coupon was used.
    "welcome_new_customer": {
        "name": "welcome_new_customer",
        "label": {"en": "Welcome a new customer", "zh-CN": "新客欢迎"},
        "trigger": {"kind": "created", "entity": "customer"},
        "reentry": "once",
        "steps": [
            {
                "id": "welcome",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "sms",
                    "to": "{{ customer.phone }}",
                    "body": "Hi {{ customer.nickname }}, welcome! Your coupon WELCOME10 is waiting.",
                    "quiet_hours": {"start": "22:00", "end": "08:00"},
                },
            },
            {"id": "three_days", "kind": "wait", "duration": "3d"},
            {
                "id": "used_coupon",
                "kind": "branch",
                "condition": {"var": "coupon_used"},
                "then": "tag_active",
                "else": "nudge",
            },
            {
                "id": "tag_active",
                "kind": "action",
                "action": "add_tag",
                "params": {"tag": "coupon_user"},
                "next": "end",
            },
            {
                "id": "nudge",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "sms",
                    "to": "{{ customer.phone }}",
                    "body": "{{ customer.nickname }}, your coupon WELCOME10 expires soon.",
                    "quiet_hours": {"start": "22:00", "end": "08:00"},
                },
            },
        ],
    },
    # 2. Remind an unpaid order at 15 minutes, 2 hours and 24 hours; stop once it is paid.
    "unpaid_order_reminder": {
        "name": "unpaid_order_reminder",
        "label": {"en": "Remind unpaid orders", "zh-CN": "未付款提醒"},
        "trigger": {"kind": "created", "entity": "shop_order"},
        "condition": _NOT_PAID,
        "exit_when": {"var": "paid"},
        "steps": [
            # the run starts when the order is created: 15 min, then 2 h and 24 h after creation
            {"id": "at_15_minutes", "kind": "wait", "duration": "15m"},
            _reminder("remind_15m", "Your order #{{ shop_order.id }} is waiting for payment."),
            {"id": "at_2_hours", "kind": "wait", "duration": "105m"},
            _reminder("remind_2h", "Order #{{ shop_order.id }}: still unpaid, pay now to keep it."),
            {"id": "at_24_hours", "kind": "wait", "duration": "22h"},
            _reminder("remind_24h", "Last call: order #{{ shop_order.id }} closes soon."),
        ],
    },
    # 3. Wake customers with no purchase in 90 days; give their owner a task.
    "wake_dormant_customer": {
        "name": "wake_dormant_customer",
        "label": {"en": "Wake dormant customers", "zh-CN": "沉睡客户唤醒"},
        "trigger": {
            "kind": "schedule",
            "cron": "0 10 * * *",
            "entity": "customer",
            "filter": {"<": [{"var": "last_order_at"}, {"add_days": [{"now": []}, -90]}]},
        },
        "condition": {"!": [{"in": ["dormant", {"var": "tags"}]}]},
        "reentry": "not_active",
        "steps": [
            {"id": "tag", "kind": "action", "action": "add_tag", "params": {"tag": "dormant"}},
            {
                "id": "miss_you",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "sms",
                    "to": "{{ customer.phone }}",
                    "body": "{{ customer.nickname }}, we miss you: 20% off this week.",
                    "frequency_cap": {"count": 1, "per": "7d"},
                },
            },
            {
                "id": "call_task",
                "kind": "action",
                "action": "create_task",
                "params": {
                    "title": "Call {{ customer.nickname }} (no purchase in 90 days)",
                    "assignee": "{{ customer.owner }}",
                    "due_in": "2d",
                },
            },
        ],
    },
    # 4. Recover an abandoned cart after 30 minutes.
    "abandoned_cart": {
        "name": "abandoned_cart",
        "label": {"en": "Recover abandoned carts", "zh-CN": "弃购挽回"},
        "trigger": {"kind": "updated", "entity": "cart", "changes": [{"field": "items"}]},
        "condition": {"and": [{">": [{"var": "items"}, 0]}, {"!": [{"var": "checked_out"}]}]},
        "exit_when": {"or": [{"var": "checked_out"}, {"==": [{"var": "items"}, 0]}]},
        "reentry": "not_active",
        "steps": [
            {"id": "half_hour", "kind": "wait", "duration": "30m"},
            {
                "id": "recover",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "sms",
                    "to": "{{ record.customer }}",
                    "body": "You left {{ cart.items }} item(s) in your cart.",
                    "frequency_cap": {"count": 1, "per": "1d"},
                },
            },
        ],
    },
    # 5. Send a birthday coupon at 09:00 on the customer's birthday, every year.
    "birthday_coupon": {
        "name": "birthday_coupon",
        "label": {"en": "Birthday coupon", "zh-CN": "生日券"},
        "trigger": {
            "kind": "date",
            "entity": "customer",
            "field": "birthday",
            "at": "09:00",
            "yearly": True,
        },
        "steps": [
            {
                "id": "coupon",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "sms",
                    "to": "{{ customer.phone }}",
                    "body": "Happy birthday {{ customer.nickname }}! Your gift: BDAY50.",
                },
            },
            {
                "id": "tag",
                "kind": "action",
                "action": "add_tag",
                "params": {"tag": "birthday_gift"},
            },
        ],
    },
    # 6. Route a new lead to its region's rep; tell the managers after 3 days without follow-up.
    "route_new_lead": {
        "name": "route_new_lead",
        "label": {"en": "Route new leads", "zh-CN": "线索分配"},
        "trigger": {"kind": "created", "entity": "lead"},
        "steps": [
            {
                "id": "assign",
                "kind": "action",
                "action": "assign_owner",
                "params": {"role": "sales", "strategy": "round_robin", "region_field": "region"},
            },
            {
                "id": "tell_owner",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "inbox",
                    "to": "{{ lead.owner }}",
                    "subject": "New lead",
                    "body": "New lead {{ lead.name }} ({{ lead.region }}) is yours.",
                },
            },
            {
                "id": "follow_up",
                "kind": "wait",
                "condition": {"var": "followed_up"},
                "timeout": "3d",
                "on_timeout": "escalate",
                "next": "end",
            },
            {
                "id": "escalate",
                "kind": "action",
                "action": "send_message",
                "params": {
                    "channel": "inbox",
                    "to": "role:sales_manager",
                    "subject": "Lead not followed up",
                    "body": "Nobody followed up lead {{ lead.name }} in 3 days.",
                },
            },
        ],
    },
}


def seed_journeys(
    *, enabled: bool = False, entities: Mapping[str, str] | None = None
) -> list[AutomationDef]:
    """The six seed journeys as definitions (``entities`` renames entities, e.g. ``lead`` -> ``crm_lead``)."""
    renames = dict(entities or {})
    found = []
    for data in SEED_JOURNEYS.values():
        copied = copy.deepcopy(data)
        copied["enabled"] = enabled
        trigger = copied["trigger"]
        trigger["entity"] = renames.get(trigger["entity"], trigger["entity"])
        found.append(msgspec.convert(copied, AutomationDef))
    return found
