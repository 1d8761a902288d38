"""Every extension point of the kernel, one documented stub each.

Plugins implement these with :data:`jimu_sdk.hookimpl`; the names must match
exactly (the plugin manager refuses unknown ``jimu_*`` names at load time).
Each docstring says when the hook is called, what it returns, whether it may
be a coroutine function (the kernel awaits the result) and whether the first
non-``None`` result wins. Hooks that return lists are collected from every
plugin, in load order (requirements first); use ``tryfirst``/``trylast`` to
move within that order, never replace what another plugin returned.

Reference with an example per hook: ``docs/reference/hooks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from jimu.fields import FieldType
    from jimu.meta import EntityDef
    from jimu.site import Site

PROJECT_NAME = "jimu"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Record = Mapping[str, Any]


# --------------------------------------------------------------------------
# Metadata: what a plugin adds to a site's model
# --------------------------------------------------------------------------


@hookspec
def jimu_entities() -> Sequence[EntityDef]:
    """Declare the entities this plugin owns.

    Called when a site loads its plugins and whenever it rebuilds its model.
    Returns a list of :class:`~jimu.meta.EntityDef`; the kernel creates their
    tables (additive changes only) when the plugin is enabled. A site's own
    additions to these entities are an overlay and survive plugin upgrades.
    Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_field_types() -> Sequence[FieldType]:
    """Register field types (column storage, validation, widget).

    Called once when a plugin manager is built. Returns a list of
    :class:`~jimu.fields.FieldType` instances; a name registered twice is an
    error naming both plugins. Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_forms() -> Sequence[Any]:
    """Declare forms (tabs, sections, per-field rules) laying out entities.

    Called when a site builds its model. Returns a list of form definitions.
    Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_report_kinds() -> Sequence[Any]:
    """Register report kinds that are not a plain group-by (RFM, funnel, cohort).

    Called when a site builds its report engine. Returns a list of report-kind
    objects. Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_chart_types() -> Sequence[Any]:
    """Register chart types and the data shape each one needs.

    Called when a site builds its report engine. Returns a list of chart-type
    descriptions. Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_menu_entries() -> Sequence[Mapping[str, Any]]:
    """Add entries (and pages) to the web UI's navigation menu.

    Called when the UI builds its menu for a user. Returns a list of mappings
    with at least ``name``, ``label`` and ``path``. Synchronous. All results
    are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_fixtures(site: Site, kind: str) -> Mapping[str, Sequence[Record]] | None:
    """Provide records to load into a site.

    Called when the plugin is enabled on a site (``kind="seed"``: data the
    plugin needs to work) and when a demo site is created (``kind="demo"``:
    sample data). Returns a mapping of entity name to a list of records, or
    ``None``. May be async. All results are collected.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------
# Rules and automation
# --------------------------------------------------------------------------


@hookspec
def jimu_rule_operators() -> Sequence[Any]:
    """Add JsonLogic operators to the rule engine.

    Called when a site builds its rule registry. Returns a list of
    :class:`jimu.rules.Operator`. An operator name taken twice is an error.
    Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_actions() -> Sequence[Any]:
    """Register automation actions (set field, send message, award points...).

    Called when a site builds its automation engine (an app's first
    automation request, a worker's first task). Returns a list of
    :class:`jimu.automation.Action` instances; a name taken twice is an error
    naming both plugins. The kernel's own actions come first. Synchronous.
    All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_triggers() -> Sequence[Any]:
    """Register automation trigger kinds beyond the kernel's record/schedule/webhook ones.

    Called when a site builds its automation engine. Returns a list of
    :class:`jimu.automation.TriggerKind` instances, each firing on a custom
    event (emitted with :func:`jimu.automation.emit_event`) when its
    ``matches`` says so. Synchronous. All results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_message_channels() -> Sequence[Any]:
    """Register message channel kinds (SMS, email, WeCom, DingTalk, ...).

    Called when a site builds its automation engine. Returns a list of
    :class:`jimu.automation.Channel` instances; sites configure named
    instances of a kind in ``site.toml``. Synchronous. All results are
    collected.
    """
    raise NotImplementedError


@hookspec
def jimu_periodic_jobs() -> Sequence[Any]:
    """Register periodic jobs (a cron schedule in the site's time zone and a callable).

    Called when a site builds its automation engine. Returns a list of
    :class:`jimu.automation.PeriodicJob`; each occurrence runs once, on
    whichever worker's tick claims it first (``run(site)`` may be async).
    Synchronous. All results are collected.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------
# Records: validate or enrich before a write, react after it
# --------------------------------------------------------------------------


@hookspec
def jimu_before_create(site: Site, entity: EntityDef, values: dict[str, Any]) -> None:
    """Validate or enrich a record about to be created.

    Called inside the write's transaction, before the insert, once per record
    (bulk writes included). ``values`` holds the validated input and may be
    changed in place. Raise :class:`jimu.errors.ValidationFailed` to reject the
    write: the client gets a 422 naming the field and nothing is written.
    May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_after_create(site: Site, entity: EntityDef, record: Record) -> None:
    """React to a created record.

    Called inside the same transaction right after the insert and its outbox
    event, so work done here commits or rolls back with the record; raising
    rolls the whole write back. ``record`` is the stored record with its
    ``id``. May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_before_update(
    site: Site, entity: EntityDef, record: Record, changes: dict[str, Any]
) -> None:
    """Validate or enrich an update before it is written.

    Called inside the write's transaction. ``record`` is the current stored
    record; ``changes`` holds only the fields being changed and may be changed
    in place. Raise :class:`jimu.errors.ValidationFailed` to reject (422).
    May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_after_update(site: Site, entity: EntityDef, before: Record, record: Record) -> None:
    """React to an updated record.

    Called inside the same transaction after the update and its outbox event.
    ``before`` and ``record`` are the stored record before and after. May be
    async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_before_delete(site: Site, entity: EntityDef, record: Record) -> None:
    """Veto or prepare the deletion of a record.

    Called inside the write's transaction before the delete. Raise
    :class:`jimu.errors.ValidationFailed` to refuse (422). May be async.
    Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_after_delete(site: Site, entity: EntityDef, record: Record) -> None:
    """React to a deleted record (``record`` is what was deleted).

    Called inside the same transaction after the delete and its outbox event.
    May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def jimu_verify_captcha(site: Site, form: Any, token: str, client: str) -> bool | None:
    """Verify the captcha answer sent with an anonymous form submission.

    Called when a public form with ``captcha`` enabled is submitted; ``token``
    is the ``X-Captcha-Token`` header, ``client`` the submitter's address.
    Return ``True`` (solved), ``False`` (refused) or ``None`` (not this
    plugin's captcha). The first non-``None`` result wins. May be async.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------
# Permissions
# --------------------------------------------------------------------------


@hookspec
def jimu_row_conditions(site: Site, user: Any, entity: EntityDef) -> Mapping[str, Any] | None:
    """Add a row condition (a JsonLogic rule) limiting which records a user sees.

    Called when the permission engine first needs the rows of ``entity`` for
    ``user`` (a :class:`jimu.auth.User`, or ``None`` for a principal that is
    not a user); the result is kept until a user, role or share changes.
    Returns a JsonLogic rule over the entity's fields, with the user in scope
    as ``$user`` (``$user.id``, ``$user.login``, ``$user.roles``, attributes),
    or ``None``. Every returned condition applies (they are ANDed with the
    roles' row rules) on every read and write path. Super-users and the
    system are not narrowed. Synchronous. All results are collected.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------
# HTTP and CLI
# --------------------------------------------------------------------------


@hookspec
def jimu_routes(site: Site) -> Sequence[Any]:
    """Add HTTP routes to a site's app.

    Called once when the Litestar app of a site is built. Returns a list of
    Litestar route handlers, controllers or routers; mount them under a path
    of the plugin's own (``/api/v1/plugins/<name>/...``). Synchronous. All
    results are collected.
    """
    raise NotImplementedError


@hookspec
def jimu_cli_commands() -> Sequence[Any]:
    """Add subcommands to the ``jimu`` command line.

    Called when ``jimu`` starts. Returns a list of ``click.Command`` objects;
    a name clashing with a kernel command is an error. Synchronous. All
    results are collected.
    """
    raise NotImplementedError


# --------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------


@hookspec
def jimu_install(site: Site) -> None:
    """Prepare a site when this plugin is enabled on it.

    Called only on the plugin being enabled — the first time, and again when
    it is enabled after a disable — after its tables exist and (the first
    time) its seed fixtures are loaded. May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_upgrade(site: Site, from_version: str) -> None:
    """Migrate a site's data when the plugin's installed version changes.

    Called only on that plugin, when a site starts (or re-enables it) with
    another version than the one recorded at install time; the new version is
    recorded afterwards. May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_uninstall(site: Site) -> None:
    """Clean up when the plugin is disabled on a site.

    Called only on the plugin being disabled. The kernel keeps the plugin's
    tables and data (re-enabling brings them back); this hook may stop jobs or
    revoke external registrations. May be async. Return value ignored.
    """
    raise NotImplementedError


@hookspec
def jimu_startup(site: Site) -> None:
    """Run when a site's app or worker starts, after its database is open.

    Called on every enabled plugin. May be async. Return value ignored.
    """
    raise NotImplementedError
