"""Forms: the server applies a form's rules on every write made through it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from jimu.meta import PluginInfo
from jimu.site import Site
from jimu_sdk import hookimpl
from jimu_sdk.testing import site_client

LEAD = {
    "name": "lead",
    "fields": [
        {"name": "name", "type": "text", "required": True},
        {"name": "company", "type": "text"},
        {"name": "tax_id", "type": "text"},
        {"name": "phone", "type": "text"},
        {"name": "budget", "type": "integer"},
        {"name": "source", "type": "select", "options": {"choices": ["web", "shop", "ads"]}},
        {"name": "status", "type": "select", "options": {"choices": ["new", "won", "lost"]}},
        {"name": "lost_reason", "type": "text"},
    ],
}

NEW_LEAD_FORM = {
    "name": "new_lead",
    "entity": "lead",
    "label": {"en": "New lead", "zh-CN": "新线索"},
    "layout": "steps",
    "pages": [
        {
            "title": "Who",
            "sections": [
                {
                    "fields": [
                        {"field": "name"},
                        {"field": "company"},
                        # required only when a company is given
                        {"field": "tax_id", "required_if": {"!!": {"var": "company"}}},
                        {
                            "field": "phone",
                            "validations": [
                                {
                                    "rule": {"regex_match": [{"var": "phone"}, "^1[3-9]\\d{9}$"]},
                                    "message": {
                                        "en": "a mainland mobile number",
                                        "zh-CN": "请输入手机号",
                                    },
                                }
                            ],
                        },
                    ]
                }
            ],
        },
        {
            "title": "Deal",
            "sections": [
                {
                    "fields": [
                        {
                            "field": "budget",
                            "validations": [
                                {
                                    "rule": {">": [{"var": "budget"}, 0]},
                                    "message": "must be positive",
                                }
                            ],
                        },
                        {"field": "source", "default": "web", "read_only": True},
                        {
                            "field": "status",
                            "default": "new",
                            "read_only_if": {"==": [{"var": "status"}, "won"]},
                        },
                        {
                            "field": "lost_reason",
                            "visible_if": {"==": [{"var": "status"}, "lost"]},
                            "required": True,
                        },
                    ]
                }
            ],
        },
    ],
    "public": {
        "rate_limit": 3,
        "window_seconds": 60,
        "success_message": {"en": "Thanks!", "zh-CN": "谢谢！"},
    },
}


@pytest.fixture
def client(new_site: Callable[..., Site]) -> Iterator[Any]:
    site = new_site()
    with site_client(site) as client:
        assert client.post("/api/v1/meta/entities", json=LEAD).status_code == 201
        response = client.post("/api/v1/meta/forms", json=NEW_LEAD_FORM)
        assert response.status_code == 201, response.text
        yield client


def problems(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["reason"] for error in response.json()["errors"]}


def test_required_only_when_another_field_has_a_value(client: Any) -> None:
    submit = "/api/v1/forms/new_lead/submit"
    assert client.post(submit, json={"name": "Li"}).status_code == 201
    assert problems(client.post(submit, json={"name": "Wang", "company": "ACME"})) == {
        "tax_id": "is required"
    }
    created = client.post(submit, json={"name": "Wang", "company": "ACME", "tax_id": "91310000X"})
    assert created.status_code == 201
    assert created.json()["source"] == "web" and created.json()["status"] == "new"  # form defaults


def test_validation_messages_in_the_site_locale(client: Any) -> None:
    found = problems(
        client.post(
            "/api/v1/forms/new_lead/submit", json={"name": "Li", "phone": "12345", "budget": -5}
        )
    )
    assert found == {"phone": "请输入手机号", "budget": "must be positive"}


def test_read_only_fields_are_refused(client: Any) -> None:
    submit = "/api/v1/forms/new_lead/submit"
    assert problems(client.post(submit, json={"name": "Li", "source": "ads"})) == {
        "source": "is read-only on this form"
    }
    # the rule holds for a new record too: "won" cannot be chosen through the form
    assert problems(client.post(submit, json={"name": "Li", "status": "won"})) == {
        "status": "is read-only on this form"
    }
    lead = client.post(
        "/api/v1/records/lead", json={"name": "Li", "status": "won"}
    ).json()  # no form
    # a won lead's status is read-only through the form...
    changed = client.patch(
        f"/api/v1/forms/new_lead/records/{lead['id']}", json={"status": "lost", "lost_reason": "x"}
    )
    assert problems(changed) == {"status": "is read-only on this form"}
    # ...and the record is unchanged
    assert client.get(f"/api/v1/records/lead/{lead['id']}").json()["status"] == "won"


def test_hidden_fields_are_not_required_and_not_written(client: Any) -> None:
    submit = "/api/v1/forms/new_lead/submit"
    lead = client.post(submit, json={"name": "Li", "lost_reason": "too pricey"})
    assert lead.status_code == 201
    assert lead.json()["lost_reason"] is None  # hidden (status is not lost): discarded
    lost = client.post(submit, json={"name": "Li", "status": "lost"})
    assert problems(lost) == {"lost_reason": "is required"}


def test_fields_off_the_form_cannot_be_written_through_it(client: Any) -> None:
    client.patch(
        "/api/v1/meta/entities/lead",
        json={"fields": [*LEAD["fields"], {"name": "owner_note", "type": "text"}]},
    )
    assert problems(
        client.post("/api/v1/forms/new_lead/submit", json={"name": "Li", "owner_note": "x"})
    ) == {"owner_note": "is not on form 'new_lead'"}


def test_multi_step_form_checks_each_step_then_the_whole(client: Any) -> None:
    step0 = client.post(
        "/api/v1/forms/new_lead/validate?step=0", json={"name": "Li", "company": "ACME"}
    )
    assert problems(step0) == {"tax_id": "is required"}
    ok = client.post(
        "/api/v1/forms/new_lead/validate?step=0",
        json={"name": "Li", "company": "ACME", "tax_id": "9"},
    )
    assert ok.status_code == 200 and ok.json() == {"valid": True}
    # step 1 alone does not care about step 0's fields
    assert (
        client.post("/api/v1/forms/new_lead/validate?step=1", json={"budget": 10}).status_code
        == 200
    )
    bad_step = client.post("/api/v1/forms/new_lead/validate?step=7", json={})
    assert problems(bad_step) == {"step": "must be from 0 to 1"}
    assert (
        client.get("/api/v1/records/lead", params={"count": "exact"}).json()["page"]["total"] == 0
    )


def test_public_multi_step_form_is_anonymous_and_rate_limited(client: Any) -> None:
    view = client.get("/api/v1/public/forms/new_lead")
    assert view.status_code == 200
    assert view.json()["form"]["layout"] == "steps"
    assert view.json()["fields"]["source"]["options"] == {"choices": ["web", "shop", "ads"]}
    submit = "/api/v1/public/forms/new_lead/submit"
    assert (
        client.post("/api/v1/public/forms/new_lead/validate?step=0", json={"name": "A"}).status_code
        == 200
    )
    first = client.post(submit, json={"name": "A"})
    assert first.status_code == 201 and first.json()["message"] == "谢谢！"
    assert set(first.json()) == {"id", "message"}  # nothing else about the record leaks
    assert problems(client.post(submit, json={"name": "B", "company": "X"})) == {
        "tax_id": "is required"
    }
    assert client.post(submit, json={"name": "C"}).status_code == 201
    limited = client.post(submit, json={"name": "D"})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "too many submissions" in limited.json()["detail"]
    # a private form is not reachable anonymously, and says nothing about existing
    client.post(
        "/api/v1/meta/forms", json={**NEW_LEAD_FORM, "name": "private_lead", "public": None}
    )
    assert client.get("/api/v1/public/forms/private_lead").status_code == 404
    assert client.get("/api/v1/public/forms/nope").json()["detail"] == "no public form named 'nope'"


def test_default_form_applies_to_plain_record_writes(client: Any) -> None:
    replaced = client.put("/api/v1/meta/forms/new_lead", json={**NEW_LEAD_FORM, "default": True})
    assert replaced.status_code == 200, replaced.text
    assert problems(
        client.post("/api/v1/records/lead", json={"name": "Li", "company": "ACME"})
    ) == {"tax_id": "is required"}
    bulk = client.post(
        "/api/v1/records/lead/bulk",
        json={"create": [{"name": "a"}, {"name": "b", "source": "ads"}]},
    )
    assert problems(bulk) == {"create[1].source": "is read-only on this form"}
    assert client.post("/api/v1/records/lead", json={"name": "Li"}).json()["source"] == "web"
    # a second default form for the same entity is refused
    second = client.post(
        "/api/v1/meta/forms",
        json={**NEW_LEAD_FORM, "name": "other", "default": True, "public": None},
    )
    assert second.status_code == 409


def test_bad_form_definitions_are_refused_with_their_path(client: Any) -> None:
    def create(form: dict[str, Any]) -> Any:
        return client.post("/api/v1/meta/forms", json=form)

    base = {
        "name": "f",
        "entity": "lead",
        "pages": [{"sections": [{"fields": [{"field": "name"}]}]}],
    }
    assert problems(create({**base, "entity": "ghost"})) == {"entity": "unknown entity 'ghost'"}
    bad_field = {**base, "pages": [{"sections": [{"fields": [{"field": "colour"}]}]}]}
    assert problems(create(bad_field)) == {
        "pages[0].sections[0].fields[0].field": "unknown field 'colour' of lead"
    }
    bad_rule = {
        **base,
        "pages": [{"sections": [{"fields": [{"field": "name", "visible_if": {"nope": [1]}}]}]}],
    }
    assert "pages[0].sections[0].fields[0].visible_if" in problems(create(bad_rule))
    reads_unknown = {
        **base,
        "pages": [
            {"sections": [{"fields": [{"field": "name", "required_if": {"var": "colour"}}]}]}
        ],
    }
    reason = problems(create(reads_unknown))["pages[0].sections[0].fields[0].required_if"]
    assert "unknown field 'colour'" in reason
    twice = {**base, "pages": [{"sections": [{"fields": [{"field": "name"}, {"field": "name"}]}]}]}
    assert problems(create(twice)) == {
        "pages[0].sections[0].fields[1].field": "field 'name' is placed twice"
    }
    assert problems(create({**base, "pages": []})) == {
        "pages": "a form needs at least one page with fields"
    }
    assert problems(create({**base, "name": "Bad Name"})) == {
        "name": "'Bad Name' is not a valid form name"
    }
    assert client.post("/api/v1/meta/forms", json={**base, "name": "new_lead"}).status_code == 409
    assert [f["name"] for f in client.get("/api/v1/meta/forms").json()["data"]] == ["new_lead"]


def test_removing_a_field_breaks_the_form_visibly(client: Any) -> None:
    fields = [f for f in LEAD["fields"] if f["name"] != "tax_id"]
    assert client.patch("/api/v1/meta/entities/lead", json={"fields": fields}).status_code == 200
    listing = client.get("/api/v1/meta/forms").json()
    assert "new_lead" in listing["broken"] and "tax_id" in listing["broken"]["new_lead"]
    response = client.post("/api/v1/forms/new_lead/submit", json={"name": "Li"})
    assert response.status_code == 404 and "no longer fits its entity" in response.json()["detail"]


def captcha_plugin(answers: dict[str, bool]) -> ModuleType:
    module = ModuleType("captcha_plugin")
    module.PLUGIN = PluginInfo(name="captcha", version="1.0.0")  # type: ignore[attr-defined]

    @hookimpl
    def jimu_verify_captcha(token: str) -> bool | None:
        return answers.get(token, False)

    module.jimu_verify_captcha = jimu_verify_captcha  # type: ignore[attr-defined]
    return module


def test_public_form_with_captcha(new_site: Callable[..., Site]) -> None:
    form = {**NEW_LEAD_FORM, "public": {"captcha": True, "rate_limit": 100}}
    site = new_site(plugins=["captcha"], extra_plugins={"captcha": captcha_plugin({"right": True})})
    with site_client(site) as client:
        client.post("/api/v1/meta/entities", json=LEAD)
        assert client.post("/api/v1/meta/forms", json=form).status_code == 201
        submit = "/api/v1/public/forms/new_lead/submit"
        assert problems(client.post(submit, json={"name": "A"})) == {
            "captcha": "the captcha answer is missing or wrong"
        }
        wrong = client.post(submit, json={"name": "A"}, headers={"X-Captcha-Token": "wrong"})
        assert wrong.status_code == 422
        assert (
            client.post(
                submit, json={"name": "A"}, headers={"X-Captcha-Token": "right"}
            ).status_code
            == 201
        )


def test_captcha_without_a_provider_is_503(client: Any) -> None:
    client.put("/api/v1/meta/forms/new_lead", json={**NEW_LEAD_FORM, "public": {"captcha": True}})
    response = client.post("/api/v1/public/forms/new_lead/submit", json={"name": "A"})
    assert response.status_code == 503
    assert "no enabled plugin verifies captchas" in response.json()["detail"]
