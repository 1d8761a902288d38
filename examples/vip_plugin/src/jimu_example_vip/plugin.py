"""Example third-party plugin: VIP membership cards.

Written only against ``jimu_sdk``, as any third party would. It shows the
three things most plugins do: declare an entity, validate and enrich writes
through record hooks, and ship demo data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jimu_sdk import EntityDef, FieldDef, PluginInfo, Site, ValidationFailed, hookimpl

PLUGIN = PluginInfo(
    name="example_vip",
    version="0.1.0",
    label={"en": "VIP cards (example)", "zh-CN": "VIP 会员卡（示例）"},
    description="Example plugin: VIP cards with validated card numbers.",
    kernel=">=0.1,<0.2",
)

_CARD_NO = re.compile(r"^VIP-\d{6}$")

VIP_CARD = EntityDef(
    name="vip_card",
    label={"en": "VIP card", "zh-CN": "VIP 卡"},
    title_field="card_no",
    fields=[
        FieldDef(
            name="card_no",
            type="text",
            required=True,
            unique=True,
            label={"en": "Card number", "zh-CN": "卡号"},
        ),
        FieldDef(
            name="holder", type="text", required=True, label={"en": "Holder", "zh-CN": "持卡人"}
        ),
        FieldDef(
            name="level",
            type="select",
            options={"choices": ["silver", "gold", "diamond"]},
            default="silver",
            label={"en": "Level", "zh-CN": "等级"},
        ),
        FieldDef(
            name="points",
            type="integer",
            default=0,
            options={"min": 0},
            label={"en": "Points", "zh-CN": "积分"},
        ),
        FieldDef(name="issued_on", type="date", label={"en": "Issued on", "zh-CN": "发卡日期"}),
    ],
)


@hookimpl
def jimu_entities() -> Sequence[EntityDef]:
    """The plugin's one entity."""
    return [VIP_CARD]


@hookimpl
def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
    """Normalise card numbers to upper case and refuse malformed ones."""
    if entity.name != "vip_card":
        return
    card_no = str(values.get("card_no", "")).strip().upper()
    if not _CARD_NO.match(card_no):
        raise ValidationFailed.field(
            "card_no", f"{values.get('card_no')!r} is not a card number like VIP-000123"
        )
    values["card_no"] = card_no


@hookimpl
def jimu_before_update(
    site: Site, entity: EntityDef, record: Mapping[str, Any], changes: dict[str, Any]
) -> None:
    """A card's points may not go below zero through an update, and its number never changes."""
    if entity.name != "vip_card":
        return
    if "card_no" in changes and changes["card_no"] != record["card_no"]:
        raise ValidationFailed.field("card_no", "a card number cannot be changed; issue a new card")


@hookimpl
def jimu_fixtures(site: Site, kind: str) -> Mapping[str, Sequence[Mapping[str, Any]]] | None:
    """Three demo cards."""
    if kind != "demo":
        return None
    return {
        "vip_card": [
            {
                "card_no": "VIP-000001",
                "holder": "王芳",
                "level": "gold",
                "points": 1200,
                "issued_on": "2024-03-08",
            },
            {
                "card_no": "vip-000002",
                "holder": "李娜",
                "level": "silver",
                "points": 300,
                "issued_on": "2024-06-18",
            },
            {
                "card_no": "VIP-000003",
                "holder": "Chen Wei",
                "level": "diamond",
                "points": 8800,
                "issued_on": "2023-11-11",
            },
        ]
    }
