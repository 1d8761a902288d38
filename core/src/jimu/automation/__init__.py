"""Automations: triggers, journeys of steps with durable waits, actions and message channels.

* :class:`~jimu.automation.engine.AutomationEngine` runs a site's automations
  (definitions, outbox dispatch, timers, runs, the run log).
* :mod:`jimu.automation.registry`: the objects plugins register
  (:class:`Action`, :class:`Channel`, :class:`TriggerKind`, :class:`PeriodicJob`).
* :mod:`jimu.automation.celery_app`: execution on Celery, embedded or distributed.
* :mod:`jimu.automation.seeds`: the seed journeys, as data.

This module imports nothing heavy so the kernel can import its tables early.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jimu.automation.engine import AutomationEngine, emit_event
    from jimu.automation.registry import (
        Action,
        ActionContext,
        ActionDeferred,
        ActionRetry,
        Channel,
        CheckScope,
        Message,
        ParamProblem,
        PeriodicJob,
        TriggerKind,
    )

__all__ = [
    "Action",
    "ActionContext",
    "ActionDeferred",
    "ActionRetry",
    "AutomationEngine",
    "Channel",
    "CheckScope",
    "Message",
    "ParamProblem",
    "PeriodicJob",
    "TriggerKind",
    "emit_event",
]

_HOMES = {
    "AutomationEngine": "jimu.automation.engine",
    "emit_event": "jimu.automation.engine",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'jimu.automation' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_HOMES.get(name, "jimu.automation.registry"))
    return getattr(module, name)
