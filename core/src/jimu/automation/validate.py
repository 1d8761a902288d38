"""Checking an automation against a site before it is saved.

Every problem becomes a 422 naming where it is (``steps[2].action``) and,
for a step, the step's id: an unknown action, a bad cron expression, a rule
reading a field the entity does not have, a condition wait without a timeout,
a journey that loops.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from croniter import croniter

from jimu.automation.registry import AutomationRegistry, CheckScope, ParamProblem
from jimu.automation.templates import check_template, template_strings
from jimu.errors import FieldProblem, ValidationFailed
from jimu.meta.automations import (
    AUTOMATION_NAME_PATTERN,
    END,
    STEP_KINDS,
    TRIGGER_KINDS,
    AutomationDef,
    StepDef,
    parse_duration,
)
from jimu.rules import RuleError, fields_read

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["check_automation", "check_cron"]

_STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_RECORD_TRIGGERS = {"created", "updated", "deleted", "date", "manual"}
_DATE_STORAGE = {"date", "datetime"}
REENTRY = ("always", "not_active", "once")


class _Problem(Exception):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def check_cron(expression: str) -> str | None:
    """Why ``expression`` is not a five-field cron expression, or ``None``."""
    if len(expression.split()) != 5:
        return f"{expression!r} is not a cron expression of five fields (minute hour day month weekday)"
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    return None


def check_automation(site: Site, definition: AutomationDef, registry: AutomationRegistry) -> None:
    """Raise :class:`ValidationFailed` (422) naming the first problem of ``definition``."""
    try:
        _check(site, definition, registry)
    except _Problem as exc:
        raise ValidationFailed(FieldProblem(exc.path, exc.reason)) from exc


def _check(site: Site, definition: AutomationDef, registry: AutomationRegistry) -> None:
    if not re.match(AUTOMATION_NAME_PATTERN, definition.name):
        raise _Problem(
            "name",
            f"{definition.name!r} is not a valid automation name "
            "(lower-case letters, digits and _, starting with a letter)",
        )
    if definition.reentry not in REENTRY:
        raise _Problem("reentry", f"must be one of {', '.join(REENTRY)}")
    trigger = definition.trigger
    entity = None
    if trigger.entity is not None:
        entity = site.entities.get(trigger.entity)
        if entity is None:
            raise _Problem("trigger.entity", f"unknown entity {trigger.entity!r}")
    scope = CheckScope(site=site, automation=definition, entity=entity, registry=registry)
    _check_trigger(site, definition, scope)
    for path, rule in (("condition", definition.condition), ("exit_when", definition.exit_when)):
        if rule is not None:
            _check_rule(site, rule, scope, path)
    if definition.run_as is not None and not definition.run_as.strip():
        raise _Problem("run_as", "give the login of a user, or leave run_as out")
    _check_steps(site, definition, scope)


def _check_trigger(site: Site, definition: AutomationDef, scope: CheckScope) -> None:
    trigger = definition.trigger
    kind = trigger.kind
    plugin_kind = scope.registry.triggers.get(kind)
    if kind not in TRIGGER_KINDS and plugin_kind is None:
        known = [*TRIGGER_KINDS, *sorted(scope.registry.triggers)]
        raise _Problem("trigger.kind", f"unknown trigger kind {kind!r} (known: {', '.join(known)})")
    if kind in _RECORD_TRIGGERS and scope.entity is None:
        raise _Problem("trigger.entity", f"a {kind!r} trigger needs the entity it watches")
    fields = scope.field_names()
    if trigger.changes and kind != "updated":
        raise _Problem("trigger.changes", "only an 'updated' trigger watches field changes")
    for index, change in enumerate(trigger.changes):
        if change.field not in fields:
            raise _Problem(
                f"trigger.changes[{index}].field",
                f"unknown field {change.field!r} of {trigger.entity}",
            )
    if kind == "schedule":
        if not trigger.cron:
            raise _Problem("trigger.cron", "a schedule trigger needs a cron expression")
        reason = check_cron(trigger.cron)
        if reason:
            raise _Problem("trigger.cron", reason)
        if trigger.filter is not None:
            if scope.entity is None:
                raise _Problem("trigger.filter", "a filter needs the trigger's entity")
            _check_rule(site, trigger.filter, scope, "trigger.filter")
    elif trigger.cron is not None:
        raise _Problem("trigger.cron", "only a schedule trigger has a cron expression")
    if kind == "date":
        if not trigger.field:
            raise _Problem("trigger.field", "a date trigger needs the date field it counts from")
        assert scope.entity is not None
        definition_field = scope.entity.field(trigger.field)
        storage = None
        if definition_field is not None:
            field_type = site.plugins.field_types.get(definition_field.type)
            storage = field_type.storage_for(definition_field) if field_type else None
        elif trigger.field in ("created_at", "updated_at"):
            storage = "datetime"
        if storage is None:
            raise _Problem(
                "trigger.field", f"unknown field {trigger.field!r} of {scope.entity.name}"
            )
        if storage not in _DATE_STORAGE:
            raise _Problem("trigger.field", f"{trigger.field!r} is not a date or datetime field")
        _duration(trigger.offset or "0m", "trigger.offset")
        if trigger.at is not None and not _TIME_OF_DAY.match(trigger.at):
            raise _Problem("trigger.at", f"{trigger.at!r} is not a time of day like 09:00")
    if kind == "event" and not trigger.event:
        raise _Problem("trigger.event", "an event trigger needs the event's name")
    if kind == "webhook" and (not trigger.secret or len(trigger.secret) < 16):
        raise _Problem(
            "trigger.secret", "a webhook trigger needs a secret of 16 characters or more"
        )
    if plugin_kind is not None:
        try:
            plugin_kind.check(trigger, scope)
        except ParamProblem as exc:
            raise _Problem(f"trigger.{exc.param}", exc.reason) from exc


def _duration(text: Any, path: str) -> dt.timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise _Problem(path, str(exc)) from exc


def _check_rule(site: Site, rule: Any, scope: CheckScope, path: str, step: str = "") -> None:
    prefix = f"step {step!r}: " if step else ""
    try:
        site.rules.compile(rule)
        read = fields_read(rule, site.rules)
    except RuleError as exc:
        raise _Problem(path, f"{prefix}{exc}") from exc
    if scope.entity is None:
        return
    known = scope.field_names()
    for name in sorted(read):
        head = name.split(".", 1)[0]
        if head not in known:
            raise _Problem(
                path, f"{prefix}the rule reads unknown field {name!r} of {scope.entity.name}"
            )


def _targets(step: StepDef) -> Iterable[tuple[str, str]]:
    for attribute in ("next", "on_timeout", "then", "else"):
        value = getattr(step, "else_" if attribute == "else" else attribute)
        if value is not None:
            yield attribute, value


def _check_steps(site: Site, definition: AutomationDef, scope: CheckScope) -> None:
    if not definition.steps:
        raise _Problem("steps", "a journey needs at least one step")
    seen: dict[str, int] = {}
    for index, step in enumerate(definition.steps):
        path = f"steps[{index}]"
        if not _STEP_ID.match(step.id) or step.id == END:
            raise _Problem(f"{path}.id", f"{step.id!r} is not a valid step id")
        if step.id in seen:
            raise _Problem(f"{path}.id", f"step id {step.id!r} is used twice")
        seen[step.id] = index
    for index, step in enumerate(definition.steps):
        path = f"steps[{index}]"
        named = f"step {step.id!r}: "
        if step.kind not in STEP_KINDS:
            raise _Problem(
                f"{path}.kind", f"{named}unknown step kind {step.kind!r} ({', '.join(STEP_KINDS)})"
            )
        for attribute, target in _targets(step):
            if target != END and target not in seen:
                raise _Problem(f"{path}.{attribute}", f"{named}no step with id {target!r}")
        scope.step = step
        if step.kind == "action":
            _check_action(site, step, scope, path, named)
        elif step.kind == "wait":
            _check_wait(site, step, scope, path, named)
        elif step.kind == "branch":
            if step.condition is None:
                raise _Problem(f"{path}.condition", f"{named}a branch needs a condition")
            if step.then is None and step.else_ is None:
                raise _Problem(f"{path}.then", f"{named}a branch needs then or else")
            _check_rule(site, step.condition, scope, f"{path}.condition", step.id)
        if step.kind != "action" and (step.action or step.params):
            raise _Problem(f"{path}.action", f"{named}only action steps have an action")
    scope.step = None
    _check_cycles(definition)


def _check_action(site: Site, step: StepDef, scope: CheckScope, path: str, named: str) -> None:
    if not step.action:
        raise _Problem(f"{path}.action", f"{named}an action step needs the action's name")
    action = scope.registry.actions.get(step.action)
    if action is None:
        known = ", ".join(sorted(scope.registry.actions))
        raise _Problem(f"{path}.action", f"{named}unknown action {step.action!r} (known: {known})")
    for where, text in template_strings(
        {k: v for k, v in step.params.items() if k not in action.raw_params}, "params"
    ):
        reason = check_template(text)
        if reason:
            raise _Problem(f"{path}.{where}", f"{named}{reason}")
    try:
        action.check(step.params, scope)
    except ParamProblem as exc:
        raise _Problem(f"{path}.{exc.param}", f"{named}{exc.reason}") from exc


def _check_wait(site: Site, step: StepDef, scope: CheckScope, path: str, named: str) -> None:
    given = [name for name in ("duration", "until", "condition") if getattr(step, name) is not None]
    if len(given) != 1:
        raise _Problem(
            f"{path}.duration",
            f"{named}a wait needs exactly one of duration, until or condition",
        )
    if step.duration is not None and _duration(step.duration, f"{path}.duration") <= dt.timedelta(
        0
    ):
        raise _Problem(f"{path}.duration", f"{named}a wait lasts a positive duration")
    if step.offset is not None and step.until is None:
        raise _Problem(f"{path}.offset", f"{named}an offset shifts an until moment; give until")
    if step.until is not None:
        field = scope.entity.field(step.until) if scope.entity is not None else None
        if field is None and step.until not in ("created_at", "updated_at"):
            try:
                moment = dt.datetime.fromisoformat(step.until)
            except ValueError:
                raise _Problem(
                    f"{path}.until",
                    f"{named}{step.until!r} is neither a date-time nor a date field of the record",
                ) from None
            if moment.tzinfo is None:
                raise _Problem(f"{path}.until", f"{named}give the time zone (+08:00)")
        if step.offset is not None:
            _duration(step.offset, f"{path}.offset")
    if step.condition is not None:
        if step.timeout is None:
            raise _Problem(
                f"{path}.timeout",
                f"{named}a wait on a condition needs a timeout (it may never become true)",
            )
        _check_rule(site, step.condition, scope, f"{path}.condition", step.id)
    if step.timeout is not None:
        if step.condition is None:
            raise _Problem(f"{path}.timeout", f"{named}only a wait on a condition has a timeout")
        if _duration(step.timeout, f"{path}.timeout") <= dt.timedelta(0):
            raise _Problem(f"{path}.timeout", f"{named}a timeout is a positive duration")


def _check_cycles(definition: AutomationDef) -> None:
    index = definition.step_index()
    edges: dict[str, list[tuple[str, str]]] = {}
    for position, step in enumerate(definition.steps):
        targets: list[tuple[str, str]] = []
        if step.kind == "branch":
            for attribute, value in (("then", step.then), ("else", step.else_)):
                targets.append((attribute, value or definition.next_of(position)))
        elif step.kind != "stop":
            targets.append(("next", definition.next_of(position)))
            if step.on_timeout is not None:
                targets.append(("on_timeout", step.on_timeout))
        edges[step.id] = [(a, t) for a, t in targets if t != END]
    state: dict[str, str] = {}

    def visit(step_id: str, trail: list[str]) -> None:
        state[step_id] = "visiting"
        for attribute, target in edges[step_id]:
            if state.get(target) == "visiting":
                path = [*trail, step_id]
                loop = " -> ".join([*path[path.index(target) :], target])
                raise _Problem(
                    f"steps[{index[step_id]}].{attribute}",
                    f"step {step_id!r} leads back to step {target!r}: "
                    f"the journey would loop ({loop}); a journey may not repeat a step",
                )
            if state.get(target) is None:
                visit(target, [*trail, step_id])
        state[step_id] = "done"

    for step in definition.steps:
        if state.get(step.id) is None:
            visit(step.id, [])
