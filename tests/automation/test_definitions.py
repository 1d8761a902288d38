"""Automations as metadata: stored, versioned, edited over HTTP; bad definitions are 422s naming the step."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from jimu.automation.seeds import SEED_JOURNEYS
from jimu_sdk.testing import site_client
from tests.automation.helpers import STORE_ENTITIES, new_store

SETTINGS = {"channels": {"sms": {"type": "http", "url": "http://127.0.0.1:9/sms"}}}


@pytest.fixture
def client(tmp_path: Path, database_url: str | None) -> Any:
    site = new_store(tmp_path / "shop", database_url, settings=SETTINGS)
    with site_client(site) as client:
        for entity in STORE_ENTITIES:
            import msgspec

            response = client.post("/api/v1/meta/entities", json=msgspec.to_builtins(entity))
            assert response.status_code == 201, response.text
        yield client


def unpaid() -> dict[str, Any]:
    return copy.deepcopy(SEED_JOURNEYS["unpaid_order_reminder"])


def test_create_read_version_delete(client: Any) -> None:
    created = client.post("/api/v1/meta/automations", json=unpaid())
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    again = client.post("/api/v1/meta/automations", json=unpaid())
    assert again.status_code == 409
    changed = unpaid()
    changed["steps"][1]["params"]["body"] = "Pay order #{{ shop_order.id }} please"
    replaced = client.put("/api/v1/meta/automations/unpaid_order_reminder", json=changed)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    got = client.get("/api/v1/meta/automations/unpaid_order_reminder").json()
    assert got["steps"][1]["params"]["body"] == "Pay order #{{ shop_order.id }} please"
    versions = client.get("/api/v1/meta/automations/unpaid_order_reminder/versions").json()
    assert [(v["version"], v["summary"]) for v in versions["data"]] == [
        (1, "created"),
        (2, "updated"),
    ]
    listed = client.get("/api/v1/meta/automations").json()["data"]
    assert [a["name"] for a in listed] == ["unpaid_order_reminder"]
    assert client.delete("/api/v1/meta/automations/unpaid_order_reminder").status_code == 200
    assert client.get("/api/v1/meta/automations/unpaid_order_reminder").status_code == 404


def test_every_seed_journey_is_a_valid_definition(client: Any) -> None:
    for name, data in SEED_JOURNEYS.items():
        response = client.post("/api/v1/meta/automations", json=data)
        assert response.status_code == 201, (name, response.text)


def test_the_webhook_secret_is_not_handed_out(client: Any) -> None:
    data = {
        "name": "erp_paid",
        "trigger": {"kind": "webhook", "secret": "s3cret-s3cret-s3cret"},
        "steps": [
            {
                "id": "note",
                "kind": "action",
                "action": "emit_event",
                "params": {"event": "erp_paid"},
            }
        ],
    }
    assert client.post("/api/v1/meta/automations", json=data).status_code == 201
    assert client.get("/api/v1/meta/automations/erp_paid").json()["trigger"]["secret"] == "********"


def _problem(client: Any, data: dict[str, Any]) -> dict[str, str]:
    response = client.post("/api/v1/meta/automations", json=data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    errors: list[dict[str, str]] = response.json()["errors"]
    assert len(errors) == 1
    return errors[0]


def test_unknown_action_names_the_step(client: Any) -> None:
    data = unpaid()
    data["steps"][3]["action"] = "send_carrier_pigeon"
    problem = _problem(client, data)
    assert problem["field"] == "steps[3].action"
    assert problem["reason"].startswith("step 'remind_2h': unknown action 'send_carrier_pigeon'")
    assert "send_message" in problem["reason"]  # the known ones are listed


def test_bad_cron_is_refused(client: Any) -> None:
    data = copy.deepcopy(SEED_JOURNEYS["wake_dormant_customer"])
    data["trigger"]["cron"] = "0 25 * * *"
    assert _problem(client, data) == {
        "field": "trigger.cron",
        "reason": "'0 25 * * *' is not a valid cron expression",
    }
    data["trigger"]["cron"] = "every day"
    assert _problem(client, data)["field"] == "trigger.cron"


def test_rule_on_an_unknown_field_names_the_step(client: Any) -> None:
    data = copy.deepcopy(SEED_JOURNEYS["welcome_new_customer"])
    data["steps"][2]["condition"] = {"var": "coupon_redeemed"}
    problem = _problem(client, data)
    assert problem["field"] == "steps[2].condition"
    assert problem["reason"] == (
        "step 'used_coupon': the rule reads unknown field 'coupon_redeemed' of customer"
    )
    data = unpaid()
    data["exit_when"] = {"var": "payed"}
    assert _problem(client, data)["field"] == "exit_when"


def test_condition_wait_without_timeout_names_the_step(client: Any) -> None:
    data = copy.deepcopy(SEED_JOURNEYS["route_new_lead"])
    del data["steps"][2]["timeout"]
    problem = _problem(client, data)
    assert problem["field"] == "steps[2].timeout"
    assert problem["reason"].startswith("step 'follow_up': a wait on a condition needs a timeout")


def test_cyclic_journey_names_the_step(client: Any) -> None:
    data = unpaid()
    data["steps"][3]["next"] = "at_15_minutes"
    problem = _problem(client, data)
    assert problem["field"] == "steps[3].next"
    assert problem["reason"] == (
        "step 'remind_2h' leads back to step 'at_15_minutes': the journey would loop "
        "(at_15_minutes -> remind_15m -> at_2_hours -> remind_2h -> at_15_minutes); "
        "a journey may not repeat a step"
    )


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (
            {"trigger": {"kind": "created", "entity": "invoice"}},
            "trigger.entity",
            "unknown entity 'invoice'",
        ),
        (
            {"trigger": {"kind": "teleported", "entity": "shop_order"}},
            "trigger.kind",
            "unknown trigger kind 'teleported'",
        ),
        ({"steps": []}, "steps", "a journey needs at least one step"),
    ],
)
def test_other_bad_definitions(
    client: Any, change: dict[str, Any], field: str, reason: str
) -> None:
    data = {**unpaid(), **change}
    problem = _problem(client, data)
    assert problem["field"] == field
    assert problem["reason"].startswith(reason)


def test_bad_step_parameters(client: Any) -> None:
    data = unpaid()
    data["steps"][1]["params"]["channel"] = "pager"
    problem = _problem(client, data)
    assert problem["field"] == "steps[1].params.channel"
    assert "no channel named 'pager'" in problem["reason"]
    data = unpaid()
    data["steps"][1]["params"]["body"] = "Hi {{ customer.nickname"
    problem = _problem(client, data)
    assert problem["field"] == "steps[1].params.body"
    assert "template error" in problem["reason"]
    data = unpaid()
    data["steps"][0]["offset"] = "a while"
    assert _problem(client, data)["field"] == "steps[0].offset"
    data = unpaid()
    data["steps"][1] = {
        "id": "remind",
        "kind": "action",
        "action": "call_webhook",
        "params": {"url": "http://127.0.0.1:9/hook", "timeout": 600},
    }
    problem = _problem(client, data)
    assert problem["field"] == "steps[1].params.timeout"
    assert "from 1 to 60" in problem["reason"]


def test_malformed_body_is_a_400_and_unknown_keys_a_422(client: Any) -> None:
    assert client.post("/api/v1/meta/automations", content=b"{").status_code == 400
    data = unpaid()
    data["colour"] = "red"
    assert _problem(client, data)["field"] == "colour"


def _settle(folder: Path) -> None:
    """Run what is due with a second process-like engine on the same site (no worker in tests)."""
    from jimu.automation.engine import AutomationEngine
    from jimu.site import Site
    from tests.automation.helpers import run

    async def go() -> None:
        site = Site.load(folder)
        await site.open()
        try:
            await AutomationEngine(site).settle()
        finally:
            await site.close()

    run(go())


def test_manual_and_webhook_runs_and_the_run_log_over_http(client: Any, tmp_path: Path) -> None:
    import hashlib
    import hmac
    import json

    manual = {
        "name": "mark_vip",
        "trigger": {"kind": "manual", "entity": "customer"},
        "condition": {"!=": [{"var": "nickname"}, "skip"]},
        "steps": [{"id": "tag", "kind": "action", "action": "add_tag", "params": {"tag": "vip"}}],
    }
    assert client.post("/api/v1/meta/automations", json=manual).status_code == 201
    ids = [
        client.post("/api/v1/records/customer", json={"nickname": name}).json()["id"]
        for name in ("Ma", "skip")
    ]
    started = client.post("/api/v1/automations/mark_vip/run", json={"record_ids": ids})
    assert started.status_code == 202
    assert len(started.json()["runs"]) == 1  # the condition keeps "skip" out
    assert client.post("/api/v1/automations/mark_vip/run", json={"record_ids": [999]}).json()[
        "errors"
    ] == [{"field": "record_ids", "reason": "no customer record with id 999"}]
    explained = client.get("/api/v1/automations/mark_vip/explain", params={"record_id": ids[1]})
    assert explained.json()["reasons"] == ["the condition does not hold for this record"]

    hook = {
        "name": "erp_note",
        "trigger": {"kind": "webhook", "entity": "customer", "secret": "a-long-webhook-secret"},
        "steps": [
            {
                "id": "tag",
                "kind": "action",
                "action": "add_tag",
                "params": {"tag": "{{ trigger.data.tag }}"},
            }
        ],
    }
    assert client.post("/api/v1/meta/automations", json=hook).status_code == 201
    body = json.dumps({"record_id": ids[0], "tag": "erp"}).encode()
    unsigned = client.post("/api/v1/automations/erp_note/webhook", content=body)
    assert unsigned.status_code == 401
    signature = "sha256=" + hmac.new(b"a-long-webhook-secret", body, hashlib.sha256).hexdigest()
    signed = client.post(
        "/api/v1/automations/erp_note/webhook",
        content=body,
        headers={"X-Jimu-Signature": signature, "Content-Type": "application/json"},
    )
    assert signed.status_code == 202, signed.text

    _settle(tmp_path / "shop")
    assert client.get(f"/api/v1/records/customer/{ids[0]}").json()["tags"] == ["vip", "erp"]
    runs = client.get("/api/v1/automations/runs", params={"record_id": ids[0]}).json()["data"]
    assert [(r["automation"], r["status"]) for r in runs] == [
        ("erp_note", "done"),
        ("mark_vip", "done"),
    ]
    detail = client.get(f"/api/v1/automations/runs/{runs[1]['id']}").json()
    assert [(s["step"], s["kind"], s["outcome"]) for s in detail["steps"]] == [
        ("tag", "action", "done")
    ]
    assert detail["steps"][0]["output"] == {"tags": ["vip"], "changed": True}
    assert client.get("/api/v1/automations/runs/99999").status_code == 404
    assert client.get("/api/v1/automations/runs", params={"limit": 0}).status_code == 422
