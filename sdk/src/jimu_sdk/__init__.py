"""The public API for Jimu plugin authors.

A plugin imports only from here, never from ``jimu`` internals::

    from jimu_sdk import EntityDef, FieldDef, PluginInfo, hookimpl

    PLUGIN = PluginInfo(name="my_plugin", version="0.1.0", kernel=">=0.1,<0.2")

    @hookimpl
    def jimu_entities():
        return [EntityDef(name="vip_card", fields=[FieldDef(name="card_no", type="text")])]

and registers the module under the ``jimu.plugins`` entry-point group of its
distribution. ``jimu_sdk.testing`` is a pytest plugin with throw-away sites.
"""

from jimu import __version__ as kernel_version
from jimu.auth import (
    SYSTEM,
    Access,
    Actor,
    EntityGrant,
    RoleDef,
    User,
    acting_as,
    current_access,
    current_actor,
)
from jimu.automation.engine import emit_event
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
from jimu.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    JimuError,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from jimu.fields import Dialect, FieldType, Storage
from jimu.hookspecs import hookimpl
from jimu.meta import EntityDef, FieldDef, IndexDef, PluginInfo, Translatable, translate
from jimu.meta.automations import AutomationDef, StepDef, TriggerDef
from jimu.meta.forms import FormDef, FormField, FormPage, FormSection, FormValidation, PublicForm
from jimu.meta.reports import DashboardDef, ReportDef
from jimu.reports import ChartType, KindRun, ReportKind, ResultColumn
from jimu.rules import Operator, OperatorContext, RuleError, SqlCall, SqlValue
from jimu.site import Site
from jimu.store.records import ListQuery, Page, SortKey

__all__ = [
    "SYSTEM",
    "Access",
    "Action",
    "ActionContext",
    "ActionDeferred",
    "ActionRetry",
    "Actor",
    "AutomationDef",
    "Channel",
    "ChartType",
    "CheckScope",
    "Conflict",
    "DashboardDef",
    "Dialect",
    "EntityDef",
    "EntityGrant",
    "FieldDef",
    "FieldProblem",
    "FieldType",
    "Forbidden",
    "FormDef",
    "FormField",
    "FormPage",
    "FormSection",
    "FormValidation",
    "IndexDef",
    "JimuError",
    "KindRun",
    "ListQuery",
    "Message",
    "NotFound",
    "Operator",
    "OperatorContext",
    "Page",
    "ParamProblem",
    "PeriodicJob",
    "PluginInfo",
    "PublicForm",
    "ReportDef",
    "ReportKind",
    "ResultColumn",
    "RoleDef",
    "RuleError",
    "Site",
    "SortKey",
    "SqlCall",
    "SqlValue",
    "StepDef",
    "Storage",
    "Translatable",
    "TriggerDef",
    "TriggerKind",
    "Unauthorized",
    "User",
    "ValidationFailed",
    "acting_as",
    "current_access",
    "current_actor",
    "emit_event",
    "hookimpl",
    "kernel_version",
    "translate",
]
