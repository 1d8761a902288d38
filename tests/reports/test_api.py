"""The report API over HTTP: ad-hoc runs, saved reports, exports, heavy reports as jobs,
chart types and kinds, dashboards per site and per user, and the 422s of bad definitions."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from jimu.site import Site
from jimu_sdk.testing import site_client

from .helpers import generate, load, run

CUSTOMERS, ORDERS = generate(seed=3, customers=10, orders=200)

MONTHLY: dict[str, Any] = {
    "name": "monthly_sales",
    "entity": "shop_order",
    "label": {"en": "Monthly sales", "zh-CN": "月度销售"},
    "measures": [
        {"name": "orders", "agg": "count", "label": {"en": "Orders", "zh-CN": "订单数"}},
        {
            "name": "revenue",
            "agg": "sum",
            "field": "amount",
            "label": {"en": "Revenue", "zh-CN": "销售额"},
        },
    ],
    "dimensions": [
        {"field": "placed_at", "bucket": "month", "label": {"en": "Month", "zh-CN": "月份"}}
    ],
    "parameters": [
        {"name": "period", "type": "date_range", "field": "placed_at"},
        {"name": "channel", "type": "text", "field": "channel"},
    ],
    "chart": {"type": "combo", "options": {"line_measures": ["revenue"]}},
}


def _site(new_site: Callable[..., Site]) -> Site:
    site = new_site()
    run(site, lambda s: load(s, CUSTOMERS, ORDERS))
    return site


def _web_orders_in(months: tuple[str, ...]) -> int:
    from .helpers import bucket_of, local

    return sum(
        1
        for o in ORDERS
        if o["channel"] == "web" and bucket_of(local(o["placed_at"]), "month") in months
    )


def test_run_save_data_and_export(new_site: Callable[..., Site]) -> None:
    site = _site(new_site)
    with site_client(site) as client:
        ad_hoc = client.post(
            "/api/v1/reports/run",
            json={
                "report": MONTHLY,
                "params": {
                    "period": {"start": "2024-01-01", "end": "2024-02-29"},
                    "channel": "web",
                },
            },
        )
        assert ad_hoc.status_code == 200, ad_hoc.text
        body = ad_hoc.json()
        assert [row["placed_at_month"] for row in body["rows"]] == ["2024-01-01", "2024-02-01"]
        assert sum(row["orders"] for row in body["rows"]) == _web_orders_in(
            ("2024-01-01", "2024-02-01")
        )
        assert [c["label"] for c in body["columns"]] == ["月份", "订单数", "销售额"]
        assert body["params"]["period"] == {"start": "2024-01-01", "end": "2024-02-29"}

        saved = client.post("/api/v1/meta/reports", json=MONTHLY)
        assert saved.status_code == 201, saved.text
        assert saved.json()["version"] == 1
        assert [r["name"] for r in client.get("/api/v1/meta/reports").json()["data"]] == [
            "monthly_sales"
        ]
        assert client.get("/api/v1/meta/reports/monthly_sales").json()["chart"]["type"] == "combo"

        data = client.get(
            "/api/v1/reports/monthly_sales/data",
            params={"period": "2024-01-01..2024-02-29", "channel": "web"},
        )
        assert data.status_code == 200
        assert data.json()["rows"] == body["rows"]

        exported = client.get(
            "/api/v1/reports/monthly_sales/export",
            params={"format": "csv", "period": "2024-01-01..2024-02-29", "channel": "web"},
        )
        assert exported.status_code == 200
        assert "monthly_sales-" in exported.headers["content-disposition"]
        lines = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
        assert lines[0] == ["月份", "订单数", "销售额"]
        assert [line[0] for line in lines[1:]] == ["2024-01-01", "2024-02-01"]
        assert [int(line[1]) for line in lines[1:]] == [row["orders"] for row in body["rows"]]

        xlsx = client.post(
            "/api/v1/reports/run",
            json={
                "report": MONTHLY,
                "params": {"period": "2024-01-01..2024-02-29"},
                "format": "xlsx",
            },
        )
        assert xlsx.status_code == 200
        sheet = (
            CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content))
            .get_sheet_by_index(0)
            .to_python()
        )
        assert sheet[0] == ["月份", "订单数", "销售额"]
        assert len(sheet) == 3

        bad_format = client.get("/api/v1/reports/monthly_sales/export", params={"format": "pdf"})
        assert bad_format.status_code == 422
        assert bad_format.json()["errors"][0]["field"] == "format"
        assert client.get("/api/v1/reports/nope/data").status_code == 404
        assert client.delete("/api/v1/meta/reports/monthly_sales").status_code == 200
        assert client.get("/api/v1/meta/reports/monthly_sales").status_code == 404


def test_chart_types_and_report_kinds(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        charts = client.get("/api/v1/meta/chart-types").json()["data"]
        names = {chart["name"] for chart in charts}
        assert len(names) >= 20
        assert {
            "number",
            "line",
            "area",
            "bar",
            "stacked_bar",
            "horizontal_bar",
            "combo",
            "pie",
            "donut",
            "funnel",
            "gauge",
            "progress",
            "table",
            "pivot",
            "scatter",
            "heatmap",
            "treemap",
            "sankey",
            "waterfall",
            "china_map",
            "calendar_heatmap",
            "radar",
        } <= names
        pie = next(chart for chart in charts if chart["name"] == "pie")
        assert pie["dimensions"] == [1, 1] and pie["label"] == "饼图"
        kinds = client.get("/api/v1/meta/report-kinds").json()["data"]
        assert [kind["name"] for kind in kinds] == ["aggregate", "funnel", "cohort", "rfm"]
        assert "actor" in str(kinds[1]["options"])


def _wait_for_job(client: Any, url: str) -> dict[str, Any]:
    for _ in range(200):
        job = client.get(url).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {url} did not finish")


def test_heavy_report_runs_as_a_job_and_is_served_from_its_cache(
    new_site: Callable[..., Site],
) -> None:
    site = _site(new_site)
    heavy = {**MONTHLY, "name": "heavy", "cache_seconds": 3600}
    with site_client(site) as client:
        assert client.post("/api/v1/meta/reports", json=heavy).status_code == 201
        first = client.get(
            "/api/v1/reports/heavy/data", params={"period": "2024-01-01..2024-03-31"}
        )
        assert first.status_code == 202
        job = _wait_for_job(client, first.json()["job"]["url"])
        assert job["status"] == "succeeded", job
        assert job["kind"] == "report"
        cached = client.get(
            "/api/v1/reports/heavy/data", params={"period": "2024-01-01..2024-03-31"}
        )
        assert cached.status_code == 200
        body = cached.json()
        assert len(body["rows"]) == 3
        assert 0 <= body["cached"]["age_seconds"] < 60
        assert "computed_at" in body["cached"]
        # other parameters: another cache slot, computed by another job
        other = client.get(
            "/api/v1/reports/heavy/data", params={"period": "2024-02-01..2024-03-31"}
        )
        assert other.status_code == 202
        _wait_for_job(client, other.json()["job"]["url"])
        # refresh: the cached rows now, marked stale, while a job recomputes them
        refreshed = client.get(
            "/api/v1/reports/heavy/data",
            params={"period": "2024-01-01..2024-03-31", "refresh": "true"},
        )
        assert refreshed.status_code == 200
        assert refreshed.json()["cached"]["stale"] is True
        _wait_for_job(client, refreshed.json()["cached"]["job"]["url"])
        bad = client.get("/api/v1/reports/heavy/data", params={"period": "last week"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "params.period"


def test_dashboards_per_site_and_per_user(new_site: Callable[..., Site]) -> None:
    site = _site(new_site)

    async def users(site: Site) -> None:
        await site.auth.add_user("ann", super_user=True)
        await site.auth.add_user("bob", super_user=True)

    run(site, users)
    board = {
        "name": "sales",
        "label": "Sales",
        "parameters": [
            {
                "name": "period",
                "type": "date_range",
                "default": {"start": "2024-01-01", "end": "2024-01-31"},
            }
        ],
        "refresh_seconds": 300,
        "cards": [
            {"report": "monthly_sales", "x": 0, "y": 0, "w": 6, "h": 4},
            {
                "report": "monthly_sales",
                "x": 6,
                "y": 0,
                "w": 6,
                "h": 4,
                "chart": {"type": "table"},
                "params": {"channel": "app"},
            },
        ],
    }
    with site_client(site) as admin:
        assert admin.post("/api/v1/meta/reports", json=MONTHLY).status_code == 201
        saved = admin.post("/api/v1/meta/dashboards", params={"scope": "site"}, json=board)
        assert saved.status_code == 201, saved.text
    with site_client(site, user="ann") as ann:
        mine = {**board, "label": "Ann's sales", "cards": board["cards"][:1]}
        assert ann.post("/api/v1/meta/dashboards", json=mine).status_code == 201
        listed = ann.get("/api/v1/meta/dashboards").json()["data"]
        assert sorted((d["name"], d["owner"]) for d in listed) == [
            ("sales", "site"),
            ("sales", "user"),
        ]
        got = ann.get("/api/v1/meta/dashboards/sales").json()
        assert (got["owner"], got["label"]) == ("user", "Ann's sales")
        data = ann.get(
            "/api/v1/dashboards/sales/data", params={"period": "2024-02-01..2024-02-29"}
        ).json()
        assert len(data["cards"]) == 1
        assert data["cards"][0]["data"]["rows"][0]["placed_at_month"] == "2024-02-01"
    with site_client(site, user="bob") as bob:
        got = bob.get("/api/v1/meta/dashboards/sales").json()
        assert (got["owner"], got["label"]) == ("site", "Sales")
        data = bob.get("/api/v1/dashboards/sales/data").json()  # the shared default period
        assert data["params"]["period"] == {"start": "2024-01-01", "end": "2024-01-31"}
        first, second = data["cards"]
        assert [row["placed_at_month"] for row in first["data"]["rows"]] == ["2024-01-01"]
        assert second["data"]["chart"]["type"] == "table"
        app_january = sum(
            1
            for o in ORDERS
            if o["channel"] == "app"
            and o["placed_at"] >= "2023-12-31T16"
            and o["placed_at"] < "2024-01-31T16"
        )
        assert second["data"]["rows"][0]["orders"] == app_january
        bad = bob.post(
            "/api/v1/meta/dashboards", json={"name": "x", "cards": [{"report": "missing"}]}
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "cards[0].report"
        off_grid = bob.post(
            "/api/v1/meta/dashboards",
            json={"name": "x", "cards": [{"report": "monthly_sales", "x": 8, "w": 6}]},
        )
        assert off_grid.status_code == 422
        assert (
            bob.delete("/api/v1/meta/dashboards/sales").status_code == 404
        )  # bob has none of his own


BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"measures": [{"name": "n", "agg": "count"}], "dimensions": [{"field": "colour"}]},
        "dimensions[0].field",
        "unknown field 'colour'",
    ),
    (
        {"measures": [{"name": "s", "agg": "sum", "field": "channel"}]},
        "measures[0].field",
        "sum needs a number field",
    ),
    (
        {
            "measures": [{"name": "n", "agg": "count"}],
            "dimensions": [{"field": "placed_at", "bucket": "fortnight"}],
        },
        "dimensions[0].bucket",
        "unknown time bucket 'fortnight'",
    ),
    (
        {
            "measures": [{"name": "n", "agg": "count"}],
            "dimensions": [{"field": "channel", "bucket": "month"}],
        },
        "dimensions[0].bucket",
        "need a date or datetime field",
    ),
    (
        {"measures": [{"name": "n", "agg": "median", "field": "amount"}]},
        "measures[0].agg",
        "unknown aggregation 'median'",
    ),
    (
        {
            "measures": [
                {"name": "n", "agg": "count"},
                {"name": "r", "expr": {"/": [{"var": "n"}, {"var": "x"}]}},
            ]
        },
        "measures[1].expr./[1]",
        "unknown measure 'x'",
    ),
    (
        {
            "measures": [
                {"name": "n", "agg": "count"},
                {"name": "r", "expr": {"log": [{"var": "n"}]}},
            ]
        },
        "measures[1].expr",
        "operator 'log' is not allowed",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "dimensions": [{"field": "customer.colour"}]},
        "dimensions[0].field",
        "unknown field 'colour' of customer",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "dimensions": [{"field": "channel.name"}]},
        "dimensions[0].field",
        "is not a link",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "filter": {"==": [{"var": "colour"}, 1]}},
        "filter",
        "colour",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "chart": {"type": "pie"}},
        "chart.type",
        "a pie chart needs 1 dimensions",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "chart": {"type": "hologram"}},
        "chart.type",
        "unknown chart type 'hologram'",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "kind": "magic"},
        "kind",
        "unknown report kind 'magic'",
    ),
    (
        {"measures": [{"name": "n", "agg": "count"}], "sort": [{"by": "nothing"}]},
        "sort[0].by",
        "neither a measure nor a dimension",
    ),
    (
        {
            "measures": [{"name": "n", "agg": "count"}],
            "cumulative": ["n"],
            "top": {"n": 0, "by": "n"},
        },
        "top.n",
        "must be from 1 to 1000",
    ),
    (
        {"kind": "funnel", "options": {"actor": "customer", "steps": [{"filter": True}]}},
        "options.steps",
        "2 to 20 steps",
    ),
    (
        {"kind": "rfm", "options": {"customer": "customer", "amount": "channel"}},
        "options.amount",
        "needs a number field",
    ),
    (
        {"kind": "cohort", "options": {"actor": "customer", "bucket": "decade"}},
        "options.bucket",
        "Invalid enum value 'decade'",
    ),
    (
        {"entity": "nothing", "measures": [{"name": "n", "agg": "count"}]},
        "entity",
        "unknown entity 'nothing'",
    ),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_definitions_are_a_422_naming_the_part(new_site: Callable[..., Site]) -> None:
    site = new_site()
    run(site, lambda s: load(s, CUSTOMERS[:1], ORDERS[:1]))
    with site_client(site) as client:
        for definition, field, reason in BAD:
            body = {"name": "bad", "entity": "shop_order", **definition}
            for response in (
                client.post("/api/v1/reports/run", json={"report": body}),
                client.post("/api/v1/meta/reports", json=body),
            ):
                assert response.status_code == 422, (definition, response.text)
                problem = response.json()
                assert problem["errors"][0]["field"] == field, (definition, problem)
                assert reason in problem["errors"][0]["reason"], (definition, problem)
        unknown_param = client.post(
            "/api/v1/reports/run",
            json={"report": {**MONTHLY}, "params": {"region": "north"}},
        )
        assert unknown_param.status_code == 422
        assert unknown_param.json()["errors"][0]["field"] == "params.region"
        shape = client.post("/api/v1/reports/run", json={"report": {"name": "x"}})
        assert shape.status_code == 422
        assert shape.json()["errors"][0]["field"] == "report.entity"


def test_openapi_lists_the_report_routes(new_site: Callable[..., Site]) -> None:
    site = new_site()
    with site_client(site) as client:
        paths = client.get("/schema").json()["paths"]
        for path in (
            "/api/v1/reports/run",
            "/api/v1/meta/reports",
            "/api/v1/reports/{name}/data",
            "/api/v1/reports/{name}/export",
            "/api/v1/meta/dashboards",
            "/api/v1/dashboards/{name}/data",
            "/api/v1/meta/chart-types",
        ):
            assert path in paths, path
