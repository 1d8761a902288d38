"""The built-in automation actions.

Database actions (set fields, create a record or task, tags, assign an owner,
emit an event) run inside the step's transaction, so they apply exactly once
with the step. External ones (send a message, call a webhook) carry the
step's idempotency key to the receiver and are retried with back-off.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from jimu.automation.registry import (
    Action,
    ActionContext,
    ActionDeferred,
    ActionRetry,
    CheckScope,
    Message,
    ParamProblem,
)
from jimu.automation.store import dump_json, time_param
from jimu.meta.automations import parse_duration

__all__ = [
    "AddTag",
    "AssignOwner",
    "CallWebhook",
    "CreateRecord",
    "CreateTask",
    "EmitEvent",
    "RemoveTag",
    "SendMessage",
    "SetFields",
    "builtin_actions",
    "post_json",
    "sign",
]

SIGNATURE_HEADER = "X-Jimu-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body`` under ``secret``: ``sha256=<hex HMAC>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _require_record(context: ActionContext) -> dict[str, Any]:
    if context.record is None or context.entity is None or context.record_id is None:
        raise LookupError("this step needs the run's record, which no longer exists")
    return context.record


def _check_fields(scope: CheckScope, entity_name: str | None, names: Any, path: str) -> None:
    if entity_name is None:
        raise ParamProblem(path, "the automation has no entity to write to")
    entity = scope.site.entities.get(entity_name)
    if entity is None:
        raise ParamProblem(path, f"unknown entity {entity_name!r}")
    if not isinstance(names, Mapping) or not names:
        raise ParamProblem(path, "give an object of field names and values")
    for name in names:
        if entity.field(name) is None:
            raise ParamProblem(f"{path}.{name}", f"unknown field {name!r} of {entity_name}")


class SetFields(Action):
    """Set fields of the run's record: ``{"fields": {"status": "contacted"}}``."""

    name = "set_fields"
    label = "Set fields"

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        _check_fields(scope, scope.automation.trigger.entity, params.get("fields"), "params.fields")

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        _require_record(context)
        assert context.entity is not None and context.record_id is not None
        record = await context.site.records.update(
            context.entity, context.record_id, params["fields"]
        )
        return {"id": record["id"], "set": sorted(params["fields"])}


class CreateRecord(Action):
    """Create a record: ``{"entity": "coupon", "values": {"customer": "{{ record.id }}"}}``."""

    name = "create_record"
    label = "Create a record"

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        entity = params.get("entity")
        if not isinstance(entity, str):
            raise ParamProblem("params.entity", "give the entity of the record to create")
        _check_fields(scope, entity, params.get("values"), "params.values")

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        record = await context.site.records.create(params["entity"], params["values"])
        return {"entity": params["entity"], "id": record["id"]}


class CreateTask(Action):
    """Create a task for a person: a record of a task entity, due after ``due_in``.

    ``{"entity": "task", "title": "Call {{ customer.nickname }}", "assignee":
    "{{ customer.owner }}", "due_in": "1d"}``; the entity's ``title``,
    ``assignee``, ``due_at`` and ``about_id`` fields (names changeable with
    ``title_field``, ``assignee_field``, ``due_field``, ``link_field``) are filled,
    plus any ``values``.
    """

    name = "create_task"
    label = "Create a task"

    def _fields(self, params: Mapping[str, Any]) -> dict[str, str]:
        return {
            "title": params.get("title_field", "title"),
            "assignee": params.get("assignee_field", "assignee"),
            "due": params.get("due_field", "due_at"),
            "link": params.get("link_field", "about_id"),
        }

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        entity_name = params.get("entity", "task")
        entity = scope.site.entities.get(entity_name)
        if entity is None:
            raise ParamProblem("params.entity", f"unknown task entity {entity_name!r}")
        if not isinstance(params.get("title"), str):
            raise ParamProblem("params.title", "give the task's title (a template)")
        names = self._fields(params)
        used = {"title": True, "assignee": "assignee" in params, "due": "due_in" in params}
        for key, wanted in used.items():
            if wanted and entity.field(names[key]) is None:
                raise ParamProblem(
                    f"params.{key}_field", f"{entity_name} has no field {names[key]!r}"
                )
        if params.get("due_in") is not None:
            try:
                parse_duration(params["due_in"])
            except ValueError as exc:
                raise ParamProblem("params.due_in", str(exc)) from exc
        for name in params.get("values", {}) or {}:
            if entity.field(name) is None:
                raise ParamProblem(
                    f"params.values.{name}", f"unknown field {name!r} of {entity_name}"
                )

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        entity_name = params.get("entity", "task")
        names = self._fields(params)
        entity = context.site.entity(entity_name)
        values: dict[str, Any] = dict(params.get("values") or {})
        values[names["title"]] = params["title"]
        if params.get("assignee") not in (None, ""):
            values[names["assignee"]] = int(params["assignee"])
        if params.get("due_in"):
            values[names["due"]] = (context.now + parse_duration(params["due_in"])).isoformat()
        if entity.field(names["link"]) is not None and context.record_id is not None:
            values[names["link"]] = context.record_id
        record = await context.site.records.create(entity_name, values)
        return {"entity": entity_name, "id": record["id"]}


class _TagAction(Action):
    adding = True

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        entity = scope.entity
        if entity is None:
            raise ParamProblem("params.field", "the automation has no record to tag")
        name = params.get("field", "tags")
        definition = entity.field(name)
        if definition is None:
            raise ParamProblem("params.field", f"unknown field {name!r} of {entity.name}")
        if definition.type not in ("tags", "multi_select"):
            raise ParamProblem("params.field", f"{name!r} is not a tags field")
        if not isinstance(params.get("tag"), str) or not params["tag"]:
            raise ParamProblem("params.tag", "give the tag")

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        record = _require_record(context)
        assert context.entity is not None and context.record_id is not None
        name = params.get("field", "tags")
        tags = list(record.get(name) or [])
        tag = params["tag"]
        if self.adding and tag not in tags:
            tags.append(tag)
        elif not self.adding and tag in tags:
            tags.remove(tag)
        else:
            return {"tags": tags, "changed": False}
        await context.site.records.update(context.entity, context.record_id, {name: tags})
        return {"tags": tags, "changed": True}


class AddTag(_TagAction):
    """Add a tag to the record: ``{"tag": "vip"}`` (field ``tags`` unless ``field`` says)."""

    name = "add_tag"
    label = "Add a tag"


class RemoveTag(_TagAction):
    """Remove a tag from the record: ``{"tag": "dormant"}``."""

    name = "remove_tag"
    label = "Remove a tag"
    adding = False


class AssignOwner(Action):
    """Set a user field (``field``, default ``owner``) of the record.

    ``strategy``: ``fixed`` (``user``: a login), ``round_robin`` or
    ``least_loaded`` among the active users holding ``role``. With
    ``region_field``, only users whose ``region`` attribute (or the attribute
    ``region_attribute`` names; a value or a list of values) matches the
    record's region are candidates (a region field's province, or the plain
    value). ``least_loaded`` counts the records each candidate owns (only
    those matching ``load_filter``, a JsonLogic rule, when given).
    """

    name = "assign_owner"
    label = "Assign an owner"
    raw_params = frozenset({"load_filter"})
    strategies = ("fixed", "round_robin", "least_loaded")

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        entity = scope.entity
        if entity is None:
            raise ParamProblem("params.field", "the automation has no record to assign")
        name = params.get("field", "owner")
        if entity.field(name) is None:
            raise ParamProblem("params.field", f"unknown field {name!r} of {entity.name}")
        strategy = params.get("strategy", "round_robin")
        if strategy not in self.strategies:
            raise ParamProblem("params.strategy", f"must be one of {', '.join(self.strategies)}")
        if strategy == "fixed" and not params.get("user"):
            raise ParamProblem("params.user", "a fixed assignment needs the user's login")
        if strategy != "fixed" and not params.get("role"):
            raise ParamProblem("params.role", "give the role whose users share the records")
        region = params.get("region_field")
        if region is not None and entity.field(region) is None:
            raise ParamProblem("params.region_field", f"unknown field {region!r} of {entity.name}")
        if params.get("load_filter") is not None:
            try:
                scope.site.rules.compile(params["load_filter"])
            except Exception as exc:
                raise ParamProblem("params.load_filter", str(exc)) from exc

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        from jimu.auth import users_with_role

        record = _require_record(context)
        assert context.entity is not None and context.record_id is not None
        site = context.site
        name = params.get("field", "owner")
        strategy = params.get("strategy", "round_robin")
        role = params.get("role")
        region: Any = None
        if strategy == "fixed":
            row = await site.db.fetch_one(
                "SELECT id FROM jimu_user WHERE login = {}", [params["user"]]
            )
            if row is None:
                raise LookupError(f"no user with login {params['user']!r}")
            chosen = int(row["id"])
        else:
            users = await users_with_role(site, str(role))
            if params.get("region_field"):
                value = record.get(params["region_field"])
                region = value.get("province") if isinstance(value, Mapping) else value
                attribute = params.get("region_attribute", "region")
                users = [u for u in users if _covers(u.attributes.get(attribute), region)]
            candidates = [user.id for user in users]
            if not candidates:
                where = f" in region {region!r}" if params.get("region_field") else ""
                raise LookupError(f"no active user with role {role!r}{where}")
            if strategy == "round_robin":
                key = f"automation:round_robin:{role}:{region or ''}"
                turn = await _next_counter(site, key)
                chosen = candidates[(turn - 1) % len(candidates)]
            else:
                chosen = await _least_loaded(context, name, candidates, params.get("load_filter"))
        await site.records.update(context.entity, context.record_id, {name: chosen})
        return {"field": name, "user": chosen, "role": role, "region": region, "strategy": strategy}


def _covers(attribute: Any, region: Any) -> bool:
    if region is None:
        return False
    if isinstance(attribute, list):
        return region in attribute
    return bool(attribute == region)


async def _next_counter(site: Any, key: str) -> int:
    """Increment and return the kernel counter ``key`` (in the caller's transaction)."""
    row = await site.db.fetch_one(
        "INSERT INTO jimu_counter (key, value) VALUES ({}, 1) ON CONFLICT (key) DO UPDATE "
        "SET value = jimu_counter.value + 1 RETURNING value",
        [key],
    )
    return int(row["value"])


async def _least_loaded(
    context: ActionContext, field: str, users: list[int], load_filter: Any
) -> int:
    site = context.site
    assert context.entity is not None
    rt = site.runtime(context.entity)
    where, params = site.compile_filter(rt, load_filter) if load_filter is not None else ([], [])
    marks = ", ".join("{}" for _ in users)
    conditions = [*where, f"{rt.expr(field)} IN ({marks})", "id <> {}"]
    rows = await site.db.fetch(
        f"SELECT {rt.expr(field)} AS owner, COUNT(*) AS n FROM {rt.quoted} "
        f"WHERE {' AND '.join(conditions)} GROUP BY {rt.expr(field)}",
        [*params, *users, context.record_id],
    )
    load = {int(row["owner"]): int(row["n"]) for row in rows}
    return min(users, key=lambda user: (load.get(user, 0), user))


class EmitEvent(Action):
    """Emit a custom event other automations (or plugins) react to: ``{"event": "vip_won"}``."""

    name = "emit_event"
    label = "Emit an event"

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        if not isinstance(params.get("event"), str) or not params["event"]:
            raise ParamProblem("params.event", "give the event's name")

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        from jimu.automation.engine import emit_event

        await emit_event(
            context.site,
            params["event"],
            params.get("data") or {},
            entity=context.entity,
            record_id=context.record_id,
        )
        return {"event": params["event"]}


class SendMessage(Action):
    """Send a message through a configured channel, with quiet hours and frequency caps.

    ``{"channel": "sms", "to": "{{ customer.phone }}", "body": "Hi {{ customer.nickname }}",
    "quiet_hours": {"start": "22:00", "end": "08:00"},
    "frequency_cap": {"count": 2, "per": "1d"}}``. During quiet hours (site
    time) the step waits for their end; over the cap it is skipped (and the
    run log says so).
    """

    name = "send_message"
    label = "Send a message"
    external = True

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        from jimu.automation.channels import channel_config

        name = params.get("channel")
        if not isinstance(name, str):
            raise ParamProblem("params.channel", "give the channel to send through")
        try:
            kind, config = channel_config(scope.site, scope.registry, name)
            scope.registry.channels[kind].check_config(name, config)
        except LookupError as exc:
            raise ParamProblem("params.channel", str(exc)) from exc
        except ParamProblem as exc:
            raise ParamProblem("params.channel", exc.reason) from exc
        for required in ("to", "body"):
            if not isinstance(params.get(required), str) or not params[required]:
                raise ParamProblem(
                    f"params.{required}", f"give the message's {required} (a template)"
                )
        quiet = params.get("quiet_hours")
        if quiet is not None:
            try:
                _clock_time(quiet["start"])
                _clock_time(quiet["end"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ParamProblem(
                    "params.quiet_hours", "give start and end as times of day like 22:00"
                ) from exc
        cap = params.get("frequency_cap")
        if cap is not None:
            try:
                if int(cap["count"]) < 1:
                    raise ValueError("count")
                parse_duration(cap["per"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ParamProblem(
                    "params.frequency_cap", "give count (at least 1) and per (a duration like 1d)"
                ) from exc

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        from jimu.automation.channels import channel_config

        site = context.site
        db = site.db
        kind, config = channel_config(site, context.engine.registry, params["channel"])
        channel = context.engine.registry.channels[kind]
        to = str(params["to"] or "").strip()
        if not to:
            return {"skipped": "no recipient (the 'to' template rendered empty)"}
        already = await db.fetch_one("SELECT id FROM jimu_message WHERE key = {}", [context.key])
        if already is not None:  # sent by an attempt that died before confirming
            return {"message": int(already["id"]), "repeat": True}
        quiet = params.get("quiet_hours")
        if quiet is not None:
            until = _quiet_until(context, quiet["start"], quiet["end"])
            if until is not None:
                raise ActionDeferred(until, f"quiet hours until {quiet['end']}")
        cap = params.get("frequency_cap")
        if cap is not None:
            since = context.now - parse_duration(cap["per"])
            row = await db.fetch_one(
                "SELECT COUNT(*) AS n FROM jimu_message WHERE channel = {} AND recipient = {} "
                "AND sent_at > {}",
                [params["channel"], to, time_param(db, since)],
            )
            if row is not None and int(row["n"]) >= int(cap["count"]):
                return {
                    "skipped": f"frequency cap: {to} already got {row['n']} message(s) "
                    f"through {params['channel']} in {cap['per']}"
                }
        message = Message(
            key=f"{site.config.name}:{context.key}",
            channel=params["channel"],
            to=to,
            body=str(params["body"]),
            subject=str(params.get("subject") or ""),
            entity=context.entity,
            record_id=context.record_id,
            run_id=context.run_id,
        )
        answer = await channel.send(site, config, message)
        row = await db.fetch_one(
            "INSERT INTO jimu_message (key, channel, recipient, entity, record_id, run_id, "
            "subject, body, status, sent_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 'sent', {}) "
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            [
                context.key,
                message.channel,
                to,
                message.entity,
                message.record_id,
                context.run_id,
                message.subject,
                message.body,
                time_param(db, context.now),
            ],
        )
        return {"message": int(row["id"]) if row else None, "to": to, "answer": answer}


def _clock_time(text: str) -> dt.time:
    hour, minute = text.split(":")
    return dt.time(int(hour), int(minute))


def _quiet_until(context: ActionContext, start: str, end: str) -> dt.datetime | None:
    """When the quiet hours around now end (site time), or ``None`` outside them."""
    zone = context.engine.timezone
    local = context.now.astimezone(zone)
    begin, finish = _clock_time(start), _clock_time(end)
    moment = local.time()
    inside = (begin <= moment < finish) if begin < finish else (moment >= begin or moment < finish)
    if not inside:
        return None
    day = local.date() if moment < finish else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, finish, tzinfo=zone).astimezone(dt.UTC)


#: The longest a webhook call may wait for its answer (seconds), well inside an effect's claim.
MAX_WEBHOOK_TIMEOUT = 60


class CallWebhook(Action):
    """POST (or PUT) JSON to a URL, signed with HMAC-SHA256, retried with back-off.

    ``{"url": "https://erp.example/hook", "body": {"order": "{{ order.id }}"},
    "secret": "...", "retries": 4, "timeout": 10}``. The request carries ``X-Jimu-Signature:
    sha256=<hex>`` (over the exact body) and ``Idempotency-Key`` (the same on
    every attempt). A 5xx answer or a network error is retried; a 4xx fails
    the step.
    """

    name = "call_webhook"
    label = "Call a webhook"
    external = True

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        url = params.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ParamProblem("params.url", "give an http:// or https:// URL")
        if params.get("method", "POST") not in ("POST", "PUT"):
            raise ParamProblem("params.method", "must be POST or PUT")
        retries = params.get("retries", 4)
        if not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ParamProblem("params.retries", "a whole number from 0 to 10")
        # a call must end well inside the claim on its effect (the engine's lease), or a
        # second attempt could take the claim over while the first still waits
        timeout = params.get("timeout", 10)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 1 <= timeout <= MAX_WEBHOOK_TIMEOUT
        ):
            raise ParamProblem(
                "params.timeout",
                f"seconds to wait for an answer, from 1 to {MAX_WEBHOOK_TIMEOUT}",
            )

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        body = dump_json(params.get("body", {})).encode()
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: f"{context.site.config.name}:{context.key}",
            "User-Agent": "jimu-automation",
        }
        if params.get("secret"):
            headers[SIGNATURE_HEADER] = sign(str(params["secret"]), body)
        status, text = await post_json(
            params["url"], body, headers, params.get("method", "POST"), params.get("timeout", 10)
        )
        if status >= 500 or status == 0:
            raise ActionRetry(f"{params['url']} answered {status or 'nothing'}: {text[:200]}")
        if status >= 400:
            raise RuntimeError(f"{params['url']} refused the call with {status}: {text[:200]}")
        return {"status": status, "answer": text[:500]}


async def post_json(
    url: str, body: bytes, headers: Mapping[str, str], method: str = "POST", wait: float = 10
) -> tuple[int, str]:
    """Send ``body`` to ``url``; return (status, answer text); status 0 on a network error."""

    def send() -> tuple[int, str]:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    return await asyncio.to_thread(send)


def builtin_actions() -> list[Action]:
    """Every built-in action."""
    return [
        SetFields(),
        CreateRecord(),
        CreateTask(),
        AddTag(),
        RemoveTag(),
        AssignOwner(),
        EmitEvent(),
        SendMessage(),
        CallWebhook(),
    ]
