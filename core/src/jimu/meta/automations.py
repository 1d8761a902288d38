"""Automation metadata: a trigger, an optional condition and a journey of steps.

An :class:`AutomationDef` is plain data a person can diff and an integrator
can ship as a fixture. Nothing here talks to a database or runs anything:
:mod:`jimu.automation` checks a definition against a site (its entities,
fields, actions and channels) and runs it.

A journey is a list of steps, each with an ``id``. After a step the run goes
to the step named by ``next`` (or the following step in the list; ``"end"``
ends the run). Branches name the step for each outcome. A journey may not
loop: every run visits each step at most once, which is what makes ``(run,
step)`` an idempotency key for the step's side effects.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec

from jimu.meta import IDENTIFIER_PATTERN, Translatable

__all__ = [
    "AUTOMATION_NAME_PATTERN",
    "END",
    "STEP_KINDS",
    "TRIGGER_KINDS",
    "AutomationDef",
    "FieldChange",
    "StepDef",
    "TriggerDef",
    "parse_duration",
]

#: Automation names: lower-case identifiers, like entities.
AUTOMATION_NAME_PATTERN = IDENTIFIER_PATTERN

#: The step id that ends a run.
END = "end"

#: Trigger kinds the kernel knows; plugins add more through ``jimu_triggers``.
TRIGGER_KINDS = (
    "created",
    "updated",
    "deleted",
    "schedule",
    "date",
    "webhook",
    "event",
    "manual",
)

#: What a step can be.
STEP_KINDS = ("action", "wait", "branch", "stop")

Rule = Any
"""A JsonLogic rule over the record the run is about."""

_DURATION = re.compile(r"^(-)?(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``"15m"``, ``"2h"``, ``"3d"``, ``"-1d"`` (units s, m, h, d, w) as a timedelta.

    Raises :class:`ValueError` with a message saying what is accepted.
    """
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit: "
            "30s, 15m, 2h, 3d or 1w (a leading - means before)"
        )
    sign = -1 if match.group(1) else 1
    return dt.timedelta(seconds=sign * int(match.group(2)) * _UNITS[match.group(3)])


class FieldChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """An update trigger fires only when ``field`` changed (from ``from``, to ``to`` when given)."""

    field: str
    from_: Any = msgspec.field(default=msgspec.UNSET, name="from")
    to: Any = msgspec.UNSET


class TriggerDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """What starts a run.

    ``kind`` is one of :data:`TRIGGER_KINDS` or a kind a plugin registered:

    * ``created`` / ``updated`` / ``deleted``: a record of ``entity`` was
      written; ``changes`` narrows ``updated`` to fields that changed (from/to).
    * ``schedule``: ``cron`` (five fields, in the site's time zone); with an
      ``entity``, one run per record matching ``filter``, else one run.
    * ``date``: ``offset`` (``"-3d"``, ``"30m"``) relative to the date or
      datetime ``field`` of each record of ``entity``; ``at`` is the local time
      of day for date fields (default ``"09:00"``); ``yearly`` repeats on every
      anniversary (birthdays).
    * ``webhook``: an inbound POST signed with HMAC-SHA256 of the body under ``secret``.
    * ``event``: a custom event named ``event`` emitted by a plugin (or an automation).
    * ``manual``: started by a person for records of ``entity`` (a button, a list selection).
    """

    kind: str
    entity: str | None = None
    changes: list[FieldChange] = msgspec.field(default_factory=list)
    cron: str | None = None
    filter: Rule = None
    field: str | None = None
    offset: str | None = None
    at: str | None = None
    yearly: bool = False
    event: str | None = None
    secret: str | None = None
    #: Options of a plugin's trigger kind.
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class StepDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One step of a journey.

    * ``action``: run the registered action ``action`` with ``params``
      (strings in ``params`` are templates over the run's context), acting as
      the user whose login is ``run_as`` when given.
    * ``wait``: a ``duration``; or ``until`` a moment (an ISO date-time, or a
      date/datetime field of the record, shifted by ``offset``); or until
      ``condition`` holds on the record, which needs a ``timeout`` (and goes
      to ``on_timeout`` when it runs out).
    * ``branch``: go to ``then`` when ``condition`` holds, else to ``else``.
    * ``stop``: end the run here.
    """

    id: str
    kind: str
    label: Translatable | None = None
    action: str | None = None
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    run_as: str | None = None
    duration: str | None = None
    until: str | None = None
    offset: str | None = None
    condition: Rule = None
    timeout: str | None = None
    on_timeout: str | None = None
    then: str | None = None
    else_: str | None = msgspec.field(default=None, name="else")
    next: str | None = None


class AutomationDef(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A trigger, a condition and a journey: the whole of one automation, as data.

    ``condition`` decides whether a trigger starts a run; ``exit_when`` is
    checked before every step and ends the run when it holds (the unpaid-order
    journey stops once the order is paid). ``reentry`` says whether a record
    may start a run while another run of it is active (``"always"``,
    ``"not_active"``) or only once ever (``"once"``). ``run_as`` is the login
    of the user the actions act as, unless a step names another.
    """

    name: str
    trigger: TriggerDef
    steps: list[StepDef]
    label: Translatable | None = None
    description: Translatable | None = None
    condition: Rule = None
    exit_when: Rule = None
    enabled: bool = True
    reentry: str = "always"
    run_as: str | None = None
    plugin: str | None = None

    def step_index(self) -> dict[str, int]:
        """Position of each step by id."""
        return {step.id: position for position, step in enumerate(self.steps)}

    def next_of(self, position: int) -> str:
        """The id of the step after the one at ``position`` (its ``next``, else the following)."""
        step = self.steps[position]
        if step.next is not None:
            return step.next
        if position + 1 < len(self.steps):
            return self.steps[position + 1].id
        return END
