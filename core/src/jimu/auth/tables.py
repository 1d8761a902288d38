"""The tables of identity, permissions and the audit log.

Times are Unix seconds (``DOUBLE PRECISION``), flags small integers and
documents JSON text, so the same SQL runs on SQLite and PostgreSQL. The audit
table, and the record-change columns of the ``jimu_event`` outbox, refuse
changes and deletions at the database level: the audit log is append-only
whatever code runs against it.
"""

from __future__ import annotations

from jimu.store.database import Database

__all__ = ["auth_ddl"]

#: The columns of a ``jimu_event`` row that say what happened and who did it.
_EVENT_FACTS = (
    "entity, record_id, kind, payload, occurred_at, "
    "actor_kind, actor_id, actor_name, token_id, ip, request_id"
)


def _append_only_sqlite(table: str, frozen_columns: str | None) -> list[str]:
    update = (
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE"
        + (f" OF {frozen_columns}" if frozen_columns else "")
        + f" ON {table} BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    )
    delete = (
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    )
    return [update, delete]


def _append_only_postgres(table: str, frozen_columns: str | None) -> list[str]:
    function = f"{table}_append_only"
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{table} is append-only'; END $$",
        f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}",
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE"
        + (f" OF {frozen_columns}" if frozen_columns else "")
        + f" ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()",
        f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def auth_ddl(db: Database) -> list[str]:
    """``CREATE ... IF NOT EXISTS`` statements of the auth tables for ``db``'s dialect."""
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    )
    real = "REAL" if db.dialect == "sqlite" else "DOUBLE PRECISION"
    statements = [
        "CREATE TABLE IF NOT EXISTS jimu_user ("
        f" id {serial},"
        " login TEXT NOT NULL UNIQUE,"
        " display_name TEXT NOT NULL DEFAULT '',"
        " email TEXT,"
        " phone TEXT,"
        " active SMALLINT NOT NULL DEFAULT 1,"
        " locale TEXT NOT NULL DEFAULT 'zh-CN',"
        " super_user SMALLINT NOT NULL DEFAULT 0,"
        " attributes TEXT NOT NULL DEFAULT '{}',"
        " password_hash TEXT,"
        " failed_logins INTEGER NOT NULL DEFAULT 0,"
        f" locked_until {real},"
        f" created_at {real} NOT NULL,"
        f" updated_at {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_role ("
        " name TEXT PRIMARY KEY,"
        " definition TEXT NOT NULL,"
        " version INTEGER NOT NULL,"
        f" updated_at {real} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS jimu_user_role ("
        " user_id BIGINT NOT NULL,"
        " role TEXT NOT NULL,"
        " PRIMARY KEY (user_id, role))",
        "CREATE INDEX IF NOT EXISTS ix_jimu_user_role_role ON jimu_user_role (role, user_id)",
        "CREATE TABLE IF NOT EXISTS jimu_session ("
        " key_hash TEXT PRIMARY KEY,"
        " user_id BIGINT NOT NULL,"
        " csrf TEXT NOT NULL,"
        f" created_at {real} NOT NULL,"
        f" expires_at {real} NOT NULL,"
        f" revoked_at {real},"
        " ip TEXT,"
        " user_agent TEXT)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_session_user ON jimu_session (user_id)",
        "CREATE TABLE IF NOT EXISTS jimu_token ("
        f" id {serial},"
        " user_id BIGINT NOT NULL,"
        " name TEXT NOT NULL,"
        " prefix TEXT NOT NULL,"
        " key_hash TEXT NOT NULL UNIQUE,"
        " scopes TEXT NOT NULL,"
        f" created_at {real} NOT NULL,"
        f" expires_at {real},"
        f" revoked_at {real},"
        f" last_used_at {real})",
        "CREATE TABLE IF NOT EXISTS jimu_share ("
        " entity TEXT NOT NULL,"
        " record_id BIGINT NOT NULL,"
        " user_id BIGINT NOT NULL,"
        " can_write SMALLINT NOT NULL DEFAULT 0,"
        " shared_by BIGINT,"
        f" created_at {real} NOT NULL,"
        " PRIMARY KEY (entity, record_id, user_id))",
        "CREATE INDEX IF NOT EXISTS ix_jimu_share_user ON jimu_share (entity, user_id, record_id)",
        "CREATE TABLE IF NOT EXISTS jimu_audit ("
        f" id {serial},"
        f" at {real} NOT NULL,"
        " action TEXT NOT NULL,"
        " actor_kind TEXT NOT NULL,"
        " actor_id BIGINT,"
        " actor_name TEXT NOT NULL,"
        " token_id BIGINT,"
        " ip TEXT,"
        " request_id TEXT,"
        " entity TEXT,"
        " record_id BIGINT,"
        " detail TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_audit_at ON jimu_audit (at)",
        "CREATE INDEX IF NOT EXISTS ix_jimu_audit_record ON jimu_audit (entity, record_id)",
    ]
    append_only = _append_only_sqlite if db.dialect == "sqlite" else _append_only_postgres
    statements += append_only("jimu_audit", None)
    # record changes are audited in the outbox: only their dispatch may be noted later
    statements += append_only("jimu_event", _EVENT_FACTS)
    return statements
