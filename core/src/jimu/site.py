"""A site: one client's store, as a folder with a ``site.toml``.

The folder holds the configuration (database URL, broker URL, enabled plugins
and their settings, secret key, locale, time zone) and, by default, the SQLite
database. :class:`Site` ties together the plugin manager, the database, the
site's model (plugin entities plus the site's own overlay) and the record
repository. It is created explicitly (``Site.load(folder)``) and opened in the
event loop that will use it.
"""

from __future__ import annotations

import logging
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
import tomli_w

from jimu.auth.service import Auth
from jimu.automation.store import ensure_tables as ensure_automation_tables
from jimu.errors import Conflict, FieldProblem, NotFound, PluginError, SiteError, ValidationFailed
from jimu.fields import VirtualColumn
from jimu.files.store import ensure_tables as ensure_file_tables
from jimu.forms import CompiledForm, compile_form
from jimu.meta import EntityDef, FieldDef, MetadataError
from jimu.meta.forms import FORM_NAME_PATTERN, FormDef
from jimu.plugins import PluginManager, available_plugins, load_plugins
from jimu.rules import Operator, OperatorRegistry, default_registry
from jimu.store import schema
from jimu.store.database import Database
from jimu.store.metadata import MetadataStore
from jimu.store.records import EntityRuntime, RecordRepository, default_problem
from jimu.store.schema import SchemaChange, SchemaChangeFailed, SchemaPlan

__all__ = ["CONFIG_FILE", "Site", "SiteConfig", "create_site"]

CONFIG_FILE = "site.toml"

log = logging.getLogger("jimu.site")


class SiteConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The contents of ``site.toml``."""

    name: str
    database_url: str = "sqlite:///site.sqlite"
    broker_url: str = "filesystem://"
    plugins: list[str] = msgspec.field(default_factory=list)
    plugin_settings: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    secret_key: str = ""
    locale: str = "zh-CN"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"
    bulk_limit: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    #: Seconds a list's capped total is reused (0: count every request).
    count_reuse_seconds: float = 2.0

    def to_toml(self) -> dict[str, Any]:
        """The TOML document of this configuration, grouped for people to read."""
        return {
            "site": {
                "name": self.name,
                "locale": self.locale,
                "timezone": self.timezone,
                "currency": self.currency,
                "secret_key": self.secret_key,
            },
            "database": {"url": self.database_url},
            "broker": {"url": self.broker_url},
            "plugins": {"enabled": self.plugins, "settings": self.plugin_settings},
            "api": {
                "bulk_limit": self.bulk_limit,
                "max_body_bytes": self.max_body_bytes,
                "count_reuse_seconds": self.count_reuse_seconds,
            },
        }

    @classmethod
    def from_toml(cls, document: Mapping[str, Any], where: str) -> SiteConfig:
        """Read the grouped TOML document; an unknown section or key is an error naming it."""
        sections: dict[str, dict[str, str]] = {
            "site": {k: k for k in ("name", "locale", "timezone", "currency", "secret_key")},
            "database": {"url": "database_url"},
            "broker": {"url": "broker_url"},
            "plugins": {"enabled": "plugins", "settings": "plugin_settings"},
            "api": {k: k for k in ("bulk_limit", "max_body_bytes", "count_reuse_seconds")},
        }
        flat: dict[str, Any] = {}
        for section, values in document.items():
            keys = sections.get(section)
            if keys is None:
                raise SiteError(
                    f"{where}: unknown section [{section}] (known: {', '.join(sections)})"
                )
            if not isinstance(values, dict):
                raise SiteError(f"{where}: [{section}] must be a table of keys")
            for key, value in values.items():
                if key not in keys:
                    raise SiteError(
                        f"{where}: unknown key {key!r} in [{section}] (known: {', '.join(keys)})"
                    )
                flat[keys[key]] = value
        try:
            return msgspec.convert(flat, cls)
        except msgspec.ValidationError as exc:
            raise SiteError(f"{where}: {exc}") from exc


def create_site(
    folder: Path,
    *,
    name: str | None = None,
    database_url: str | None = None,
    plugins: Iterable[str] = (),
    timezone: str = "Asia/Shanghai",
    locale: str = "zh-CN",
) -> SiteConfig:
    """Create a site folder with its ``site.toml``; refuse to overwrite one."""
    config_path = folder / CONFIG_FILE
    if config_path.exists():
        raise SiteError(f"{config_path} already exists; a site is never overwritten")
    folder.mkdir(parents=True, exist_ok=True)
    config = SiteConfig(
        name=name or folder.name,
        database_url=database_url or "sqlite:///site.sqlite",
        plugins=list(dict.fromkeys(plugins)),
        secret_key=secrets.token_urlsafe(32),
        timezone=timezone,
        locale=locale,
    )
    config_path.write_text(tomli_w.dumps(config.to_toml()), encoding="utf-8")
    config_path.chmod(0o600)
    return config


class Site:
    """A loaded site: configuration, plugins, database, model and records."""

    def __init__(
        self,
        folder: Path,
        config: SiteConfig,
        *,
        env: Mapping[str, str] | None = None,
        extra_plugins: Mapping[str, ModuleType] | None = None,
    ) -> None:
        self.folder = folder
        self.config = config
        self._env = env
        self._sources: dict[str, Any] = {**available_plugins(), **(extra_plugins or {})}
        self.plugins: PluginManager = self._load_plugins(config.plugins)
        self.db = Database(config.database_url, base_dir=folder)
        self.meta = MetadataStore(self.db)
        self.records = RecordRepository(self)
        self.auth = Auth(self)
        self.entities: dict[str, EntityDef] = {}
        self._runtimes: dict[str, EntityRuntime] = {}
        self.pending = SchemaPlan()
        self._dropped: set[str] = set()
        self.model_version = 0
        #: Compiled forms by name (plugin forms, with the site's own on top).
        self.forms: dict[str, CompiledForm] = {}
        #: Forms that no longer fit their entity (a field was removed), with why.
        self.broken_forms: dict[str, str] = {}
        self._default_forms: dict[str, str] = {}

    def _load_plugins(self, enabled: Iterable[str]) -> PluginManager:
        manager = load_plugins(enabled, available=self._sources, env=self._env)
        self.rules = self._rule_registry(manager)
        return manager

    def _rule_registry(self, manager: PluginManager) -> OperatorRegistry:
        """The site's rule operators: standard, kernel, then each plugin's, in its time zone."""
        try:
            registry = default_registry(timezone=self.config.timezone)
        except (KeyError, ValueError) as exc:
            raise SiteError(
                f"{self.folder / CONFIG_FILE}: unknown time zone {self.config.timezone!r}"
            ) from exc
        manager.register_typed(
            "jimu_rule_operators", Operator, lambda operator, _owner: registry.add(operator)
        )
        return registry

    @classmethod
    def load(
        cls,
        folder: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        extra_plugins: Mapping[str, ModuleType] | None = None,
    ) -> Site:
        """Read ``site.toml`` in ``folder`` and build the site (not opened yet).

        ``extra_plugins`` makes plugin modules available beside the installed
        entry points (tests use it to register a throw-away plugin).
        """
        path = Path(folder)
        config_path = path / CONFIG_FILE
        if not config_path.is_file():
            raise SiteError(
                f"{path} is not a Jimu site (no {CONFIG_FILE}); create one with `jimu site new {path}`"
            )
        try:
            document = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SiteError(f"{config_path}: {exc}") from exc
        config = SiteConfig.from_toml(document, str(config_path))
        return cls(path.resolve(), config, env=env, extra_plugins=extra_plugins)

    def save_config(self) -> None:
        """Write the current configuration back to ``site.toml``."""
        (self.folder / CONFIG_FILE).write_text(
            tomli_w.dumps(self.config.to_toml()), encoding="utf-8"
        )

    # -- lifecycle -------------------------------------------------------

    async def open(self) -> None:
        """Open the database, create kernel tables, sync the schema, run startup hooks."""
        await self.db.open()
        try:
            await self.meta.ensure_tables()
            await ensure_file_tables(self.db)
            await ensure_automation_tables(self.db)
            await self.auth.open()
            await self._install_new_plugins()
            await self.sync()
            await self.plugins.call_async("jimu_startup", site=self)
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        """Close the database pool."""
        await self.db.close()

    async def __aenter__(self) -> Site:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _install_new_plugins(self) -> None:
        installed = await self.meta.installed_plugins()
        for plugin in self.plugins.external():
            record = installed.get(plugin.name)
            if record is None or not record[1]:
                await self._sync_tables_for_install()
                if record is None:  # seed data once; re-enabling finds the kept data
                    await self.load_fixtures("seed", only=plugin.name)
                elif record[0] != plugin.info.version:  # upgraded while disabled
                    await self.plugins.call_plugin(
                        plugin.name, "jimu_upgrade", site=self, from_version=record[0]
                    )
                await self.plugins.call_plugin(plugin.name, "jimu_install", site=self)
                await self.meta.record_plugin(plugin.name, plugin.info.version, True)
            elif record[0] != plugin.info.version:
                await self._sync_tables_for_install()
                await self.plugins.call_plugin(
                    plugin.name, "jimu_upgrade", site=self, from_version=record[0]
                )
                await self.meta.record_plugin(plugin.name, plugin.info.version, True)

    async def _sync_tables_for_install(self) -> None:
        if not self._runtimes:
            await self.sync()

    # -- the model -------------------------------------------------------

    async def _build_model(self) -> dict[str, EntityDef]:
        stored = await self.meta.entities()
        model: dict[str, EntityDef] = {}
        self._dropped = {name for name, row in stored.items() if row.deleted and row.plugin is None}
        for entity in self.plugins.entities():
            if entity.name in model:
                raise PluginError(
                    f"entity {entity.name!r} is declared by both {model[entity.name].plugin!r} "
                    f"and {entity.plugin!r}; two plugins may not own one entity"
                )
            self._check_entity(entity)
            row = stored.get(entity.name)
            if row is not None and row.plugin is None and not row.deleted:
                raise PluginError(
                    f"plugin {entity.plugin!r} declares entity {entity.name!r}, "
                    "but the site already has its own entity of that name"
                )
            if row is None:
                overlay = EntityDef(name=entity.name, plugin=entity.plugin)
                await self.meta.save_entity(
                    overlay, plugin=entity.plugin, summary=f"declared by {entity.plugin}"
                )
            else:
                overlay = row.definition
            model[entity.name] = _merge_overlay(entity, overlay)
        for name, row in stored.items():
            if row.plugin is None and not row.deleted:
                model[name] = row.definition
        return model

    def _check_entity(self, entity: EntityDef) -> None:
        try:
            entity.check()
            # what fields may refer to: the site's model, every plugin's entities, this one
            model = {
                **self.entities,
                **{e.name: e for e in self.plugins.entities()},
                entity.name: entity,
            }
            for position, definition in enumerate(entity.fields):
                field_type = self.plugins.field_types.get(definition.type)
                if field_type is None:
                    raise MetadataError(
                        f"fields[{position}].type",
                        f"unknown field type {definition.type!r} "
                        f"(known: {', '.join(self.plugins.field_types.names())})",
                    )
                field_type.check_options(definition, f"fields[{position}]")
                field_type.check_in_entity(
                    definition, entity, f"fields[{position}]", self.rules, model
                )
                if definition.default is not None:
                    reason = default_problem(field_type, definition)
                    if reason:
                        raise MetadataError(f"fields[{position}].default", reason)
                if field_type.storage_for(definition) == "link":
                    target = definition.options["target"]
                    if target not in model:
                        raise MetadataError(
                            f"fields[{position}].options.target", f"unknown entity {target!r}"
                        )
        except MetadataError as exc:
            raise ValidationFailed(FieldProblem(exc.path, exc.reason)) from exc

    async def sync(self, *, strict: bool = False) -> SchemaPlan:
        """Rebuild the model, apply safe schema changes, and refresh the runtimes.

        Returns the destructive changes left pending for ``jimu migrate``. A
        safe change the database refuses (a unique index over duplicates) raises
        :class:`~jimu.store.schema.SchemaChangeFailed` when ``strict``; otherwise
        (a site opening) it stays pending with its reason, so the site still opens.
        """
        model = await self._build_model()
        plan = await schema.diff(
            self.db, model.values(), self.plugins.field_types, dropped_entities=self._dropped
        )
        blocked: list[SchemaChange] = []
        known_blocked = {change.key for change in self.pending.changes if change.blocked}
        for change in plan.safe:
            try:
                await schema.apply(self.db, [change])
            except SchemaChangeFailed as exc:
                if strict and change.key not in known_blocked:
                    raise  # this very change is refused: the caller's transaction rolls back
                if change.key not in known_blocked:
                    log.warning("site %s: %s", self.config.name, exc.detail)
                change.blocked = exc.detail
                blocked.append(change)
        self.entities = model
        runtimes = {}
        registry = self.plugins.field_types
        for entity in model.values():
            columns = await self.db.table_columns(entity.name)
            live = schema.live_fields(entity, columns, registry)
            virtual: dict[str, VirtualColumn] = {}
            for definition in entity.fields:
                if not registry[definition.type].virtual:
                    continue
                try:
                    virtual[definition.name] = registry[definition.type].virtual_column(
                        definition, entity, model, registry, self.db.dialect
                    )
                except MetadataError as exc:  # what it reads changed: out of the API until fixed
                    log.warning(
                        "site %s: %s.%s: %s", self.config.name, entity.name, definition.name, exc
                    )
                    live.discard(definition.name)
            runtimes[entity.name] = EntityRuntime(
                entity, live, registry, self.db.dialect, virtual=virtual
            )
        self._runtimes = runtimes
        await self._build_forms()
        self.pending = SchemaPlan([*blocked, *plan.destructive])
        self.model_version += 1
        self.auth.forget_accesses()  # field lists of entities may have changed
        return self.pending

    async def _change_model(
        self, definition: EntityDef, *, plugin: str | None, summary: str, deleted: bool = False
    ) -> None:
        """Save a metadata change and apply its safe schema changes, all or nothing."""
        async with self.db.transaction():
            await self.meta.save_entity(definition, plugin=plugin, summary=summary, deleted=deleted)
            await self.sync(strict=True)

    # -- forms ------------------------------------------------------------

    def _compile_form(self, form: FormDef) -> CompiledForm:
        runtime = self._runtimes.get(form.entity)
        if runtime is None:
            raise MetadataError("entity", f"unknown entity {form.entity!r}")
        return compile_form(form, runtime.entity, self.rules)

    async def _build_forms(self) -> None:
        declared: dict[str, FormDef] = {}
        for owner, form in self.plugins.collect_typed("jimu_forms", FormDef):
            if form.name in declared:
                raise PluginError(f"form {form.name!r} is declared by two plugins")
            declared[form.name] = msgspec.structs.replace(form, plugin=owner)
        declared.update(await self.meta.forms())  # the site's own, over a plugin's of the same name
        forms: dict[str, CompiledForm] = {}
        broken: dict[str, str] = {}
        defaults: dict[str, str] = {}
        for name, form in sorted(declared.items()):
            try:
                forms[name] = self._compile_form(form)
            except MetadataError as exc:
                if form.plugin is not None and form.entity in self._runtimes:
                    raise PluginError(f"plugin {form.plugin!r}: form {name!r}: {exc}") from exc
                broken[name] = str(exc)  # its entity changed under it; the form waits to be fixed
                log.warning("site %s: form %s is broken: %s", self.config.name, name, exc)
                continue
            if form.default:
                defaults.setdefault(form.entity, name)
        self.forms, self.broken_forms, self._default_forms = forms, broken, defaults

    def form_for(self, entity: str, name: str | None) -> CompiledForm | None:
        """The form whose rules apply to a write: the named one, else the entity's default."""
        if name is None:
            default = self._default_forms.get(entity)
            return self.forms[default] if default else None
        form = self.forms.get(name)
        if form is None:
            if name in self.broken_forms:
                raise Conflict(
                    f"form {name!r} no longer fits its entity: {self.broken_forms[name]}"
                )
            raise NotFound(f"no form named {name!r}")
        if form.definition.entity != entity:
            raise ValidationFailed.field(
                "form", f"form {name!r} is for {form.definition.entity!r}, not {entity!r}"
            )
        return form

    async def save_form(self, form: FormDef) -> CompiledForm:
        """Create or replace one of the site's forms, after checking it against its entity."""
        if form.plugin is not None:
            raise ValidationFailed.field(
                "plugin", "forms saved by the site belong to the site; leave plugin out"
            )
        if not re.fullmatch(FORM_NAME_PATTERN, form.name):
            raise ValidationFailed.field("name", f"{form.name!r} is not a valid form name")
        try:
            compiled = self._compile_form(form)
        except MetadataError as exc:
            raise ValidationFailed(FieldProblem(exc.path, exc.reason)) from exc
        other_default = self._default_forms.get(form.entity)
        if form.default and other_default not in (None, form.name):
            raise Conflict(f"entity {form.entity!r} already has a default form, {other_default!r}")
        await self.meta.save_form(form)
        await self._build_forms()
        self.model_version += 1
        return compiled

    async def delete_form(self, name: str) -> None:
        """Delete one of the site's forms (a plugin's form reappears if the site had replaced it)."""
        stored = await self.meta.forms()
        if name not in stored:
            if name in self.forms:
                raise ValidationFailed.field(
                    "name",
                    f"form {name!r} belongs to plugin {self.forms[name].definition.plugin!r}",
                )
            raise NotFound(f"no form named {name!r}")
        await self.meta.delete_form(name)
        await self._build_forms()
        self.model_version += 1

    def runtime(self, name: str) -> EntityRuntime:
        """The runtime of entity ``name``; :class:`NotFound` when there is none."""
        runtime = self._runtimes.get(name)
        if runtime is None:
            raise NotFound(f"no entity named {name!r}")
        return runtime

    def entity(self, name: str) -> EntityDef:
        """The merged definition of entity ``name``."""
        return self.runtime(name).entity

    # -- changing the model ----------------------------------------------

    async def create_entity(self, entity: EntityDef) -> EntityDef:
        """Add a site-owned entity at run time and create its table."""
        if entity.plugin is not None:
            raise ValidationFailed.field(
                "plugin", "entities created at run time belong to the site; leave plugin out"
            )
        self._check_entity(entity)
        if entity.name in self.entities:
            raise Conflict(f"an entity named {entity.name!r} already exists")
        await self._change_model(entity, plugin=None, summary="created")
        return self.entity(entity.name)

    async def update_entity(self, name: str, changes: Mapping[str, Any]) -> EntityDef:
        """Change an entity's label, description, title field, fields or indexes.

        For a plugin's entity only the site overlay changes: fields the plugin
        declares cannot be changed or removed here. Destructive changes are
        recorded in the metadata and wait in :attr:`pending`.
        """
        current = self.entity(name)
        allowed = {"label", "description", "fields", "indexes", "title_field"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ValidationFailed.field(
                unknown[0], f"cannot be changed (changeable: {', '.join(sorted(allowed))})"
            )
        stored = (await self.meta.entities()).get(name)
        base = stored.definition if stored else current
        merged = msgspec.to_builtins(base)
        merged.update(changes)
        try:
            updated = msgspec.convert(merged, EntityDef)
        except msgspec.ValidationError as exc:
            raise ValidationFailed.field("$", str(exc)) from exc
        plugin = current.plugin
        if plugin is not None:
            declared = next(e for e in self.plugins.entities() if e.name == name)
            clash = [f.name for f in updated.fields if declared.field(f.name) is not None]
            if clash:
                raise ValidationFailed.field(
                    f"fields.{clash[0]}",
                    f"is declared by plugin {plugin!r}; a site can add fields to this entity, not change the plugin's",
                )
            self._check_entity(_merge_overlay(declared, updated))
        else:
            self._check_entity(updated)
        await self._change_model(
            updated, plugin=plugin, summary="updated: " + ", ".join(sorted(changes))
        )
        return self.entity(name)

    async def add_field(self, name: str, definition: FieldDef) -> EntityDef:
        """Add one field to a live entity (an additive change, applied at once)."""
        current = self.entity(name)
        if current.field(definition.name) is not None:
            raise Conflict(f"entity {name!r} already has a field {definition.name!r}")
        stored = (await self.meta.entities()).get(name)
        base = stored.definition if stored else EntityDef(name=name)
        updated = msgspec.structs.replace(base, fields=[*base.fields, definition])
        candidate = _merge_overlay(current, updated) if current.plugin else updated
        self._check_entity(candidate)
        await self._change_model(
            updated, plugin=current.plugin, summary=f"added field {definition.name}"
        )
        return self.entity(name)

    async def delete_entity(self, name: str) -> None:
        """Delete a site-owned entity from the model; its table waits for ``jimu migrate``."""
        current = self.entity(name)
        if current.plugin is not None:
            raise ValidationFailed.field(
                "name",
                f"entity {name!r} belongs to plugin {current.plugin!r}; disable the plugin instead",
            )
        await self._change_model(current, plugin=None, summary="deleted", deleted=True)

    async def plan(self) -> SchemaPlan:
        """The destructive changes waiting for ``jimu migrate --apply``."""
        return await self.sync()

    async def apply_pending(self) -> list[SchemaChange]:
        """Apply every pending destructive change, then refresh the model."""
        plan = await self.sync()
        applied = await schema.apply(self.db, plan.changes)
        stored = await self.meta.entities()
        for change in applied:
            if change.kind == "rename column" and change.field:
                row = stored.get(change.entity)
                if row is None:
                    continue
                fields = [
                    msgspec.structs.replace(f, renamed_from=None) if f.name == change.field else f
                    for f in row.definition.fields
                ]
                await self.meta.save_entity(
                    msgspec.structs.replace(row.definition, fields=fields),
                    plugin=row.plugin,
                    summary=f"renamed column applied: {change.field}",
                )
        await self.sync()
        return applied

    # -- plugins on this site --------------------------------------------

    async def enable_plugin(self, name: str) -> None:
        """Enable a plugin: create its tables, load its seed fixtures, run its install hook."""
        if name in self.config.plugins:
            raise Conflict(f"plugin {name!r} is already enabled on this site")
        if name not in self._sources:
            installed = ", ".join(sorted(self._sources)) or "none"
            raise NotFound(
                f"plugin {name!r} is not installed (installed: {installed}); "
                "install its Python package first"
            )
        enabled = [*self.config.plugins, name]
        try:
            self.plugins = self._load_plugins(enabled)
        except PluginError as exc:
            raise Conflict(exc.detail) from exc
        self.config = msgspec.structs.replace(self.config, plugins=enabled)
        await self._install_new_plugins()
        await self.sync()
        self.save_config()

    async def disable_plugin(self, name: str) -> None:
        """Disable a plugin; its tables and data stay for when it is enabled again."""
        if name not in self.config.plugins:
            raise NotFound(f"plugin {name!r} is not enabled on this site")
        dependants = [
            p.name for p in self.plugins.external() if name in p.info.requires and p.name != name
        ]
        if dependants:
            raise Conflict(
                f"plugin {dependants[0]!r} requires {name!r}; disable {dependants[0]!r} first"
            )
        await self.plugins.call_plugin(name, "jimu_uninstall", site=self)
        version = self.plugins.plugins[name].info.version if name in self.plugins.plugins else "0"
        enabled = [p for p in self.config.plugins if p != name]
        self.plugins = self._load_plugins(enabled)
        self.config = msgspec.structs.replace(self.config, plugins=enabled)
        await self.meta.record_plugin(name, version, False)
        await self.sync()
        self.save_config()

    async def load_fixtures(self, kind: str, *, only: str | None = None) -> dict[str, int]:
        """Load ``jimu_fixtures`` records of ``kind`` (``seed`` or ``demo``); return counts."""
        if not self._runtimes:
            await self.sync()
        counts: dict[str, int] = {}
        for plugin, fixtures in await self.plugins.fixtures(self, kind):
            if only is not None and plugin != only:
                continue
            for entity, records in fixtures.items():
                if not records:
                    continue
                await self.records.bulk(entity, {"create": list(records)})
                counts[entity] = counts.get(entity, 0) + len(records)
        return counts

    # -- rules ------------------------------------------------------------

    def compile_filter(self, runtime: EntityRuntime, rule: Any) -> tuple[list[str], list[Any]]:
        """Compile a JsonLogic filter into SQL conditions and parameters for ``runtime``."""
        if rule is None:
            return [], []
        from jimu.store.filters import compile_filter

        return compile_filter(self, runtime, rule)


def _merge_overlay(declared: EntityDef, overlay: EntityDef) -> EntityDef:
    """A plugin's entity with the site's overlay (added fields, labels) on top."""
    fields = list(declared.fields)
    names = {f.name for f in fields}
    fields.extend(f for f in overlay.fields if f.name not in names)
    return msgspec.structs.replace(
        declared,
        fields=fields,
        indexes=[*declared.indexes, *overlay.indexes],
        label=overlay.label if overlay.label is not None else declared.label,
        description=overlay.description
        if overlay.description is not None
        else declared.description,
        title_field=overlay.title_field or declared.title_field,
    )
