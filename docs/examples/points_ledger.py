"""A points ledger plugin: the worked example behind docs/reference/hooks.md.

Every hook the kernel calls today has an implementation here, and
``tests/test_docs.py`` loads this file as a plugin and checks each one does
what the reference says. It imports only ``jimu_sdk`` (and Litestar and
click for its route and command), as a third-party plugin would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import click
import msgspec
from litestar import Request, get

from jimu_sdk import (
    Action,
    ActionContext,
    Channel,
    ChartType,
    CheckScope,
    EntityDef,
    FieldDef,
    FieldType,
    FormDef,
    FormField,
    FormPage,
    FormSection,
    FormValidation,
    KindRun,
    ListQuery,
    Message,
    Operator,
    ParamProblem,
    PeriodicJob,
    PluginInfo,
    PublicForm,
    ReportKind,
    ResultColumn,
    Site,
    SortKey,
    SqlCall,
    SqlValue,
    Storage,
    Translatable,
    TriggerDef,
    TriggerKind,
    User,
    ValidationFailed,
    emit_event,
    hookimpl,
)

PLUGIN = PluginInfo(
    name="points_ledger",
    version="1.0.0",
    label={"en": "Points ledger", "zh-CN": "积分流水"},
    kernel=">=0.1,<0.2",
)

#: What the lifecycle hooks saw, so the documentation's tests can check them.
LIFECYCLE: list[str] = []

_SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")


# -- jimu_field_types ------------------------------------------------------------


class SkuType(FieldType):
    """A product code: upper-case letters, digits and dashes, 3 to 32 long."""

    name = "sku"
    storage: ClassVar[Storage] = "text"
    widget = "input"
    label: ClassVar[Translatable] = {"en": "SKU", "zh-CN": "货号"}

    def validate(self, field: FieldDef, value: Any) -> str | None:
        return None if _SKU.match(value) else f"{value!r} is not a SKU like TEA-0001"


@hookimpl
def jimu_field_types() -> Sequence[FieldType]:
    """Register the ``sku`` field type."""
    return [SkuType()]


# -- jimu_entities ---------------------------------------------------------------


@hookimpl
def jimu_entities() -> Sequence[EntityDef]:
    """A points account per member, and an append-only ledger of entries."""
    return [
        EntityDef(
            name="points_account",
            label={"en": "Points account", "zh-CN": "积分账户"},
            title_field="member",
            fields=[
                FieldDef(name="member", type="text", required=True, unique=True),
                FieldDef(name="balance", type="integer", default=0),
            ],
        ),
        EntityDef(
            name="points_entry",
            label={"en": "Points entry", "zh-CN": "积分流水"},
            fields=[
                FieldDef(
                    name="account", type="link", required=True, options={"target": "points_account"}
                ),
                FieldDef(name="delta", type="integer", required=True),
                FieldDef(name="sku", type="sku"),
                FieldDef(name="reason", type="text"),
            ],
        ),
    ]


# -- jimu_row_conditions -----------------------------------------------------------


@hookimpl
def jimu_row_conditions(
    site: Site, user: User | None, entity: EntityDef
) -> Mapping[str, Any] | None:
    """A member (a user holding the ``member`` role) sees only their own points account."""
    if entity.name == "points_account" and user is not None and "member" in user.roles:
        return {"==": [{"var": "member"}, {"var": "$user.login"}]}
    return None


# -- jimu_fixtures ---------------------------------------------------------------


@hookimpl
def jimu_fixtures(site: Site, kind: str) -> Mapping[str, Sequence[Mapping[str, Any]]] | None:
    """Seed: the store's own account. Demo: two members with some history."""
    if kind == "seed":
        return {"points_account": [{"member": "store"}]}
    if kind == "demo":
        return {
            "points_account": [{"member": "王芳"}, {"member": "李娜"}],
            "points_entry": [
                {"account": 2, "delta": 100, "reason": "signup"},
                {"account": 3, "delta": 50, "sku": "TEA-0001", "reason": "purchase"},
            ],
        }
    return None


# -- jimu_rule_operators ---------------------------------------------------------

TIERS = ((1000, "gold"), (100, "silver"))


def points_tier(balance: Any) -> str | None:
    """``{"points_tier": {"var": "balance"}}``: gold from 1000 points, silver from 100."""
    if balance is None:
        return None
    for threshold, tier in TIERS:
        if balance >= threshold:
            return tier
    return "bronze"


def points_tier_sql(call: SqlCall) -> SqlValue:
    """The same tiers as an SQL ``CASE``, so filters on tiers run in the database."""
    balance = call.args[0]
    if balance.type not in {"integer", "decimal", "float"}:
        call.fail("points_tier needs a number")
    branches = " ".join(f"WHEN {balance.sql} >= {{}} THEN {{}}" for _ in TIERS)
    sql = f"(CASE WHEN {balance.sql} IS NULL THEN NULL {branches} ELSE {{}} END)"
    params: list[Any] = [*balance.params]
    for threshold, tier in TIERS:
        params.extend([*balance.params, threshold, tier])
    params.append("bronze")
    return SqlValue(sql, tuple(params), "text")


@hookimpl
def jimu_rule_operators() -> Sequence[Operator]:
    """Add ``points_tier`` to the site's rules (filters, segments, conditions)."""
    return [
        Operator(
            "points_tier",
            points_tier,
            sql=points_tier_sql,
            min_args=1,
            max_args=1,
            returns="text",
            doc="The member tier of a points balance.",
        )
    ]


# -- jimu_forms and jimu_verify_captcha -------------------------------------------

#: The answer the example captcha accepts (a real plugin asks a captcha service).
CAPTCHA_ANSWER = "42"


@hookimpl
def jimu_forms() -> Sequence[FormDef]:
    """A public sign-up form for points accounts: members join from the shop's page."""
    return [
        FormDef(
            name="points_signup",
            entity="points_account",
            label={"en": "Join the points club", "zh-CN": "加入积分会员"},
            pages=[
                FormPage(
                    sections=[
                        FormSection(
                            fields=[
                                FormField(
                                    field="member",
                                    label={"en": "Your name", "zh-CN": "姓名"},
                                    validations=[
                                        FormValidation(
                                            rule={"<=": [{"length": {"var": "member"}}, 20]},
                                            message={
                                                "en": "at most 20 characters",
                                                "zh-CN": "最多 20 个字",
                                            },
                                        )
                                    ],
                                ),
                                FormField(field="balance", default=0, read_only=True),
                            ]
                        )
                    ]
                )
            ],
            public=PublicForm(
                rate_limit=10, captcha=True, success_message={"en": "Welcome!", "zh-CN": "欢迎！"}
            ),
        )
    ]


@hookimpl
def jimu_verify_captcha(token: str) -> bool | None:
    """Accept the example's fixed answer."""
    return token == CAPTCHA_ANSWER


# -- record hooks ----------------------------------------------------------------


@hookimpl
def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
    """Refuse empty entries and fill in a default reason."""
    if entity.name != "points_entry":
        return
    if values["delta"] == 0:
        raise ValidationFailed.field("delta", "an entry must add or remove points")
    values.setdefault("reason", "manual")
    if values["reason"] is None:
        values["reason"] = "manual"


@hookimpl
async def jimu_after_create(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
    """Keep the account balance in step, in the same transaction as the entry."""
    if entity.name != "points_entry":
        return
    account = await site.records.get("points_account", record["account"])
    balance = account["balance"] + record["delta"]
    if balance < 0:
        raise ValidationFailed.field("delta", f"the account has only {account['balance']} points")
    await site.records.update("points_account", account["id"], {"balance": balance})
    # automations can start on this (see jimu_triggers below)
    await emit_event(
        site,
        "points_changed",
        {"before": account["balance"], "balance": balance},
        entity="points_account",
        record_id=account["id"],
    )


@hookimpl
def jimu_before_update(
    site: Site, entity: EntityDef, record: Mapping[str, Any], changes: dict[str, Any]
) -> None:
    """Ledger entries are append-only: correct them with a new entry."""
    if entity.name == "points_entry":
        raise ValidationFailed.field(
            "id", "ledger entries cannot be changed; add a correcting entry"
        )


@hookimpl
def jimu_after_update(
    site: Site, entity: EntityDef, before: Mapping[str, Any], record: Mapping[str, Any]
) -> None:
    """Note balance changes (a real plugin might notify the member)."""
    if entity.name == "points_account" and before["balance"] != record["balance"]:
        LIFECYCLE.append(f"balance {record['member']}: {before['balance']} -> {record['balance']}")


@hookimpl
def jimu_before_delete(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
    """Entries are never deleted; accounts only when empty."""
    if entity.name == "points_entry":
        raise ValidationFailed.field("id", "ledger entries cannot be deleted")
    if entity.name == "points_account" and record["balance"]:
        raise ValidationFailed.field("balance", "only an empty account can be closed")


@hookimpl
def jimu_after_delete(site: Site, entity: EntityDef, record: Mapping[str, Any]) -> None:
    """Note closed accounts."""
    if entity.name == "points_account":
        LIFECYCLE.append(f"closed {record['member']}")


# -- jimu_report_kinds and jimu_chart_types -------------------------------------


class TopEarnersOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How many accounts the ``top_earners`` report lists."""

    n: int = 10


class TopEarners(ReportKind):
    """The accounts that earned the most points (entries with a positive delta)."""

    name = "top_earners"
    label: ClassVar[Translatable] = {"en": "Top earners", "zh-CN": "积分获取排行"}
    options_type = TopEarnersOptions
    description = "accounts by points earned, most first"

    async def run(self, run: KindRun) -> tuple[list[ResultColumn], list[dict[str, Any]]]:
        account = run.field("account", "options", use="group by")
        delta = run.field("delta", "options")
        member = run.field("account.member", "options", use="group by")
        # the report's filter, its parameters and the user's row conditions
        conditions, params = run.where()
        conditions.append(f"{delta.sql} > 0")
        rows = await run.fetch(
            f"SELECT {account.sql} AS account, {member.sql} AS member, SUM({delta.sql}) AS earned "
            f"FROM {run.runtime.quoted}{run.paths.join_sql()} WHERE {' AND '.join(conditions)} "
            f"GROUP BY {account.sql}, {member.sql} ORDER BY earned DESC, account LIMIT {{}}",
            [*params, run.options.n],
        )
        columns = [
            ResultColumn(key="member", label="member", role="dimension", type="text"),
            ResultColumn(key="earned", label="earned", role="measure", type="int"),
        ]
        return columns, [{"member": r["member"], "earned": int(r["earned"])} for r in rows]


@hookimpl
def jimu_report_kinds() -> Sequence[ReportKind]:
    """Register the ``top_earners`` report kind."""
    return [TopEarners()]


@hookimpl
def jimu_chart_types() -> Sequence[ChartType]:
    """A thermometer filling up to a points goal: one number, no dimension."""
    return [
        ChartType(
            name="points_thermometer",
            label={"en": "Points thermometer", "zh-CN": "积分温度计"},
            dimensions=(0, 0),
            measures=(1, 1),
            options=("goal",),
        )
    ]


# -- HTTP and CLI ----------------------------------------------------------------


@get("/api/v1/plugins/points_ledger/leaderboard")
async def leaderboard(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The five members with the most points."""
    site: Site = request.app.state.site
    page = await site.records.query(
        "points_account",
        ListQuery(
            sort=[SortKey("balance", descending=True)],
            fields=["member", "balance"],
            limit=5,
            count="none",
        ),
    )
    return {"leaders": [{"member": r["member"], "balance": r["balance"]} for r in page.data]}


@hookimpl
def jimu_routes(site: Site) -> Sequence[Any]:
    """Mount the leaderboard under the plugin's own path."""
    return [leaderboard]


@click.command("points-rules")
def points_rules() -> None:
    """Print how points work on this site."""
    click.echo("1 point per yuan spent; entries are append-only.")


@hookimpl
def jimu_cli_commands() -> Sequence[Any]:
    """Add ``jimu points-rules``."""
    return [points_rules]


# -- lifecycle -------------------------------------------------------------------


@hookimpl
def jimu_install(site: Site) -> None:
    """First enable on a site: tables and seed data exist already."""
    LIFECYCLE.append(f"install on {site.config.name}")


@hookimpl
def jimu_upgrade(site: Site, from_version: str) -> None:
    """A newer version of the plugin starts on a site that had ``from_version``."""
    LIFECYCLE.append(f"upgrade from {from_version} to {PLUGIN.version}")


@hookimpl
def jimu_uninstall(site: Site) -> None:
    """Disabled on a site: the kernel keeps the tables and data."""
    LIFECYCLE.append(f"uninstall from {site.config.name}")


@hookimpl
async def jimu_startup(site: Site) -> None:
    """The site's app or worker started and its database is open."""
    LIFECYCLE.append(f"startup of {site.config.name}")


# -- automation: jimu_actions, jimu_triggers, jimu_message_channels, jimu_periodic_jobs --


class AwardPoints(Action):
    """An automation step: add points to the account of the run's record (``{"points": 50}``)."""

    name = "award_points"
    label = "Award points"

    def check(self, params: Mapping[str, Any], scope: CheckScope) -> None:
        points = params.get("points")
        if not isinstance(points, int) or isinstance(points, bool) or points == 0:
            raise ParamProblem("params.points", "give a non-zero whole number of points")
        if scope.entity is None or scope.entity.name != "points_account":
            raise ParamProblem("params.points", "award_points works on points_account records")

    async def run(self, context: ActionContext, params: dict[str, Any]) -> Any:
        entry = await context.site.records.create(
            "points_entry",
            {"account": context.record_id, "delta": params["points"], "reason": "automation"},
        )
        return {"entry": entry["id"]}


@hookimpl
def jimu_actions() -> Sequence[Action]:
    """Automations can award points (applied once per run and step, even when retried)."""
    return [AwardPoints()]


class BalanceReached(TriggerKind):
    """Starts a run when an account's balance crosses ``options.threshold`` upwards."""

    name = "points_balance_reached"
    event = "points_changed"

    def check(self, trigger: TriggerDef, scope: CheckScope) -> None:
        if not isinstance(trigger.options.get("threshold"), int):
            raise ParamProblem("options.threshold", "give the balance, a whole number")

    def matches(self, trigger: TriggerDef, payload: Mapping[str, Any]) -> bool:
        threshold = int(trigger.options["threshold"])
        return bool(payload["before"] < threshold <= payload["balance"])


@hookimpl
def jimu_triggers() -> Sequence[TriggerKind]:
    """A trigger kind on this plugin's own ``points_changed`` event."""
    return [BalanceReached()]


#: What the ``ledger_log`` channel delivered, so the documentation's tests can check it.
LEDGER_LOG: list[str] = []


class LedgerLog(Channel):
    """A channel writing messages to the ledger's log (a stand-in for a members' app push)."""

    kind = "ledger_log"
    external = True
    needs_config = False

    async def send(self, site: Site, config: Mapping[str, Any], message: Message) -> Any:
        LEDGER_LOG.append(f"{message.to}: {message.body}")
        return {"logged": len(LEDGER_LOG)}


@hookimpl
def jimu_message_channels() -> Sequence[Channel]:
    """Messages can go to the ledger's log (``"channel": "ledger_log"`` in send_message)."""
    return [LedgerLog()]


def close_the_day(site: Site) -> None:
    """The nightly job: note that the day's points are final."""
    LIFECYCLE.append(f"day closed on {site.config.name}")


@hookimpl
def jimu_periodic_jobs() -> Sequence[PeriodicJob]:
    """Close the day at 03:00 (site time), once, on whichever worker claims it."""
    return [PeriodicJob(name="close_the_day", cron="0 3 * * *", run=close_the_day)]
