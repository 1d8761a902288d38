"""The kernel's own actions and channels, registered through the same hooks as a plugin's."""

from __future__ import annotations

from collections.abc import Sequence

from jimu.automation.actions import builtin_actions
from jimu.automation.channels import builtin_channels
from jimu.automation.registry import Action, Channel, PeriodicJob, TriggerKind
from jimu.hookspecs import hookimpl

__all__ = ["jimu_actions", "jimu_message_channels", "jimu_periodic_jobs", "jimu_triggers"]


@hookimpl
def jimu_actions() -> Sequence[Action]:
    """Set fields, create a record or task, tags, assign an owner, messages, webhooks, events."""
    return builtin_actions()


@hookimpl
def jimu_message_channels() -> Sequence[Channel]:
    """The in-app inbox, email over SMTP and the generic HTTP channel."""
    return builtin_channels()


@hookimpl
def jimu_triggers() -> Sequence[TriggerKind]:
    """None: the kernel's trigger kinds are built into the engine (see TRIGGER_KINDS)."""
    return []


@hookimpl
def jimu_periodic_jobs() -> Sequence[PeriodicJob]:
    """None: the engine's own periodic work is its tick."""
    return []
