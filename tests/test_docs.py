"""The documentation cannot fall behind: every hook is documented, every called hook
has a worked example in docs/examples/points_ledger.py, and this module tests each.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from jimu import hookspecs
from jimu.site import Site
from jimu_cli.main import plugin_commands
from jimu_sdk.testing import make_site, site_client

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = ROOT / "docs" / "reference" / "hooks.md"
EXAMPLE = ROOT / "docs" / "examples" / "points_ledger.py"
HOOK_NAMES = sorted(
    name
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("jimu_")
)


def _reserved() -> set[str]:
    text = HOOKS_DOC.read_text()
    reserved = set()
    for section in re.split(r"\n### ", text)[1:]:
        name = section.split("\n", 1)[0].strip()
        if "**Reserved**" in section:
            reserved.add(name)
    return reserved


def load_example() -> ModuleType:
    """Import docs/examples/points_ledger.py afresh, as a plugin module."""
    spec = importlib.util.spec_from_file_location("points_ledger_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def ledger() -> ModuleType:
    return load_example()


@pytest.fixture
def site(tmp_path: Path, ledger: ModuleType) -> Site:
    return make_site(
        tmp_path / "shop", plugins=["points_ledger"], extra_plugins={"points_ledger": ledger}
    )


# -- the documentation itself --------------------------------------------------------


def test_every_hook_is_documented() -> None:
    text = HOOKS_DOC.read_text()
    headings = re.findall(r"^### (jimu_\w+)$", text, flags=re.MULTILINE)
    assert sorted(headings) == HOOK_NAMES
    for name in HOOK_NAMES:
        assert f"[`{name}`](#{name})" in text, f"{name} is missing from the summary table"
        assert getattr(hookspecs, name).__doc__, f"{name} has no docstring in hookspecs.py"


def test_every_called_hook_has_an_example_and_a_test() -> None:
    example = load_example()
    tests = {name for name, _ in inspect.getmembers(sys.modules[__name__], inspect.isfunction)}
    for name in sorted(set(HOOK_NAMES) - _reserved()):
        assert hasattr(example, name), f"docs/examples/points_ledger.py has no example of {name}"
        assert f"test_{name}" in tests, f"tests/test_docs.py has no test_{name}"


def test_reserved_hooks_are_really_not_called_yet() -> None:
    """A hook documented as reserved must not have a caller in the kernel (or the doc is stale)."""
    sources = "\n".join(
        p.read_text()
        for p in (ROOT / "core" / "src" / "jimu").rglob("*.py")
        if p.name != "hookspecs.py"
    )
    sources += (ROOT / "cli" / "src" / "jimu_cli" / "main.py").read_text()
    for name in _reserved():
        assert f'"{name}"' not in sources and f".{name}(" not in sources, (
            f"{name} has a caller; update hooks.md"
        )


# -- one test per hook, running the documented example --------------------------------


def test_jimu_entities(site: Site) -> None:
    with site_client(site) as client:
        names = [e["name"] for e in client.get("/api/v1/meta/entities").json()["data"]]
        assert names == ["points_account", "points_entry"]
        assert client.get("/api/v1/meta/entities/points_entry").json()["plugin"] == "points_ledger"


def test_jimu_field_types(site: Site) -> None:
    assert site.plugins.field_types.owner("sku") == "points_ledger"
    with site_client(site) as client:
        bad = client.post(
            "/api/v1/records/points_entry", json={"account": 1, "delta": 5, "sku": "bad sku"}
        )
        assert bad.status_code == 422
        assert bad.json()["errors"] == [
            {"field": "sku", "reason": "'bad sku' is not a SKU like TEA-0001"}
        ]


def test_jimu_fixtures(site: Site) -> None:
    with site_client(site) as client:
        # seed data arrived when the plugin was enabled
        accounts = client.get("/api/v1/records/points_account").json()["data"]
        assert [a["member"] for a in accounts] == ["store"]

    async def demo() -> dict[str, int]:
        async with Site.load(
            site.folder, extra_plugins={"points_ledger": sys.modules["points_ledger_example"]}
        ) as fresh:
            return await fresh.load_fixtures("demo")

    assert asyncio.run(demo()) == {"points_account": 2, "points_entry": 2}


def _account(client: Any, member: str) -> dict[str, Any]:
    response = client.post("/api/v1/records/points_account", json={"member": member})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def test_jimu_before_create(site: Site) -> None:
    with site_client(site) as client:
        account = _account(client, "王芳")
        zero = client.post(
            "/api/v1/records/points_entry", json={"account": account["id"], "delta": 0}
        )
        assert zero.status_code == 422
        assert zero.json()["errors"] == [
            {"field": "delta", "reason": "an entry must add or remove points"}
        ]
        entry = client.post(
            "/api/v1/records/points_entry", json={"account": account["id"], "delta": 10}
        )
        assert entry.json()["reason"] == "manual"


def test_jimu_after_create(site: Site) -> None:
    with site_client(site) as client:
        account = _account(client, "李娜")
        client.post("/api/v1/records/points_entry", json={"account": account["id"], "delta": 30})
        client.post("/api/v1/records/points_entry", json={"account": account["id"], "delta": -5})
        assert client.get(f"/api/v1/records/points_account/{account['id']}").json()["balance"] == 25
        overdraw = client.post(
            "/api/v1/records/points_entry", json={"account": account["id"], "delta": -100}
        )
        assert overdraw.status_code == 422
        assert overdraw.json()["errors"] == [
            {"field": "delta", "reason": "the account has only 25 points"}
        ]
        # the refused entry left nothing behind: neither the entry nor a balance change
        entries = client.get("/api/v1/records/points_entry", params={"count": "exact"}).json()
        assert entries["page"]["total"] == 2
        assert client.get(f"/api/v1/records/points_account/{account['id']}").json()["balance"] == 25


def test_jimu_before_update(site: Site) -> None:
    with site_client(site) as client:
        account = _account(client, "Chen")
        entry = client.post(
            "/api/v1/records/points_entry", json={"account": account["id"], "delta": 3}
        ).json()
        refused = client.patch(f"/api/v1/records/points_entry/{entry['id']}", json={"delta": 300})
        assert refused.status_code == 422
        assert "append" in refused.text or "cannot be changed" in refused.text


def test_jimu_after_update(site: Site, ledger: ModuleType) -> None:
    with site_client(site) as client:
        account = _account(client, "周杰")
        client.post("/api/v1/records/points_entry", json={"account": account["id"], "delta": 7})
    assert "balance 周杰: 0 -> 7" in ledger.LIFECYCLE


def test_jimu_before_delete(site: Site) -> None:
    with site_client(site) as client:
        account = _account(client, "Zhao")
        entry = client.post(
            "/api/v1/records/points_entry", json={"account": account["id"], "delta": 1}
        ).json()
        assert client.delete(f"/api/v1/records/points_entry/{entry['id']}").status_code == 422
        closing = client.delete(f"/api/v1/records/points_account/{account['id']}")
        assert closing.status_code == 422
        assert closing.json()["errors"] == [
            {"field": "balance", "reason": "only an empty account can be closed"}
        ]


def test_jimu_after_delete(site: Site, ledger: ModuleType) -> None:
    with site_client(site) as client:
        account = _account(client, "Empty")
        assert client.delete(f"/api/v1/records/points_account/{account['id']}").status_code == 200
    assert "closed Empty" in ledger.LIFECYCLE


def test_jimu_rule_operators(site: Site) -> None:
    assert site.rules.apply({"points_tier": 1500}) == "gold"
    assert site.rules.apply({"points_tier": {"var": "b"}}, {"b": 99}) == "bronze"
    with site_client(site) as client:
        for member, points in [("g", 1200), ("s", 150), ("b", 5)]:
            account = _account(client, member)
            client.post(
                "/api/v1/records/points_entry", json={"account": account["id"], "delta": points}
            )
        rule = {"==": [{"points_tier": {"var": "balance"}}, "silver"]}
        response = client.post("/api/v1/records/points_account/query", json={"filter": rule})
        assert response.status_code == 200, response.text
        assert [r["member"] for r in response.json()["data"]] == ["s"]
        unknown = client.post(
            "/api/v1/records/points_account/query", json={"filter": {"tier_of": [1]}}
        )
        assert unknown.status_code == 422 and "tier_of" in unknown.text


def test_jimu_forms(site: Site) -> None:
    with site_client(site) as client:
        view = client.get("/api/v1/public/forms/points_signup").json()
        assert view["form"]["plugin"] == "points_ledger"
        submit = "/api/v1/public/forms/points_signup/submit"
        headers = {"X-Captcha-Token": "42"}
        too_long = client.post(submit, json={"member": "x" * 21}, headers=headers)
        assert too_long.status_code == 422
        assert too_long.json()["errors"] == [{"field": "member", "reason": "最多 20 个字"}]
        rich = client.post(submit, json={"member": "Zhao", "balance": 1000}, headers=headers)
        assert rich.json()["errors"] == [
            {"field": "balance", "reason": "is read-only on this form"}
        ]
        joined = client.post(submit, json={"member": "Zhao"}, headers=headers)
        assert joined.status_code == 201 and joined.json()["message"] == "欢迎！"


def test_jimu_row_conditions(site: Site) -> None:
    with site_client(site) as admin:
        for member in ("alice", "bob"):
            _account(admin, member)
        role = {
            "name": "member",
            "grants": {"points_account": {"actions": ["read"]}},
        }
        assert admin.post("/api/v1/meta/roles", json=role).status_code == 201
        for login, roles in (("alice", ["member"]), ("carol", [])):
            created = admin.post("/api/v1/meta/users", json={"login": login, "roles": roles})
            assert created.status_code == 201, created.text
        # carol holds no role that reads accounts; give her one without the member narrowing
        reader = {"name": "reader", "grants": {"points_account": {"actions": ["read"]}}}
        assert admin.post("/api/v1/meta/roles", json=reader).status_code == 201
        carol = admin.get("/api/v1/meta/users").json()["data"]
        carol_id = next(u["id"] for u in carol if u["login"] == "carol")
        assert (
            admin.patch(f"/api/v1/meta/users/{carol_id}", json={"roles": ["reader"]}).status_code
            == 200
        )
        every = sorted(
            a["member"] for a in admin.get("/api/v1/records/points_account").json()["data"]
        )
        assert {"alice", "bob"} <= set(every)
    with site_client(site, user="alice") as alice:
        seen = alice.get("/api/v1/records/points_account").json()["data"]
        assert [a["member"] for a in seen] == ["alice"]  # the plugin's condition applies
    with site_client(site, user="carol") as carol_client:
        seen = carol_client.get("/api/v1/records/points_account").json()["data"]
        assert sorted(a["member"] for a in seen) == every  # not a member: not narrowed


def test_jimu_verify_captcha(site: Site) -> None:
    with site_client(site) as client:
        submit = "/api/v1/public/forms/points_signup/submit"
        wrong = client.post(submit, json={"member": "Qian"}, headers={"X-Captcha-Token": "41"})
        assert wrong.status_code == 422
        assert wrong.json()["errors"] == [
            {"field": "captcha", "reason": "the captcha answer is missing or wrong"}
        ]


def test_jimu_report_kinds(site: Site) -> None:
    with site_client(site) as client:
        for member, deltas in [("a", [5, -3]), ("b", [50]), ("c", [20, 20])]:
            account = _account(client, member)
            for delta in deltas:
                client.post(
                    "/api/v1/records/points_entry", json={"account": account["id"], "delta": delta}
                )
        kinds = client.get("/api/v1/meta/report-kinds").json()["data"]
        assert {"name": "top_earners", "owner": "points_ledger"}.items() <= kinds[-1].items()
        result = client.post(
            "/api/v1/reports/run",
            json={
                "report": {
                    "name": "earners",
                    "entity": "points_entry",
                    "kind": "top_earners",
                    "options": {"n": 2},
                }
            },
        )
        assert result.status_code == 200, result.text
        assert result.json()["rows"] == [
            {"member": "b", "earned": 50},
            {"member": "c", "earned": 40},
        ]
        bad = client.post(
            "/api/v1/reports/run",
            json={
                "report": {
                    "name": "x",
                    "entity": "points_entry",
                    "kind": "top_earners",
                    "options": {"n": "many"},
                }
            },
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "options.n"


def test_jimu_chart_types(site: Site) -> None:
    with site_client(site) as client:
        charts = {c["name"]: c for c in client.get("/api/v1/meta/chart-types").json()["data"]}
        assert charts["points_thermometer"]["owner"] == "points_ledger"
        report = {
            "name": "total",
            "entity": "points_entry",
            "measures": [{"name": "points", "agg": "sum", "field": "delta"}],
            "chart": {"type": "points_thermometer", "options": {"goal": 1000}},
        }
        assert client.post("/api/v1/reports/run", json={"report": report}).status_code == 200
        grouped = {**report, "dimensions": [{"field": "reason"}]}
        refused = client.post("/api/v1/reports/run", json={"report": grouped})
        assert refused.status_code == 422
        assert refused.json()["errors"][0] == {
            "field": "chart.type",
            "reason": "a points_thermometer chart needs 0 dimensions; the report has 1",
        }


def test_jimu_routes(site: Site) -> None:
    with site_client(site) as client:
        for member, points in [("a", 5), ("b", 50), ("c", 20)]:
            account = _account(client, member)
            client.post(
                "/api/v1/records/points_entry", json={"account": account["id"], "delta": points}
            )
        board = client.get("/api/v1/plugins/points_ledger/leaderboard")
        assert board.status_code == 200
        assert board.json()["leaders"][:3] == [
            {"member": "b", "balance": 50},
            {"member": "c", "balance": 20},
            {"member": "a", "balance": 5},
        ]


def test_jimu_cli_commands(site: Site) -> None:
    commands = plugin_commands(site)
    assert [c.name for c in commands] == ["points-rules"]
    result = CliRunner().invoke(commands[0])
    assert result.exit_code == 0
    assert result.output == "1 point per yuan spent; entries are append-only.\n"


def test_jimu_install(site: Site, ledger: ModuleType) -> None:
    with site_client(site):
        pass
    assert ledger.LIFECYCLE.count(f"install on {site.config.name}") == 1
    with site_client(Site.load(site.folder, extra_plugins={"points_ledger": ledger})):
        pass
    assert ledger.LIFECYCLE.count(f"install on {site.config.name}") == 1  # not again on restart


def test_jimu_upgrade(site: Site, ledger: ModuleType) -> None:
    with site_client(site):
        pass
    ledger.PLUGIN = msgspec.structs.replace(ledger.PLUGIN, version="1.1.0")
    with site_client(Site.load(site.folder, extra_plugins={"points_ledger": ledger})):
        pass
    assert "upgrade from 1.0.0 to 1.1.0" in ledger.LIFECYCLE
    ledger.LIFECYCLE.clear()
    with site_client(Site.load(site.folder, extra_plugins={"points_ledger": ledger})):
        pass
    assert not any(note.startswith("upgrade") for note in ledger.LIFECYCLE)  # recorded once


def test_jimu_uninstall(site: Site, ledger: ModuleType) -> None:
    with site_client(site) as client:
        assert client.delete("/api/v1/meta/plugins/points_ledger").status_code == 200
        assert client.get("/api/v1/records/points_account").status_code == 404
        assert client.post("/api/v1/meta/plugins/points_ledger").status_code == 201
        # re-enabled: the data kept while disabled is back, and install ran again
        assert [a["member"] for a in client.get("/api/v1/records/points_account").json()["data"]][
            :1
        ] == ["store"]
    assert f"uninstall from {site.config.name}" in ledger.LIFECYCLE
    assert ledger.LIFECYCLE.count(f"install on {site.config.name}") == 2


def test_jimu_startup(site: Site, ledger: ModuleType) -> None:
    with site_client(site):
        pass
    assert f"startup of {site.config.name}" in ledger.LIFECYCLE


# -- automation hooks ---------------------------------------------------------------


def _automation_engine_run(site: Site, work: Any) -> Any:
    """Open the example's site with an automation engine on a controllable clock; run ``work``."""
    import datetime as dt

    from jimu.automation.clock import ManualClock
    from jimu.automation.engine import AutomationEngine

    async def go() -> Any:
        await site.open()
        try:
            clock = ManualClock(dt.datetime(2024, 5, 1, 18, 59, tzinfo=dt.UTC))  # 02:59 Shanghai
            engine = AutomationEngine(site, clock=clock)
            await engine.start()
            return await work(site, engine, clock)
        finally:
            await site.close()

    return asyncio.run(go())


def test_jimu_actions(site: Site) -> None:
    from jimu_sdk import AutomationDef

    async def work(site: Site, engine: Any, clock: Any) -> None:
        account = await site.records.create("points_account", {"member": "Ma"})
        definition = msgspec.convert(
            {
                "name": "goodwill",
                "trigger": {"kind": "manual", "entity": "points_account"},
                "steps": [
                    {
                        "id": "gift",
                        "kind": "action",
                        "action": "award_points",
                        "params": {"points": 50},
                    }
                ],
            },
            AutomationDef,
        )
        await engine.save(definition)
        await engine.start_manual("goodwill", [account["id"]])
        await engine.settle()
        await engine.settle()
        assert (await site.records.get("points_account", account["id"]))["balance"] == 50
        bad = msgspec.structs.replace(
            definition,
            steps=[msgspec.structs.replace(definition.steps[0], params={"points": 0})],
        )
        with pytest.raises(ValidationFailed) as refused:
            engine.check(bad)
        assert refused.value.errors[0]["field"] == "steps[0].params.points"

    from jimu_sdk import ValidationFailed

    _automation_engine_run(site, work)


def test_jimu_triggers(site: Site, ledger: ModuleType) -> None:
    from jimu_sdk import AutomationDef, ValidationFailed

    async def work(site: Site, engine: Any, clock: Any) -> None:
        data = {
            "name": "gold_welcome",
            "trigger": {
                "kind": "points_balance_reached",
                "entity": "points_account",
                "options": {"threshold": 100},
            },
            "steps": [
                {
                    "id": "hello",
                    "kind": "action",
                    "action": "send_message",
                    "params": {
                        "channel": "ledger_log",
                        "to": "{{ points_account.member }}",
                        "body": "{{ points_account.member }} reached gold",
                    },
                }
            ],
        }
        await engine.save(msgspec.convert(data, AutomationDef))
        account = await site.records.create("points_account", {"member": "Qin"})
        for delta in (60, 30, 20, 50):  # crosses 100 once, on the third entry
            await site.records.create("points_entry", {"account": account["id"], "delta": delta})
        await engine.settle()
        assert ledger.LEDGER_LOG == ["Qin: Qin reached gold"]
        data["trigger"]["options"] = {"threshold": "lots"}
        with pytest.raises(ValidationFailed) as refused:
            engine.check(msgspec.convert(data, AutomationDef))
        assert refused.value.errors[0]["field"] == "trigger.options.threshold"

    _automation_engine_run(site, work)


def test_jimu_message_channels(site: Site, ledger: ModuleType) -> None:
    from jimu_sdk import AutomationDef

    async def work(site: Site, engine: Any, clock: Any) -> None:
        account = await site.records.create("points_account", {"member": "Lu"})
        await engine.save(
            msgspec.convert(
                {
                    "name": "statement",
                    "trigger": {"kind": "manual", "entity": "points_account"},
                    "steps": [
                        {
                            "id": "send",
                            "kind": "action",
                            "action": "send_message",
                            "params": {
                                "channel": "ledger_log",
                                "to": "{{ record.member }}",
                                "body": "balance {{ record.balance }}",
                            },
                        }
                    ],
                },
                AutomationDef,
            )
        )
        await engine.start_manual("statement", [account["id"]])
        await engine.settle()
        assert ledger.LEDGER_LOG == ["Lu: balance 0"]
        sent = await site.db.fetch("SELECT channel, recipient FROM jimu_message")
        assert sent == [{"channel": "ledger_log", "recipient": "Lu"}]

    _automation_engine_run(site, work)


def test_jimu_periodic_jobs(site: Site, ledger: ModuleType) -> None:
    async def work(site: Site, engine: Any, clock: Any) -> None:
        await engine.run_schedules()  # first look: the job's clock starts now (02:59)
        assert not any("day closed" in line for line in ledger.LIFECYCLE)
        clock.advance(minutes=1, seconds=1)
        assert await engine.run_schedules() == 1
        assert await engine.run_schedules() == 0  # claimed once
        assert sum("day closed" in line for line in ledger.LIFECYCLE) == 1

    _automation_engine_run(site, work)
