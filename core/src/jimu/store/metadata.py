"""The kernel's own tables: entity metadata (versioned), plugin state, the outbox.

A site's own model lives here as data: entities it created at run time, and
its overlay on plugin entities (fields it added). Every change appends a row
to ``jimu_entity_history`` so a person can see what changed and when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import msgspec

from jimu.meta import EntityDef
from jimu.meta.forms import FormDef
from jimu.store.database import Database

__all__ = ["KERNEL_TABLES", "MetadataStore", "StoredEntity"]

KERNEL_TABLES = (
    "jimu_entity",
    "jimu_entity_history",
    "jimu_plugin",
    "jimu_event",
    "jimu_form",
    "jimu_counter",
)


def _ddl(db: Database) -> list[str]:
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    )
    json_type = "JSON" if db.dialect == "sqlite" else "JSONB"
    return [
        "CREATE TABLE IF NOT EXISTS jimu_entity ("
        " name TEXT PRIMARY KEY,"
        " plugin TEXT,"
        f" definition {json_type} NOT NULL,"
        " version INTEGER NOT NULL,"
        " deleted BOOLEAN NOT NULL DEFAULT FALSE,"
        " updated_at TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_entity_history ("
        f" id {serial},"
        " name TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        f" definition {json_type} NOT NULL,"
        " summary TEXT NOT NULL,"
        " changed_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_entity_history_name ON jimu_entity_history (name, version)",
        "CREATE TABLE IF NOT EXISTS jimu_plugin ("
        " name TEXT PRIMARY KEY,"
        " version TEXT NOT NULL,"
        " enabled BOOLEAN NOT NULL,"
        " installed_at TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_event ("
        f" id {serial},"
        " entity TEXT NOT NULL,"
        " record_id BIGINT NOT NULL,"
        " kind TEXT NOT NULL,"
        # JSON text, written and read whole: nothing queries inside it, and PostgreSQL
        # would parse a JSONB value on every write (9 instead of 5 us an event in a COPY)
        " payload TEXT NOT NULL,"
        " occurred_at TIMESTAMPTZ NOT NULL,"
        " dispatched_at TIMESTAMPTZ,"
        # who made the change (the audit log reads record changes from here)
        " actor_kind TEXT NOT NULL DEFAULT 'system',"
        " actor_id BIGINT,"
        " actor_name TEXT NOT NULL DEFAULT 'system',"
        " token_id BIGINT,"
        " ip TEXT,"
        " request_id TEXT)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_event_pending ON jimu_event (dispatched_at, id)",
        "CREATE TABLE IF NOT EXISTS jimu_counter (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_form ("
        " name TEXT PRIMARY KEY,"
        " entity TEXT NOT NULL,"
        f" definition {json_type} NOT NULL,"
        " version INTEGER NOT NULL,"
        " updated_at TIMESTAMPTZ NOT NULL)",
    ]


def _now(db: Database) -> object:
    now = dt.datetime.now(dt.UTC)
    return now.strftime("%Y-%m-%d %H:%M:%S.%f+00:00") if db.dialect == "sqlite" else now


@dataclass
class StoredEntity:
    """A row of ``jimu_entity``: the site's definition or overlay of one entity."""

    definition: EntityDef
    plugin: str | None
    version: int
    deleted: bool


_ENTITY_DECODER = msgspec.json.Decoder(EntityDef)
_FORM_DECODER = msgspec.json.Decoder(FormDef)


class MetadataStore:
    """Reads and writes the kernel tables of one site database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure_tables(self) -> None:
        """Create the kernel tables if they do not exist yet."""
        async with self.db.transaction():
            for statement in _ddl(self.db):
                await self.db.execute(statement)

    # -- entities --------------------------------------------------------

    async def entities(self) -> dict[str, StoredEntity]:
        """Every stored entity row by name (deleted ones included)."""
        rows = await self.db.fetch(
            "SELECT name, plugin, definition, version, deleted FROM jimu_entity ORDER BY name"
        )
        stored = {}
        for row in rows:
            definition = row["definition"]
            raw = definition.encode() if isinstance(definition, str) else definition
            stored[row["name"]] = StoredEntity(
                definition=_ENTITY_DECODER.decode(raw),
                plugin=row["plugin"],
                version=int(row["version"]),
                deleted=bool(row["deleted"]),
            )
        return stored

    async def save_entity(
        self, definition: EntityDef, *, plugin: str | None, summary: str, deleted: bool = False
    ) -> int:
        """Insert or replace an entity row, append its history; return the new version."""
        payload = msgspec.json.encode(definition).decode()
        now = _now(self.db)
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "SELECT version FROM jimu_entity WHERE name = {}", [definition.name]
            )
            version = (int(row["version"]) if row else 0) + 1
            deleted_value: object = int(deleted) if self.db.dialect == "sqlite" else deleted
            if row:
                await self.db.execute(
                    "UPDATE jimu_entity SET plugin = {}, definition = {}, version = {}, "
                    "deleted = {}, updated_at = {} WHERE name = {}",
                    [plugin, payload, version, deleted_value, now, definition.name],
                )
            else:
                await self.db.execute(
                    "INSERT INTO jimu_entity (name, plugin, definition, version, deleted, updated_at)"
                    " VALUES ({}, {}, {}, {}, {}, {})",
                    [definition.name, plugin, payload, version, deleted_value, now],
                )
            await self.db.execute(
                "INSERT INTO jimu_entity_history (name, version, definition, summary, changed_at)"
                " VALUES ({}, {}, {}, {}, {})",
                [definition.name, version, payload, summary, now],
            )
        return version

    async def history(self, name: str) -> list[dict[str, object]]:
        """The versions of one entity, oldest first."""
        rows = await self.db.fetch(
            "SELECT version, summary, changed_at FROM jimu_entity_history WHERE name = {} "
            "ORDER BY version",
            [name],
        )
        return [dict(row) for row in rows]

    # -- forms -----------------------------------------------------------

    async def forms(self) -> dict[str, FormDef]:
        """The site's own forms by name."""
        rows = await self.db.fetch("SELECT name, definition FROM jimu_form ORDER BY name")
        forms = {}
        for row in rows:
            definition = row["definition"]
            raw = definition.encode() if isinstance(definition, str) else definition
            forms[row["name"]] = _FORM_DECODER.decode(raw)
        return forms

    async def save_form(self, form: FormDef) -> int:
        """Insert or replace one of the site's forms; return its new version."""
        payload = msgspec.json.encode(form).decode()
        row = await self.db.fetch_one("SELECT version FROM jimu_form WHERE name = {}", [form.name])
        version = (int(row["version"]) if row else 0) + 1
        if row:
            await self.db.execute(
                "UPDATE jimu_form SET entity = {}, definition = {}, version = {}, updated_at = {} "
                "WHERE name = {}",
                [form.entity, payload, version, _now(self.db), form.name],
            )
        else:
            await self.db.execute(
                "INSERT INTO jimu_form (name, entity, definition, version, updated_at) "
                "VALUES ({}, {}, {}, {}, {})",
                [form.name, form.entity, payload, version, _now(self.db)],
            )
        return version

    async def delete_form(self, name: str) -> None:
        """Remove one of the site's forms."""
        await self.db.execute("DELETE FROM jimu_form WHERE name = {}", [name])

    # -- plugins ---------------------------------------------------------

    async def installed_plugins(self) -> dict[str, tuple[str, bool]]:
        """Plugin name -> (installed version, enabled) for every plugin ever enabled."""
        rows = await self.db.fetch("SELECT name, version, enabled FROM jimu_plugin")
        return {row["name"]: (row["version"], bool(row["enabled"])) for row in rows}

    async def record_plugin(self, name: str, version: str, enabled: bool) -> None:
        """Remember a plugin's installed version and whether it is enabled."""
        flag: object = int(enabled) if self.db.dialect == "sqlite" else enabled
        row = await self.db.fetch_one("SELECT name FROM jimu_plugin WHERE name = {}", [name])
        if row:
            await self.db.execute(
                "UPDATE jimu_plugin SET version = {}, enabled = {} WHERE name = {}",
                [version, flag, name],
            )
        else:
            await self.db.execute(
                "INSERT INTO jimu_plugin (name, version, enabled, installed_at) VALUES ({}, {}, {}, {})",
                [name, version, flag, _now(self.db)],
            )
