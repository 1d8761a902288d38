"""Saved reports, dashboards (per site and per user) and cached results of heavy reports.

Three kernel tables, created on first use (:meth:`Database.ensure_tables`):

* ``jimu_report``: the site's reports by name, with a version;
* ``jimu_dashboard``: dashboards by name and owner (``owner_id`` 0 is the
  site's own, shared with everyone; otherwise the user who saved it);
* ``jimu_report_result``: the last result of a heavy report per set of
  parameters and principal, with when it was computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import msgspec

from jimu.errors import NotFound
from jimu.meta.reports import DashboardDef, ReportDef
from jimu.store.database import Database

__all__ = ["REPORT_TABLES", "ReportStore"]

REPORT_TABLES = ("jimu_report", "jimu_dashboard", "jimu_report_result")
#: ``owner_id`` of a dashboard saved for the whole site.
SITE_OWNER = 0

_REPORT = msgspec.json.Decoder(ReportDef)
_DASHBOARD = msgspec.json.Decoder(DashboardDef)


def _ddl(db: Database) -> list[str]:
    json_type = "JSON" if db.dialect == "sqlite" else "JSONB"
    return [
        "CREATE TABLE IF NOT EXISTS jimu_report ("
        " name TEXT PRIMARY KEY,"
        " entity TEXT NOT NULL,"
        f" definition {json_type} NOT NULL,"
        " version INTEGER NOT NULL,"
        " updated_at TIMESTAMPTZ NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_dashboard ("
        " name TEXT NOT NULL,"
        " owner_id BIGINT NOT NULL,"
        f" definition {json_type} NOT NULL,"
        " version INTEGER NOT NULL,"
        " updated_at TIMESTAMPTZ NOT NULL,"
        " PRIMARY KEY (name, owner_id))",
        "CREATE TABLE IF NOT EXISTS jimu_report_result ("
        " cache_key TEXT PRIMARY KEY,"
        " report TEXT NOT NULL,"
        f" result {json_type} NOT NULL,"
        " computed_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_report_result_report ON jimu_report_result (report)",
    ]


def _time(db: Database, moment: dt.datetime) -> Any:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f+00:00") if db.dialect == "sqlite" else moment


def _read_time(value: Any) -> dt.datetime:
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _raw(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def cache_key(report: str, params: dict[str, Any], principal: str) -> str:
    """The cache slot of one report, parameter set and principal (rows differ per user)."""
    payload = msgspec.json.encode([report, sorted(params.items()), principal])
    return hashlib.sha256(payload).hexdigest()


class ReportStore:
    """Reads and writes the report tables of one site's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def ensure(self) -> None:
        """Create the tables if this database does not have them yet."""
        await self.db.ensure_tables("reports", _ddl(self.db))

    # -- reports -----------------------------------------------------------------

    async def reports(self) -> dict[str, ReportDef]:
        """The site's saved reports by name."""
        await self.ensure()
        rows = await self.db.fetch("SELECT name, definition FROM jimu_report ORDER BY name")
        return {row["name"]: _REPORT.decode(_raw(row["definition"])) for row in rows}

    async def report(self, name: str) -> ReportDef:
        """One saved report; 404 when there is none."""
        await self.ensure()
        row = await self.db.fetch_one("SELECT definition FROM jimu_report WHERE name = {}", [name])
        if row is None:
            raise NotFound(f"no report named {name!r}")
        return _REPORT.decode(_raw(row["definition"]))

    async def save_report(self, report: ReportDef) -> int:
        """Insert or replace a report; return its new version (old cached results are dropped)."""
        await self.ensure()
        payload = msgspec.json.encode(report).decode()
        now = _time(self.db, dt.datetime.now(dt.UTC))
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "SELECT version FROM jimu_report WHERE name = {}", [report.name]
            )
            version = (int(row["version"]) if row else 0) + 1
            if row:
                await self.db.execute(
                    "UPDATE jimu_report SET entity = {}, definition = {}, version = {}, "
                    "updated_at = {} WHERE name = {}",
                    [report.entity, payload, version, now, report.name],
                )
            else:
                await self.db.execute(
                    "INSERT INTO jimu_report (name, entity, definition, version, updated_at) "
                    "VALUES ({}, {}, {}, {}, {})",
                    [report.name, report.entity, payload, version, now],
                )
            await self.db.execute("DELETE FROM jimu_report_result WHERE report = {}", [report.name])
        return version

    async def delete_report(self, name: str) -> None:
        """Remove a saved report and its cached results."""
        await self.report(name)
        async with self.db.transaction():
            await self.db.execute("DELETE FROM jimu_report WHERE name = {}", [name])
            await self.db.execute("DELETE FROM jimu_report_result WHERE report = {}", [name])

    # -- dashboards ----------------------------------------------------------------

    async def dashboards(self, owner_id: int) -> list[tuple[int, DashboardDef]]:
        """The site's dashboards and those of user ``owner_id``: (owner, definition)."""
        await self.ensure()
        rows = await self.db.fetch(
            "SELECT owner_id, definition FROM jimu_dashboard WHERE owner_id IN ({}, {}) "
            "ORDER BY name, owner_id",
            [SITE_OWNER, owner_id],
        )
        return [(int(row["owner_id"]), _DASHBOARD.decode(_raw(row["definition"]))) for row in rows]

    async def dashboard(self, name: str, owner_id: int) -> tuple[int, DashboardDef]:
        """The user's own dashboard ``name``, else the site's; 404 when neither exists."""
        await self.ensure()
        rows = await self.db.fetch(
            "SELECT owner_id, definition FROM jimu_dashboard WHERE name = {} "
            "AND owner_id IN ({}, {}) ORDER BY owner_id DESC",
            [name, SITE_OWNER, owner_id],
        )
        if not rows:
            raise NotFound(f"no dashboard named {name!r}")
        row = rows[0] if owner_id != SITE_OWNER else rows[-1]
        return int(row["owner_id"]), _DASHBOARD.decode(_raw(row["definition"]))

    async def save_dashboard(self, dashboard: DashboardDef, owner_id: int) -> int:
        """Insert or replace a dashboard of ``owner_id`` (0: the site's); return its version."""
        await self.ensure()
        payload = msgspec.json.encode(dashboard).decode()
        now = _time(self.db, dt.datetime.now(dt.UTC))
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "SELECT version FROM jimu_dashboard WHERE name = {} AND owner_id = {}",
                [dashboard.name, owner_id],
            )
            version = (int(row["version"]) if row else 0) + 1
            if row:
                await self.db.execute(
                    "UPDATE jimu_dashboard SET definition = {}, version = {}, updated_at = {} "
                    "WHERE name = {} AND owner_id = {}",
                    [payload, version, now, dashboard.name, owner_id],
                )
            else:
                await self.db.execute(
                    "INSERT INTO jimu_dashboard (name, owner_id, definition, version, updated_at) "
                    "VALUES ({}, {}, {}, {}, {})",
                    [dashboard.name, owner_id, payload, version, now],
                )
        return version

    async def delete_dashboard(self, name: str, owner_id: int) -> None:
        """Remove the dashboard ``name`` of ``owner_id``; 404 when there is none."""
        await self.ensure()
        row = await self.db.fetch_one(
            "SELECT name FROM jimu_dashboard WHERE name = {} AND owner_id = {}", [name, owner_id]
        )
        if row is None:
            raise NotFound(f"no dashboard named {name!r} of this owner")
        await self.db.execute(
            "DELETE FROM jimu_dashboard WHERE name = {} AND owner_id = {}", [name, owner_id]
        )

    # -- cached results --------------------------------------------------------------

    async def cached(self, key: str) -> tuple[bytes, dt.datetime] | None:
        """A cached result (JSON) and when it was computed, or ``None``."""
        await self.ensure()
        row = await self.db.fetch_one(
            "SELECT result, computed_at FROM jimu_report_result WHERE cache_key = {}", [key]
        )
        if row is None:
            return None
        return _raw(row["result"]), _read_time(row["computed_at"])

    async def store_result(self, key: str, report: str, result: bytes, at: dt.datetime) -> None:
        """Keep ``result`` as the cached result of ``key``."""
        await self.ensure()
        async with self.db.transaction():
            await self.db.execute("DELETE FROM jimu_report_result WHERE cache_key = {}", [key])
            await self.db.execute(
                "INSERT INTO jimu_report_result (cache_key, report, result, computed_at) "
                "VALUES ({}, {}, {}, {})",
                [key, report, result.decode(), _time(self.db, at)],
            )
