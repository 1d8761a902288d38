"""Products, customers and orders of a small online tea shop, with sample data.

The data is generated from a fixed seed, so every demo site is the same.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from jimu_sdk import EntityDef, FieldDef, PluginInfo, Site, hookimpl

PLUGIN = PluginInfo(
    name="demo_store",
    version="0.1.0",
    label={"en": "Demo store", "zh-CN": "演示店铺"},
    description="Sample products, customers and orders for `jimu demo`.",
    kernel=">=0.1,<0.2",
)

CITIES = ["上海", "北京", "杭州", "广州", "深圳", "成都", "南京", "武汉"]
CHANNELS = ["tmall", "jd", "douyin", "wechat", "offline"]
STATUSES = ["unpaid", "paid", "shipped", "completed", "refunded"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "霞",
]
TEAS = [
    ("西湖龙井", "green"),
    ("碧螺春", "green"),
    ("黄山毛峰", "green"),
    ("铁观音", "oolong"),
    ("大红袍", "oolong"),
    ("凤凰单丛", "oolong"),
    ("普洱熟茶", "dark"),
    ("普洱生茶", "dark"),
    ("安化黑茶", "dark"),
    ("祁门红茶", "black"),
    ("正山小种", "black"),
    ("滇红金芽", "black"),
    ("白毫银针", "white"),
    ("白牡丹", "white"),
    ("寿眉", "white"),
    ("茉莉花茶", "scented"),
]

PRODUCT = EntityDef(
    name="product",
    label={"en": "Product", "zh-CN": "商品"},
    title_field="name",
    fields=[
        FieldDef(
            name="sku",
            type="text",
            required=True,
            unique=True,
            label={"en": "SKU", "zh-CN": "货号"},
        ),
        FieldDef(name="name", type="text", required=True, label={"en": "Name", "zh-CN": "名称"}),
        FieldDef(
            name="category",
            type="select",
            options={"choices": ["green", "oolong", "dark", "black", "white", "scented"]},
            label={"en": "Category", "zh-CN": "品类"},
        ),
        FieldDef(
            name="price",
            type="decimal",
            options={"precision": 12, "scale": 2},
            label={"en": "Price", "zh-CN": "价格"},
        ),
        FieldDef(
            name="active", type="boolean", default=True, label={"en": "On sale", "zh-CN": "在售"}
        ),
    ],
)

CUSTOMER = EntityDef(
    name="customer",
    label={"en": "Customer", "zh-CN": "客户"},
    title_field="name",
    fields=[
        FieldDef(name="name", type="text", required=True, label={"en": "Name", "zh-CN": "姓名"}),
        FieldDef(
            name="phone",
            type="text",
            options={"max_length": 20},
            unique=True,
            label={"en": "Phone", "zh-CN": "手机号"},
        ),
        FieldDef(name="email", type="email", label={"en": "Email", "zh-CN": "邮箱"}),
        FieldDef(
            name="city",
            type="select",
            options={"choices": CITIES},
            indexed=True,
            label={"en": "City", "zh-CN": "城市"},
        ),
        FieldDef(name="birthday", type="date", label={"en": "Birthday", "zh-CN": "生日"}),
        FieldDef(
            name="member_since", type="datetime", label={"en": "Member since", "zh-CN": "注册时间"}
        ),
        FieldDef(
            name="total_spent",
            type="decimal",
            options={"precision": 14, "scale": 2},
            label={"en": "Total spent", "zh-CN": "累计消费"},
        ),
        FieldDef(name="tags", type="json", label={"en": "Tags", "zh-CN": "标签"}),
        FieldDef(name="owner", type="user", label={"en": "Owner", "zh-CN": "负责人"}),
    ],
)

ORDER = EntityDef(
    name="sales_order",
    label={"en": "Order", "zh-CN": "订单"},
    title_field="order_no",
    fields=[
        FieldDef(
            name="order_no",
            type="text",
            required=True,
            unique=True,
            label={"en": "Order number", "zh-CN": "订单号"},
        ),
        FieldDef(
            name="customer",
            type="link",
            required=True,
            options={"target": "customer"},
            label={"en": "Customer", "zh-CN": "客户"},
        ),
        FieldDef(
            name="product",
            type="link",
            options={"target": "product"},
            label={"en": "Product", "zh-CN": "商品"},
        ),
        FieldDef(
            name="quantity",
            type="integer",
            options={"min": 1},
            default=1,
            label={"en": "Quantity", "zh-CN": "数量"},
        ),
        FieldDef(
            name="amount",
            type="decimal",
            options={"precision": 14, "scale": 2},
            label={"en": "Amount", "zh-CN": "金额"},
        ),
        FieldDef(
            name="status",
            type="select",
            options={"choices": STATUSES},
            indexed=True,
            label={"en": "Status", "zh-CN": "状态"},
        ),
        FieldDef(
            name="channel",
            type="select",
            options={"choices": CHANNELS},
            label={"en": "Channel", "zh-CN": "渠道"},
        ),
        FieldDef(
            name="ordered_at",
            type="datetime",
            indexed=True,
            label={"en": "Ordered at", "zh-CN": "下单时间"},
        ),
    ],
)


@hookimpl
def jimu_entities() -> Sequence[EntityDef]:
    """Products, customers and orders."""
    return [PRODUCT, CUSTOMER, ORDER]


def demo_data(
    customers: int = 300, orders: int = 1500, seed: int = 20241111
) -> dict[str, list[dict[str, Any]]]:
    """Generate the demo records; the same ``seed`` gives the same data."""
    rng = random.Random(seed)
    china = dt.timezone(dt.timedelta(hours=8))
    products = []
    prices = []
    for index, (name, category) in enumerate(TEAS, start=1):
        price = Decimal(rng.randrange(3800, 128800)) / 100
        prices.append(price)
        products.append(
            {
                "sku": f"TEA-{index:04d}",
                "name": name,
                "category": category,
                "price": str(price),
                "active": rng.random() > 0.1,
            }
        )
    people = []
    for index in range(1, customers + 1):
        name = (
            rng.choice(SURNAMES)
            + rng.choice(GIVEN)
            + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
        )
        joined = dt.datetime(2022, 1, 1, tzinfo=china) + dt.timedelta(
            minutes=rng.randrange(0, 2 * 365 * 24 * 60)
        )
        people.append(
            {
                "name": name,
                "phone": f"1{rng.choice('3456789')}{index:09d}",
                "email": f"user{index}@example.cn" if rng.random() < 0.7 else None,
                "city": rng.choice(CITIES),
                "birthday": (
                    dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(0, 40 * 365))
                ).isoformat(),
                "member_since": joined.isoformat(),
                "total_spent": "0.00",
                "tags": rng.sample(
                    ["vip", "wholesale", "new", "gift", "loyal"], k=rng.randrange(0, 3)
                ),
            }
        )
    spent = [Decimal(0)] * customers
    sales = []
    for index in range(1, orders + 1):
        customer = rng.randrange(customers)
        product = rng.randrange(len(products))
        quantity = rng.choice([1, 1, 1, 2, 2, 3, 5])
        amount = prices[product] * quantity
        status = rng.choices(STATUSES, weights=[5, 10, 15, 65, 5])[0]
        if status in {"paid", "shipped", "completed"}:
            spent[customer] += amount
        ordered = dt.datetime(2024, 1, 1, tzinfo=china) + dt.timedelta(
            minutes=rng.randrange(0, 330 * 24 * 60)
        )
        sales.append(
            {
                "order_no": f"ORD-2024-{index:06d}",
                "customer": customer + 1,
                "product": product + 1,
                "quantity": quantity,
                "amount": str(amount),
                "status": status,
                "channel": rng.choice(CHANNELS),
                "ordered_at": ordered.isoformat(),
            }
        )
    for person, total in zip(people, spent, strict=True):
        person["total_spent"] = str(total.quantize(Decimal("0.01")))
    return {"product": products, "customer": people, "sales_order": sales}


@hookimpl
def jimu_fixtures(site: Site, kind: str) -> Mapping[str, Sequence[Mapping[str, Any]]] | None:
    """Sample data for demo sites (nothing for ``seed``: the store starts empty)."""
    return demo_data() if kind == "demo" else None
