"""The kernel tables of import/export: saved mappings, import outcomes, jobs.

Created on first use with ``CREATE TABLE IF NOT EXISTS``, in the style of
:mod:`jimu.store.metadata`, so a site that never imports never gets them and
an older site gains them without a migration.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jimu.store.database import Database

__all__ = ["IO_TABLES", "ensure_tables", "now_param", "read_json", "read_time"]

IO_TABLES = ("jimu_import_mapping", "jimu_import", "jimu_job")


def _ddl(db: Database) -> list[str]:
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    )
    json_type = "JSON" if db.dialect == "sqlite" else "JSONB"
    return [
        "CREATE TABLE IF NOT EXISTS jimu_import_mapping ("
        f" id {serial},"
        " entity TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        f" columns {json_type} NOT NULL,"
        " updated_at TIMESTAMPTZ NOT NULL)",
        "CREATE UNIQUE INDEX IF NOT EXISTS ux_jimu_import_mapping_entity_name"
        " ON jimu_import_mapping (entity, name)",
        "CREATE TABLE IF NOT EXISTS jimu_import ("
        f" id {serial},"
        " entity TEXT NOT NULL,"
        " filename TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        f" summary {json_type} NOT NULL,"
        f" errors {json_type} NOT NULL,"
        " job_id BIGINT,"
        " started_at TIMESTAMPTZ NOT NULL,"
        " finished_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_import_entity ON jimu_import (entity, id)",
        "CREATE TABLE IF NOT EXISTS jimu_job ("
        f" id {serial},"
        " kind TEXT NOT NULL,"
        " entity TEXT,"
        " status TEXT NOT NULL,"
        " phase TEXT,"
        " processed BIGINT NOT NULL DEFAULT 0,"
        " total BIGINT,"
        f" params {json_type},"
        f" result {json_type},"
        " error TEXT,"
        " owner TEXT,"
        " created_at TIMESTAMPTZ NOT NULL,"
        " started_at TIMESTAMPTZ,"
        " finished_at TIMESTAMPTZ)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_job_status ON jimu_job (status, id)",
    ]


async def ensure_tables(db: Database) -> None:
    """Create the import/export tables if they do not exist yet (once per database)."""
    await db.ensure_tables("jimu.io", _ddl(db))


def now_param(db: Database, moment: dt.datetime | None = None) -> Any:
    """A time stamp as the database's query parameter (fixed-width UTC text on SQLite)."""
    moment = moment or dt.datetime.now(dt.UTC)
    if db.dialect == "sqlite":
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return moment


def read_time(value: Any) -> dt.datetime | None:
    """A stored time stamp as an aware datetime (SQLite holds text)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def read_json(value: Any) -> Any:
    """A stored JSON value (text on SQLite and for asyncpg's jsonb) as Python data."""
    import json

    if isinstance(value, str | bytes):
        return json.loads(value)
    return value
