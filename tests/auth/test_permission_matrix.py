"""A role that may not read field F (phone) or rows R (other regions, not owned) never sees them.

Every way data leaves is tried: list, get, the query endpoint, filters on F
(directly and through a link), sorting by F, asking for F by name, export,
metadata and the OpenAPI document; and every way data goes in: create,
update, bulk and import. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from openapi_spec_validator import validate as validate_openapi

from jimu.site import Site
from jimu_sdk.testing import site_client
from tests.auth import shop

Clients = tuple[TestClient[Any], TestClient[Any], dict[str, Any]]


@pytest.fixture
def clients(new_site: Callable[..., Site]) -> Iterator[Clients]:
    """(admin client, sales-rep client, seeded ids) on one site."""
    site = new_site(plugins=["auth_shop"], extra_plugins={"auth_shop": shop})
    with site_client(site) as admin:
        seeded = shop.seed(admin)
        token = admin.post(
            "/api/v1/auth/tokens", json={"name": "rep", "user_id": seeded["rep_id"]}
        ).json()["token"]
        rep = TestClient(admin.app)
        rep.headers["Authorization"] = f"Bearer {token}"
        rep.blocking_portal = admin.blocking_portal  # the same running app
        yield admin, rep, seeded


def _ids(page: dict[str, Any]) -> list[int]:
    return sorted(record["id"] for record in page["data"])


def test_list_shows_only_allowed_rows_without_the_hidden_field(clients: Clients) -> None:
    admin, rep, seeded = clients
    everything = admin.get("/api/v1/records/customer", params={"count": "exact"}).json()
    assert everything["page"]["total"] == 6 and "phone" in everything["data"][0]
    page = rep.get("/api/v1/records/customer", params={"count": "exact"}).json()
    assert _ids(page) == seeded["visible"]
    assert page["page"]["total"] == 3  # counts are over the allowed rows too
    assert all("phone" not in record for record in page["data"])
    assert all({"name", "region", "level"} <= set(record) for record in page["data"])


def test_get_hides_the_field_and_a_hidden_row_is_a_404(clients: Clients) -> None:
    _, rep, seeded = clients
    visible = rep.get(f"/api/v1/records/customer/{seeded['visible'][0]}")
    assert visible.status_code == 200 and "phone" not in visible.json()
    hidden = rep.get(f"/api/v1/records/customer/{seeded['hidden'][0]}")
    assert hidden.status_code == 404  # not 403: the answer does not tell that it exists
    missing = rep.get("/api/v1/records/customer/999999")
    assert missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": json.dumps({"==": [{"var": "phone"}, "13800000004"]})},
        {"filter": json.dumps({"in": ["138", {"var": "phone"}]})},
        {"sort": "phone"},
        {"sort": "-phone"},
        {"fields": "name,phone"},
    ],
    ids=["filter-equal", "filter-substring", "sort", "sort-desc", "fields"],
)
def test_filtering_sorting_or_selecting_the_hidden_field_is_refused(
    clients: Clients, params: dict[str, str]
) -> None:
    _, rep, _ = clients
    response = rep.get("/api/v1/records/customer", params=params)
    assert response.status_code == 403, response.text
    assert "phone" in response.json()["detail"]


def test_the_query_endpoint_applies_the_same_rules(clients: Clients) -> None:
    _, rep, seeded = clients
    page = rep.post("/api/v1/records/customer/query", json={"limit": 1000}).json()
    assert _ids(page) == seeded["visible"] and all("phone" not in r for r in page["data"])
    refused = rep.post(
        "/api/v1/records/customer/query", json={"filter": {"<": [{"var": "phone"}, "2"]}}
    )
    assert refused.status_code == 403
    by_region = rep.post(
        "/api/v1/records/customer/query", json={"filter": {"==": [{"var": "region"}, "north"]}}
    ).json()
    assert by_region["data"] == []  # the filter cannot widen the rows


def test_a_filter_through_a_link_cannot_read_the_hidden_field(clients: Clients) -> None:
    _, rep, _ = clients
    through = rep.get(
        "/api/v1/records/purchase",
        params={"filter": json.dumps({"==": [{"var": "customer.phone"}, "13800000004"]})},
    )
    assert through.status_code == 403 and "phone" in through.json()["detail"]
    allowed = rep.get(
        "/api/v1/records/purchase",
        params={"filter": json.dumps({"==": [{"var": "customer.region"}, "east"]})},
    )
    assert allowed.status_code == 200 and len(allowed.json()["data"]) == 2


def test_export_leaves_out_the_field_and_the_rows(clients: Clients) -> None:
    admin, rep, seeded = clients
    exported = rep.get(
        "/api/v1/records/customer/export", params={"format": "csv", "header": "name"}
    )
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert "phone" not in rows[0]
    assert sorted(int(row["id"]) for row in rows) == seeded["visible"]
    asked = rep.get(
        "/api/v1/records/customer/export", params={"format": "csv", "fields": "name,phone"}
    )
    assert asked.status_code == 403
    filtered = rep.get(
        "/api/v1/records/customer/export",
        params={"format": "csv", "filter": json.dumps({"==": [{"var": "phone"}, "1"]})},
    )
    assert filtered.status_code == 403
    full = admin.get("/api/v1/records/customer/export", params={"format": "csv", "header": "name"})
    assert "phone" in next(csv.DictReader(io.StringIO(full.content.decode("utf-8-sig"))))


def test_metadata_and_openapi_do_not_show_the_field(clients: Clients) -> None:
    _, rep, _ = clients
    entity = rep.get("/api/v1/meta/entities/customer").json()
    assert "phone" not in [f["name"] for f in entity["fields"]]
    schemas = rep.get("/schema").json()["components"]["schemas"]
    assert "phone" not in schemas["CustomerRecord"]["properties"]
    assert "phone" not in schemas["CustomerCreate"]["properties"]
    assert "level" not in schemas["CustomerPatch"]["properties"]  # read-only for reps
    document = rep.get("/schema").json()
    validate_openapi(document)  # still a valid OpenAPI document once narrowed
    paths = document["paths"]
    assert "delete" not in paths["/api/v1/records/customer/{record_id}"]  # reps may not delete


def test_writes_to_the_field_and_the_rows_are_refused(clients: Clients) -> None:
    admin, rep, seeded = clients
    mine, hidden = seeded["visible"][0], seeded["hidden"][0]
    created = rep.post("/api/v1/records/customer", json={"name": "New", "phone": "1"})
    assert created.status_code == 403 and "phone" in created.json()["detail"]
    assert rep.post("/api/v1/records/customer", json={"name": "New", "level": 5}).status_code == 403
    ok = rep.post("/api/v1/records/customer", json={"name": "New", "region": "east"})
    assert ok.status_code == 201 and "phone" not in ok.json()
    assert rep.patch(f"/api/v1/records/customer/{mine}", json={"phone": "9"}).status_code == 403
    assert rep.patch(f"/api/v1/records/customer/{mine}", json={"level": 9}).status_code == 403
    assert rep.patch(f"/api/v1/records/customer/{hidden}", json={"name": "x"}).status_code == 404
    assert rep.delete(f"/api/v1/records/customer/{mine}").status_code == 403  # no delete right
    bulk = rep.post(
        "/api/v1/records/customer/bulk",
        json={"update": [{"id": mine, "name": "ok"}, {"id": hidden, "name": "leak"}]},
    )
    assert bulk.status_code == 404
    record = admin.get(f"/api/v1/records/customer/{mine}").json()
    assert record["name"] == "East A" and record["phone"] == "13800000001"  # nothing written
    assert admin.get(f"/api/v1/records/customer/{hidden}").json()["name"] == "West other"
    # a write may not move a record out of sight either way undetected: it stays the rep's own
    moved = rep.patch(f"/api/v1/records/customer/{mine}", json={"region": "north"})
    assert moved.status_code == 200
    assert rep.get(f"/api/v1/records/customer/{mine}").status_code == 404


def test_import_cannot_write_the_field(clients: Clients) -> None:
    admin, rep, _ = clients
    data = b"name,phone,region\nImported,13900000000,east\n"
    response = rep.post(
        "/api/v1/records/customer/import",
        files={"file": ("customers.csv", data, "text/csv")},
    )
    assert response.status_code in {403, 422}, response.text
    assert "phone" in response.text
    names = [r["name"] for r in admin.get("/api/v1/records/customer").json()["data"]]
    assert "Imported" not in names
    allowed = rep.post(
        "/api/v1/records/customer/import",
        files={"file": ("customers.csv", b"name,region\nImported,east\n", "text/csv")},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["created"] == 1


def test_a_share_opens_one_hidden_record(clients: Clients) -> None:
    admin, rep, seeded = clients
    hidden = seeded["hidden"][0]
    shared = admin.post(
        f"/api/v1/records/customer/{hidden}/shares", json={"user_id": seeded["rep_id"]}
    )
    assert shared.status_code == 201, shared.text
    seen = rep.get(f"/api/v1/records/customer/{hidden}")
    assert seen.status_code == 200 and "phone" not in seen.json()
    # shared for reading only: a change is refused, without hiding that the record exists
    assert rep.patch(f"/api/v1/records/customer/{hidden}", json={"name": "x"}).status_code == 403
    assert (
        admin.delete(f"/api/v1/records/customer/{hidden}/shares/{seeded['rep_id']}").status_code
        == 200
    )
    assert rep.get(f"/api/v1/records/customer/{hidden}").status_code == 404


def test_no_entity_rights_means_403_and_no_metadata(clients: Clients) -> None:
    _admin, rep, _ = clients
    entities = [e["name"] for e in rep.get("/api/v1/meta/entities").json()["data"]]
    assert entities == ["customer", "purchase"]
    assert rep.post("/api/v1/records/purchase", json={"amount": 1}).status_code == 403
    assert rep.post("/api/v1/meta/entities", json={"name": "x", "fields": []}).status_code == 403
    assert rep.get("/api/v1/meta/users").status_code == 403
    assert rep.get("/api/v1/audit").status_code == 403
