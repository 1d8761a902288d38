"""What the automation engine can do: actions, message channels, trigger kinds, periodic jobs.

Each is an object a plugin returns from a hook (``jimu_actions``,
``jimu_message_channels``, ``jimu_triggers``, ``jimu_periodic_jobs``); the
kernel's own are registered the same way by :mod:`jimu.automation.builtin`
and come first. A name taken twice is an error naming both owners.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jimu.errors import PluginError

if TYPE_CHECKING:
    from jimu.automation.engine import AutomationEngine
    from jimu.meta import EntityDef
    from jimu.meta.automations import AutomationDef, StepDef, TriggerDef
    from jimu.site import Site

__all__ = [
    "Action",
    "ActionContext",
    "ActionDeferred",
    "ActionRetry",
    "AutomationRegistry",
    "Channel",
    "CheckScope",
    "Message",
    "ParamProblem",
    "PeriodicJob",
    "TriggerKind",
]


class ParamProblem(ValueError):
    """A step's (or trigger's) parameter is wrong; ``param`` names it (``params.fields.tier``)."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


class ActionRetry(Exception):
    """Raised by an action whose side effect failed for now (a server down): try again later."""


class ActionDeferred(Exception):
    """Raised by an action that may not run before ``until`` (quiet hours): run it then."""

    def __init__(self, until: dt.datetime, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.reason = reason


@dataclass
class CheckScope:
    """What a definition is checked against: the site, the automation's entity, the step."""

    site: Site
    automation: AutomationDef
    entity: EntityDef | None
    registry: AutomationRegistry
    step: StepDef | None = None

    def field_names(self) -> set[str]:
        """The record fields a rule or parameter of this automation may name."""
        if self.entity is None:
            return set()
        return {"id", "created_at", "updated_at", *self.entity.field_names}


@dataclass
class ActionContext:
    """Everything an action gets when it runs, besides its parameters."""

    site: Site
    engine: AutomationEngine
    run_id: int
    automation: str
    step: str
    #: The idempotency key of this step's side effect (the same on every attempt).
    key: str
    entity: str | None
    record_id: int | None
    #: The record as it is now (``None`` when the run has no record or it was deleted).
    record: dict[str, Any] | None
    #: The data templates see: the record under its entity's name and ``record``, ``trigger``, ``steps``.
    data: dict[str, Any]
    now: dt.datetime
    attempt: int = 0


class Action:
    """An automation action. Subclass it, set ``name`` and implement :meth:`run`.

    ``external`` says the side effect leaves the database (a message, a
    webhook): the engine records the effect as started before :meth:`run` and
    as done after it, and gives it the same ``key`` on every attempt so the
    receiver can drop a repeat. Otherwise :meth:`run` runs inside the step's
    transaction and its writes commit exactly once, with the step.
    """

    name: str = ""
    label: str = ""
    external: bool = False
    #: Parameters that are not rendered as templates before :meth:`run` (rules, nested data).
    raw_params: frozenset[str] = frozenset()

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        """Raise :class:`ParamProblem` when ``params`` cannot work on this automation."""

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        """Do the work; return a JSON-able result for the run log (and later steps)."""
        raise NotImplementedError


@dataclass
class Message:
    """One message to send through a channel."""

    key: str
    channel: str
    to: str
    body: str
    subject: str = ""
    entity: str | None = None
    record_id: int | None = None
    run_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Channel:
    """A kind of message channel (inbox, email, HTTP). Sites configure named instances of it.

    ``external`` as for :class:`Action`. :meth:`check_config` validates one
    configured instance; :meth:`send` delivers one message (its ``key`` is the
    idempotency key to hand to the receiver).
    """

    kind: str = ""
    external: bool = True
    #: Whether a site must configure an instance before messages go through it.
    needs_config: bool = True

    def check_config(self, name: str, config: Mapping[str, Any]) -> None:
        """Raise :class:`ParamProblem` when a configured instance cannot work."""

    async def send(self, site: Site, config: Mapping[str, Any], message: Message) -> Any:
        """Deliver ``message``; return what the receiver answered (for the run log)."""
        raise NotImplementedError


class TriggerKind:
    """A trigger kind a plugin adds: it fires on a custom event when :meth:`matches` says so.

    ``event`` names the custom event it listens to (plugins emit events with
    :func:`jimu.automation.emit_event`).
    """

    name: str = ""
    event: str = ""

    def check(self, trigger: TriggerDef, scope: CheckScope) -> None:
        """Raise :class:`ParamProblem` when ``trigger.options`` cannot work."""

    def matches(self, trigger: TriggerDef, payload: Mapping[str, Any]) -> bool:
        """Whether an event's payload starts a run of an automation with this trigger."""
        return True


@dataclass
class PeriodicJob:
    """A job run on a cron schedule (site time zone) by whichever worker claims it first."""

    name: str
    cron: str
    run: Callable[[Site], Awaitable[None] | None]


@dataclass
class AutomationRegistry:
    """The actions, channel kinds, trigger kinds and periodic jobs of one site."""

    actions: dict[str, Action] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    triggers: dict[str, TriggerKind] = field(default_factory=dict)
    jobs: dict[str, PeriodicJob] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)

    def _add(self, table: dict[str, Any], what: str, name: str, item: Any, owner: str) -> None:
        if not name:
            raise PluginError(f"plugin {owner!r}: a {what} without a name: {item!r}")
        if name in table:
            first = self.owners[(what, name)]
            raise PluginError(f"{what} {name!r} is registered by both {first!r} and {owner!r}")
        table[name] = item
        self.owners[(what, name)] = owner

    @classmethod
    def for_site(cls, site: Site) -> AutomationRegistry:
        """Collect the built-ins, then every enabled plugin's, in load order."""
        from jimu.automation import builtin

        registry = cls()
        hooks: tuple[tuple[str, type, dict[str, Any], str, str], ...] = (
            ("jimu_actions", Action, registry.actions, "action", "name"),
            ("jimu_message_channels", Channel, registry.channels, "channel", "kind"),
            ("jimu_triggers", TriggerKind, registry.triggers, "trigger kind", "name"),
            ("jimu_periodic_jobs", PeriodicJob, registry.jobs, "periodic job", "name"),
        )
        for hook, kind, table, what, key in hooks:
            owned: list[tuple[str, Any]] = [
                ("jimu.automation", item) for item in getattr(builtin, hook)()
            ]
            owned += site.plugins.collect_typed(hook, kind)
            for owner, item in owned:
                registry._add(table, what, getattr(item, key), item, owner)
        return registry
