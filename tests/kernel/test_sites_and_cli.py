"""Sites and the `jimu` command: new, plugins list/enable/disable, errors, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from jimu.errors import SiteError
from jimu.site import Site, create_site
from jimu_cli.main import cli
from jimu_sdk.testing import postgres_database, site_client


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_site_new_writes_site_toml_and_creates_tables(tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    code, output = invoke(
        "site", "new", str(folder), "--plugins", "example_vip", "--timezone", "Asia/Shanghai"
    )
    assert code == 0, output
    assert "Created site 'acme'" in output
    config = tomllib.loads((folder / "site.toml").read_text())
    assert config["site"]["name"] == "acme"
    assert config["site"]["timezone"] == "Asia/Shanghai" and config["site"]["locale"] == "zh-CN"
    assert config["site"]["currency"] == "CNY"
    assert len(config["site"]["secret_key"]) >= 40
    assert config["database"]["url"] == "sqlite:///site.sqlite"
    assert config["broker"]["url"]
    assert config["plugins"]["enabled"] == ["example_vip"]
    assert (folder / "site.sqlite").exists()
    assert oct((folder / "site.toml").stat().st_mode & 0o777) == "0o600"  # it holds the secret key
    code, output = invoke("site", "new", str(folder))
    assert code == 1 and "already exists; a site is never overwritten" in output


def test_site_new_on_postgres(tmp_path: Path) -> None:
    with postgres_database() as url:
        code, output = invoke(
            "site", "new", str(tmp_path / "pg"), "--db", url, "--plugins", "demo_store"
        )
        assert code == 0, output
        with site_client(Site.load(tmp_path / "pg")) as client:
            assert client.app.state.site.db.dialect == "postgres"
            names = [e["name"] for e in client.get("/api/v1/meta/entities").json()["data"]]
            assert names == ["customer", "product", "sales_order"]


def test_site_new_refuses_unknown_plugin_before_writing(tmp_path: Path) -> None:
    code, output = invoke("site", "new", str(tmp_path / "x"), "--plugins", "ghost")
    assert code == 1
    assert "Error: plugin 'ghost' is enabled on this site but not installed" in output
    assert not (tmp_path / "x" / "site.toml").exists()


def test_site_new_refuses_bad_database_url(tmp_path: Path) -> None:
    code, output = invoke("site", "new", str(tmp_path / "y"), "--db", "mysql://root@localhost/x")
    assert code == 1 and "database URL 'mysql://root@localhost/x' is not supported" in output
    assert not (tmp_path / "y" / "site.toml").exists()


def test_not_a_site_and_broken_config_are_readable_errors(tmp_path: Path) -> None:
    code, output = invoke("plugins", "enable", "example_vip", "--site", str(tmp_path))
    assert code == 1 and f"{tmp_path} is not a Jimu site (no site.toml)" in output
    create_site(tmp_path / "s")
    (tmp_path / "s" / "site.toml").write_text("[site]\nname = 'x'\n[colour]\n")
    with pytest.raises(SiteError, match=r"unknown section \[colour\]"):
        Site.load(tmp_path / "s")
    (tmp_path / "s" / "site.toml").write_text("[site\n")
    code, output = invoke("migrate", "--site", str(tmp_path / "s"))
    assert code == 1 and "site.toml" in output


def test_plugins_enable_disable_keeps_data(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    assert invoke("site", "new", str(folder))[0] == 0
    code, output = invoke("plugins", "list", "--site", str(folder), "--json")
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["jimu.fields"]["builtin"] and rows["jimu.fields"]["enabled"]
    assert rows["example_vip"]["enabled"] is False
    code, output = invoke("plugins", "enable", "example_vip", "--site", str(folder))
    assert code == 0, output
    with site_client(Site.load(folder)) as client:
        assert (
            client.post(
                "/api/v1/records/vip_card", json={"card_no": "VIP-000009", "holder": "Li"}
            ).status_code
            == 201
        )
    code, output = invoke("plugins", "enable", "example_vip", "--site", str(folder))
    assert code == 1 and "already enabled" in output
    code, output = invoke("plugins", "list", "--site", str(folder))
    assert "example_vip" in output and "enabled" in output and "jimu_before_create" in output
    code, output = invoke("plugins", "disable", "example_vip", "--site", str(folder))
    assert code == 0 and "its data is kept" in output
    with site_client(Site.load(folder)) as client:
        assert client.get("/api/v1/records/vip_card").status_code == 404
    invoke("plugins", "enable", "example_vip", "--site", str(folder))
    with site_client(Site.load(folder)) as client:
        cards = client.get("/api/v1/records/vip_card").json()["data"]
        assert [c["card_no"] for c in cards] == ["VIP-000009"]  # the data came back
    code, output = invoke("plugins", "disable", "ghost", "--site", str(folder))
    assert code == 1 and "plugin 'ghost' is not enabled on this site" in output


def test_demo_creates_sample_data(tmp_path: Path) -> None:
    code, output = invoke("demo", "--dir", str(tmp_path / "demo"), "--no-serve")
    assert code == 0, output
    assert "300 customer records" in output and "1500 sales_order records" in output
    with site_client(Site.load(tmp_path / "demo")) as client:
        entities = [e["name"] for e in client.get("/api/v1/meta/entities").json()["data"]]
        assert entities == ["customer", "product", "sales_order", "vip_card"]
        orders = client.get(
            "/api/v1/records/sales_order", params={"limit": 5, "sort": "-amount"}
        ).json()
        assert len(orders["data"]) == 5 and orders["page"]["total"] == 1500
    code, output = invoke("demo", "--dir", str(tmp_path / "demo"), "--no-serve")
    assert code == 0 and "Creating" not in output  # the second run reuses the site


def test_jimu_serve_prints_url_and_answers(tmp_path: Path) -> None:
    folder = tmp_path / "served"
    assert invoke("demo", "--dir", str(folder), "--no-serve")[0] == 0
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jimu = Path(sys.executable).parent / "jimu"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(jimu), "serve", "--site", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"at http://127.0.0.1:{port}/" in first
        import httpx

        login, password = (folder / "demo-admin.txt").read_text().split()
        web = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
        for _ in range(100):
            try:
                anonymous = web.get("/api/v1/meta/entities")
                break
            except httpx.TransportError:
                import time

                time.sleep(0.1)
        else:
            pytest.fail("jimu serve did not answer within 10 s")
        assert anonymous.status_code == 401  # nothing is served to nobody
        signed_in = web.post("/api/v1/auth/login", json={"login": login, "password": password})
        assert signed_in.status_code == 200, signed_in.text
        response = web.get("/api/v1/meta/entities")  # the session cookie is sent back
        assert response.status_code == 200
        assert "customer" in [e["name"] for e in response.json()["data"]]
        root = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
        assert root["site"] == "demo" and root["records"]["customer"] == "/api/v1/records/customer"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        records = web.get("/api/v1/records/customer?limit=3").json()
        assert len(records["data"]) == 3
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_plugin_commands_follow_the_named_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jimu_cli.main import _site_from_argv

    monkeypatch.setenv("JIMU_SITE", str(tmp_path / "from-env"))
    assert _site_from_argv(["migrate", "--site", "shop"]) == Path("shop")
    assert _site_from_argv(["migrate", "--site=shop2"]) == Path("shop2")
    assert _site_from_argv(["migrate"]) == tmp_path / "from-env"


def test_blocked_plugin_is_listed_as_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "shop"
    assert invoke("site", "new", str(folder), "--plugins", "example_vip")[0] == 0
    monkeypatch.setenv("JIMU_DISABLE_PLUGINS", "example_vip")
    code, output = invoke("plugins", "list", "--site", str(folder), "--json")
    rows = {row["name"]: row for row in json.loads(output)}
    assert rows["example_vip"]["blocked"] is True and rows["example_vip"]["enabled"] is False
    code, output = invoke("plugins", "list", "--site", str(folder))
    assert code == 0 and "blocked" in output


def test_enabling_through_the_api_reports_client_errors(tmp_path: Path) -> None:
    site = Site.load(create_site_and_return(tmp_path / "shop"))
    with site_client(site) as client:
        missing = client.post("/api/v1/meta/plugins/ghost")
        assert missing.status_code == 404
        assert "plugin 'ghost' is not installed" in missing.json()["detail"]
        assert client.post("/api/v1/meta/plugins/example_vip").status_code == 201
        again = client.post("/api/v1/meta/plugins/example_vip")
        assert again.status_code == 409


def create_site_and_return(folder: Path) -> Path:
    create_site(folder)
    return folder


def test_site_toml_keys_are_checked_per_section(tmp_path: Path) -> None:
    create_site(tmp_path / "s")
    path = tmp_path / "s" / "site.toml"
    text = path.read_text()
    path.write_text(text.replace("[api]\n", "[api]\nname = 'sneaky'\n"))
    with pytest.raises(
        SiteError,
        match=r"unknown key 'name' in \[api\] \(known: bulk_limit, max_body_bytes, count_reuse_seconds\)",
    ):
        Site.load(tmp_path / "s")
    path.write_text(text.replace("[database]\n", "[database]\npasword = 'x'\n"))
    with pytest.raises(SiteError, match=r"unknown key 'pasword' in \[database\]"):
        Site.load(tmp_path / "s")
    path.write_text(text.replace('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"'))
    with pytest.raises(SiteError, match=r"unknown time zone 'Mars/Olympus'"):
        Site.load(tmp_path / "s")
