"""Imports into entities with kernel-computed fields, passwords and a default form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jimu.io import ExportOptions, ImportOptions, ImportOutcome, Source, import_file, open_export
from jimu.meta import EntityDef, FieldDef
from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.io.helpers import csv_bytes, records_of, run, xlsx_bytes

ORDER = EntityDef(
    name="shop_order",
    fields=[
        FieldDef(
            name="order_no",
            type="auto_number",
            options={"pattern": "ORD-{#####}"},
            label={"zh-CN": "订单号"},
        ),
        FieldDef(name="buyer", type="text", required=True, label={"zh-CN": "买家"}),
        FieldDef(name="mobile", type="phone", label={"zh-CN": "手机"}),
        FieldDef(name="qty", type="integer", label={"zh-CN": "数量"}),
        FieldDef(name="price", type="decimal", label={"zh-CN": "单价"}),
        FieldDef(
            name="total",
            type="formula",
            options={"rule": {"*": [{"var": "qty"}, {"var": "price"}]}, "returns": "decimal"},
            label={"zh-CN": "金额"},
        ),
        FieldDef(name="secret", type="password", label={"zh-CN": "密码"}),
        FieldDef(name="placed_at", type="created_time", label={"zh-CN": "下单时间"}),
    ],
)


@pytest.fixture
def site(new_site: Callable[..., Site]) -> Site:
    site = new_site()

    async def create(opened: Site) -> None:
        await opened.create_entity(ORDER)

    run(site, create)
    return site


def do_import(site: Site, data: bytes, name: str, **options: Any) -> ImportOutcome:
    return run(
        site,
        lambda opened: import_file(
            opened, "shop_order", Source(data, name), ImportOptions(**options)
        ),
    )


def test_computed_fields_are_filled_and_cells_normalised(site: Site) -> None:
    rows: list[list[Any]] = [
        ["买家", "手机", "数量", "单价", "密码"],
        ["王芳", 13800138000, 2, 9.5, "s3cret-pass"],
        ["李娜", "139 0000 0000", 1, "100", None],
    ]
    refused = do_import(site, xlsx_bytes(rows), "orders.xlsx")
    assert refused.errors[0]["reason"] == "passwords are not imported; set them through the API"
    outcome = do_import(site, xlsx_bytes([row[:4] for row in rows]), "orders.xlsx")
    assert outcome.status == "succeeded", outcome.errors
    first, second = records_of(site, "shop_order")
    assert (first["order_no"], second["order_no"]) == ("ORD-00001", "ORD-00002")
    assert first["mobile"] == "+8613800138000" and second["mobile"] == "+8613900000000"
    assert str(first["total"]) == "19.00" and str(second["total"]) == "100.00"
    assert first["placed_at"] is not None
    assert "secret" not in first  # a password is never read back


def test_computed_columns_of_an_export_are_ignored_and_can_find_records(site: Site) -> None:
    do_import(site, csv_bytes([["买家", "数量", "单价"], ["王芳", "2", "9.50"]]), "a.csv")

    async def export(opened: Site) -> bytes:
        exported = await open_export(opened, "shop_order", ExportOptions(header="label"))
        return b"".join([piece async for piece in exported.content])

    data = run(site, export)
    header = data.decode("utf-8-sig").splitlines()[0].split(",")
    assert header == [
        "ID",
        "订单号",
        "买家",
        "手机",
        "数量",
        "单价",
        "金额",
        "下单时间",
    ]  # no password
    again = do_import(site, data, "orders.csv")
    assert again.status == "succeeded", again.errors
    ignored = set(again.summary()["ignored_columns"])
    assert {"订单号", "金额", "下单时间"} <= ignored
    changed = csv_bytes([["订单号", "数量"], ["ORD-00001", "3"]])
    update = do_import(site, changed, "u.csv", mode="update", key="order_no")
    assert (update.status, update.updated) == ("succeeded", 1), update.errors
    totals = {r["order_no"]: str(r["total"]) for r in records_of(site, "shop_order")}
    assert totals == {"ORD-00001": "28.50", "ORD-00002": "19.00"}


def test_a_bad_phone_names_its_row(site: Site) -> None:
    outcome = do_import(site, csv_bytes([["买家", "手机"], ["王芳", "12345"]]), "p.csv")
    assert outcome.status == "failed"
    assert [(e["row"], e["column"], e["field"]) for e in outcome.errors] == [(2, "手机", "mobile")]


def test_the_entity_default_form_applies_to_imports(site: Site) -> None:
    form = {
        "name": "order_entry",
        "entity": "shop_order",
        "default": True,
        "pages": [
            {
                "sections": [
                    {
                        "fields": [
                            {"field": "buyer"},
                            {"field": "qty", "required": True},
                            {"field": "price"},
                        ]
                    }
                ]
            }
        ],
    }
    with site_client(site) as client:
        response = client.post("/api/v1/meta/forms", json=form)
        assert response.status_code == 201, response.text
    outcome = do_import(
        site, csv_bytes([["买家", "数量", "单价"], ["王芳", "", "1"], ["李娜", "1", "2"]]), "f.csv"
    )
    assert outcome.status == "failed"
    assert [(e["row"], e["field"]) for e in outcome.errors] == [(2, "qty")]
    partial = do_import(
        site,
        csv_bytes([["买家", "数量", "单价"], ["王芳", "", "1"], ["李娜", "1", "2"]]),
        "f.csv",
        valid_rows=True,
    )
    assert (partial.created, partial.failed) == (1, 1)
    assert [r["buyer"] for r in records_of(site, "shop_order")] == ["李娜"]
