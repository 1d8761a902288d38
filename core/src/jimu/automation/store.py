"""The automation engine's tables and the small conversions every part of it needs.

* ``jimu_automation`` / ``jimu_automation_version``: definitions, every
  version kept (a run finishes on the version it started with).
* ``jimu_automation_run`` / ``jimu_automation_step``: runs and their step log.
* ``jimu_timer``: durable timers (waits, date triggers, retries), claimed by
  one worker at a time.
* ``jimu_automation_effect``: one row per side effect, keyed by run and step,
  so a retried or duplicated task never repeats one.
* ``jimu_schedule``: when each schedule trigger last fired.
* ``jimu_message`` / ``jimu_inbox``: messages sent, and the in-app inbox.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from jimu.store.database import Database

__all__ = [
    "AUTOMATION_TABLES",
    "dump_json",
    "ensure_tables",
    "load_json",
    "read_time",
    "time_param",
]

AUTOMATION_TABLES = (
    "jimu_automation",
    "jimu_automation_version",
    "jimu_automation_run",
    "jimu_automation_step",
    "jimu_timer",
    "jimu_automation_effect",
    "jimu_schedule",
    "jimu_message",
    "jimu_inbox",
)

_encoder = msgspec.json.Encoder(decimal_format="string")


def _ddl(db: Database) -> list[str]:
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    )
    json_type = "TEXT" if db.dialect == "sqlite" else "JSONB"
    stamp = "TEXT" if db.dialect == "sqlite" else "TIMESTAMPTZ"
    return [
        "CREATE TABLE IF NOT EXISTS jimu_automation ("
        " name TEXT PRIMARY KEY,"
        f" definition {json_type} NOT NULL,"
        " version INTEGER NOT NULL,"
        " enabled INTEGER NOT NULL,"
        " entity TEXT,"
        " trigger_kind TEXT NOT NULL,"
        f" updated_at {stamp} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_automation_version ("
        " name TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        f" definition {json_type} NOT NULL,"
        " summary TEXT NOT NULL,"
        f" changed_at {stamp} NOT NULL,"
        " PRIMARY KEY (name, version))",
        "CREATE TABLE IF NOT EXISTS jimu_automation_run ("
        f" id {serial},"
        " automation TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        " entity TEXT,"
        " record_id BIGINT,"
        " status TEXT NOT NULL,"
        " step TEXT NOT NULL,"
        " attempt INTEGER NOT NULL DEFAULT 0,"
        " waiting_on TEXT,"
        f" trigger {json_type} NOT NULL,"
        f" context {json_type} NOT NULL,"
        " dedupe_key TEXT UNIQUE,"
        " lease_owner TEXT,"
        f" lease_until {stamp},"
        " error TEXT,"
        f" started_at {stamp} NOT NULL,"
        f" updated_at {stamp} NOT NULL,"
        f" finished_at {stamp})",
        "CREATE INDEX IF NOT EXISTS ix_jimu_automation_run_ready"
        " ON jimu_automation_run (status, lease_until)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_automation_run_record"
        " ON jimu_automation_run (entity, record_id, status)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_automation_run_automation"
        " ON jimu_automation_run (automation, id)",
        "CREATE TABLE IF NOT EXISTS jimu_automation_step ("
        f" id {serial},"
        " run_id BIGINT NOT NULL,"
        " step TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " outcome TEXT NOT NULL,"
        f" input {json_type},"
        f" output {json_type},"
        " error TEXT,"
        " worker TEXT,"
        f" started_at {stamp} NOT NULL,"
        f" finished_at {stamp} NOT NULL,"
        " duration_ms INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_automation_step_run ON jimu_automation_step (run_id, id)",
        "CREATE TABLE IF NOT EXISTS jimu_timer ("
        f" id {serial},"
        f" due_at {stamp} NOT NULL,"
        " kind TEXT NOT NULL,"
        " run_id BIGINT,"
        " automation TEXT,"
        " entity TEXT,"
        " record_id BIGINT,"
        f" payload {json_type},"
        " dedupe_key TEXT UNIQUE,"
        " claimed_by TEXT,"
        f" claimed_at {stamp})",
        "CREATE INDEX IF NOT EXISTS ix_jimu_timer_due ON jimu_timer (due_at) WHERE claimed_by IS NULL",
        "CREATE INDEX IF NOT EXISTS ix_jimu_timer_claimed ON jimu_timer (claimed_at)"
        " WHERE claimed_by IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS ix_jimu_timer_run ON jimu_timer (run_id)",
        "CREATE TABLE IF NOT EXISTS jimu_automation_effect ("
        " key TEXT PRIMARY KEY,"
        " run_id BIGINT NOT NULL,"
        " step TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        f" result {json_type},"
        f" created_at {stamp} NOT NULL,"
        f" done_at {stamp},"
        " claimed_by TEXT,"
        f" claim_until {stamp},"
        " attempts INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS jimu_schedule ("
        " automation TEXT PRIMARY KEY,"
        f" last_fired {stamp} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_message ("
        f" id {serial},"
        " key TEXT NOT NULL UNIQUE,"
        " channel TEXT NOT NULL,"
        " recipient TEXT NOT NULL,"
        " entity TEXT,"
        " record_id BIGINT,"
        " run_id BIGINT,"
        " subject TEXT,"
        " body TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        f" sent_at {stamp} NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_message_recipient"
        " ON jimu_message (channel, recipient, sent_at)",
        "CREATE TABLE IF NOT EXISTS jimu_inbox ("
        f" id {serial},"
        " key TEXT NOT NULL UNIQUE,"
        " user_id BIGINT NOT NULL,"
        " title TEXT NOT NULL,"
        " body TEXT NOT NULL,"
        " entity TEXT,"
        " record_id BIGINT,"
        f" created_at {stamp} NOT NULL,"
        f" read_at {stamp})",
        "CREATE INDEX IF NOT EXISTS ix_jimu_inbox_user ON jimu_inbox (user_id, id)",
    ]


async def ensure_tables(db: Database) -> None:
    """Create the automation engine's tables (once per database object)."""
    await db.ensure_tables("automation", _ddl(db))


def time_param(db: Database, moment: dt.datetime) -> Any:
    """A time as a query parameter: fixed-width UTC text on SQLite (so text order is time order)."""
    utc = moment.astimezone(dt.UTC)
    if db.dialect == "sqlite":
        return utc.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
    return utc


def read_time(value: Any) -> dt.datetime | None:
    """A stored time as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return dt.datetime.fromisoformat(str(value)).astimezone(dt.UTC)


def dump_json(value: Any) -> str:
    """``value`` as JSON text for a JSON column (decimals as exact strings, dates ISO)."""
    return _encoder.encode(value).decode()


def load_json(value: Any) -> Any:
    """A JSON column's value as Python data."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return msgspec.json.decode(value)
    if isinstance(value, str):
        return msgspec.json.decode(value)
    return value
