"""The README's store roles: imported from one file, given to users with a few commands.

Runs the exact commands the README shows against the demo store, then checks
what each role may do through the API.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jimu.site import Site
from jimu_cli.main import cli
from jimu_sdk.testing import site_client

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "docs" / "examples" / "store-roles.toml"


def jimu(*args: str, password: str = "staff-pass-1") -> str:
    result = CliRunner().invoke(cli, list(args), env={"STAFF_PASSWORD": password})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store") / "demo"
    jimu("demo", "--dir", str(folder), "--no-serve")
    site = str(folder)
    assert "Saved 5 roles" in jimu("role", "import", str(ROLES), "--site", site)
    for login, role, extra in [
        ("wang", "sales_rep", ["--attr", 'cities=["上海"]']),
        ("li", "service_agent", []),
        ("zhao", "analyst", []),
        ("boss", "manager", []),
    ]:
        jimu(
            "user",
            "add",
            login,
            "--role",
            role,
            *extra,
            "--password-env",
            "STAFF_PASSWORD",
            "--site",
            site,
        )
    return folder


def test_the_readme_shows_these_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "jimu role import docs/examples/store-roles.toml" in readme
    assert "jimu user add wang --role sales_rep" in readme


def test_users_and_roles_are_listed(store: Path) -> None:
    users = jimu("user", "list", "--site", str(store))
    assert "wang" in users and "sales_rep" in users and "super-user" in users  # the admin
    roles = jimu("role", "list", "--site", str(store))
    for name in ("admin", "manager", "sales_rep", "service_agent", "analyst"):
        assert name in roles


def test_a_sales_rep_sees_the_customers_and_orders_of_their_cities(store: Path) -> None:
    with site_client(Site.load(store)) as admin:
        shanghai = admin.get(
            "/api/v1/records/customer",
            params={"filter": json.dumps({"==": [{"var": "city"}, "上海"]}), "count": "exact"},
        ).json()["page"]["total"]
    with site_client(Site.load(store), user="wang") as wang:
        page = wang.get("/api/v1/records/customer", params={"count": "exact", "limit": 1000}).json()
        assert page["page"]["total"] == shanghai > 0
        assert {c["city"] for c in page["data"]} == {"上海"}
        orders = wang.get("/api/v1/records/sales_order", params={"limit": 1000}).json()["data"]
        ids = {c["id"] for c in page["data"]}
        assert orders and all(o["customer"] in ids for o in orders)
        assert wang.delete(f"/api/v1/records/customer/{page['data'][0]['id']}").status_code == 403
        assert (
            wang.patch(
                f"/api/v1/records/customer/{page['data'][0]['id']}", json={"total_spent": "1"}
            ).status_code
            == 403
        )


def test_a_service_agent_changes_order_status_only(store: Path) -> None:
    with site_client(Site.load(store), user="li") as li:
        customer = li.get("/api/v1/records/customer", params={"limit": 1}).json()["data"][0]
        assert "total_spent" not in customer and "phone" in customer
        order = li.get("/api/v1/records/sales_order", params={"limit": 1}).json()["data"][0]
        url = f"/api/v1/records/sales_order/{order['id']}"
        assert li.patch(url, json={"status": "completed"}).status_code == 200
        assert li.patch(url, json={"amount": "1.00"}).status_code == 403
        assert li.post("/api/v1/records/customer", json={"name": "x"}).status_code == 403


def test_an_analyst_reads_and_exports_without_contact_details(store: Path) -> None:
    with site_client(Site.load(store), user="zhao") as zhao:
        customer = zhao.get("/api/v1/records/customer", params={"limit": 1}).json()["data"][0]
        assert not {"phone", "email", "birthday"} & set(customer) and "total_spent" in customer
        exported = zhao.get("/api/v1/records/customer/export", params={"format": "csv"})
        assert exported.status_code == 200 and "手机号" not in exported.text
        assert zhao.post("/api/v1/records/product", json={"name": "x"}).status_code == 403


def test_a_manager_manages_staff_but_not_roles(store: Path) -> None:
    with site_client(Site.load(store), user="boss") as boss:
        assert boss.get("/api/v1/meta/users").status_code == 200
        assert boss.get("/api/v1/meta/roles").status_code == 403
        assert boss.get("/api/v1/audit").status_code == 403
        assert boss.post("/api/v1/meta/entities", json={"name": "x"}).status_code == 403


def test_a_wrong_roles_file_saves_nothing(store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "roles.toml"
    bad.write_text(
        '[[role]]\nname = "ok_role"\n[role.grants.customer]\nactions = ["read"]\n'
        '[[role]]\nname = "broken"\n[role.grants.customer]\nactions = ["read"]\n'
        'fields = { no_such_field = "none" }\n'
    )
    result = CliRunner().invoke(cli, ["role", "import", str(bad), "--site", str(store)])
    assert result.exit_code == 1
    assert "broken" in result.output and "no_such_field" in result.output
    assert "ok_role" not in jimu("role", "list", "--site", str(store))
