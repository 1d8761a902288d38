"""Background jobs, for now as asyncio tasks in the app's own process.

A job is a row of ``jimu_job`` (kind, status, progress, result, error, times)
and, while it runs, a task of the process that started it. ``GET
/api/v1/jobs/{id}`` reads the row, and the live progress when the job runs in
the same process. Progress is written to the row every second, except on
SQLite while an import holds the database's write lock (the row is then
brought up to date when the import ends).

This runner is a stand-in: the automation issue moves jobs to Celery
workers, with the same rows and the same API. Until then a job lives and dies
with its process; a job whose process is gone is reported as failed
("interrupted") the next time someone asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from jimu.errors import JimuError, NotFound
from jimu.io.importer import Progress
from jimu.io.tables import ensure_tables, now_param, read_json, read_time
from jimu.site import Site
from jimu.store.database import Database

__all__ = ["JobOutcome", "JobRunner", "JobStore"]

log = logging.getLogger("jimu.jobs")

#: Seconds between two writes of a running job's progress.
FLUSH_SECONDS = 1.0
_HOST = socket.gethostname()
#: Live progress of the jobs running in this process, by (database, job id).
_LIVE: dict[tuple[str, int], Progress] = {}


@dataclass
class JobOutcome:
    """How a job ended: ``succeeded`` or ``failed``, its result, and why it failed."""

    status: str
    result: Any = None
    error: str | None = None


#: A job's work: given its id and a progress reporter, it runs and says how it ended.
Work = Callable[[int, Callable[[Progress], None]], Awaitable[JobOutcome]]


class JobStore:
    """The rows of ``jimu_job``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, kind: str, entity: str | None, params: Any) -> int:
        """Add a queued job; return its id."""
        await ensure_tables(self.db)
        row = await self.db.fetch_one(
            "INSERT INTO jimu_job (kind, entity, status, phase, processed, params, created_at) "
            "VALUES ({}, {}, 'queued', 'queued', 0, {}, {}) RETURNING id",
            [kind, entity, msgspec.json.encode(params).decode(), now_param(self.db)],
        )
        assert row is not None
        return int(row["id"])

    async def update(self, job_id: int, **values: Any) -> None:
        """Set columns of a job's row (``result`` is JSON; times are aware datetimes)."""
        params: list[Any] = []
        assignments = []
        for name, value in values.items():
            if name == "result":
                value = None if value is None else msgspec.json.encode(value).decode()
            elif name in ("started_at", "finished_at") and value is not None:
                value = now_param(self.db, value)
            assignments.append(f"{name} = {{}}")
            params.append(value)
        params.append(job_id)
        await self.db.execute(
            f"UPDATE jimu_job SET {', '.join(assignments)} WHERE id = {{}}", params
        )

    async def row(self, job_id: int) -> dict[str, Any]:
        """A job's row; 404 when there is none."""
        await ensure_tables(self.db)
        row = await self.db.fetch_one(
            "SELECT id, kind, entity, status, phase, processed, total, result, error, owner, "
            "created_at, started_at, finished_at FROM jimu_job WHERE id = {}",
            [job_id],
        )
        if row is None:
            raise NotFound(f"no job with id {job_id}")
        return row


def _view(row: dict[str, Any], live: Progress | None) -> dict[str, Any]:
    processed = int(row["processed"] or 0)
    total = None if row["total"] is None else int(row["total"])
    phase = row["phase"]
    if live is not None and row["status"] in ("queued", "running"):
        processed, total, phase = live.processed, live.total, live.phase
    percent = None
    if total:
        percent = round(min(100.0, 100.0 * processed / total), 1)
    if row["status"] == "succeeded":
        percent = 100.0
    return {
        "id": int(row["id"]),
        "kind": row["kind"],
        "entity": row["entity"],
        "status": row["status"],
        "phase": phase,
        "progress": {"processed": processed, "total": total, "percent": percent},
        "result": read_json(row["result"]),
        "error": row["error"],
        "created_at": read_time(row["created_at"]),
        "started_at": read_time(row["started_at"]),
        "finished_at": read_time(row["finished_at"]),
        "url": f"/api/v1/jobs/{int(row['id'])}",
    }


def _gone(owner: str | None, key: tuple[str, int]) -> bool:
    """Whether the process that ran a job has stopped (as far as this host can tell)."""
    if not owner:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != _HOST or not pid_text.isdigit():
        return False  # another machine's job: trust its row
    pid = int(pid_text)
    if pid == os.getpid():
        return key not in _LIVE
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_RUNNERS: weakref.WeakKeyDictionary[Site, JobRunner] = weakref.WeakKeyDictionary()


class JobRunner:
    """Runs a site's background jobs as tasks of this process."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.store = JobStore(site.db)
        self.tasks: dict[int, asyncio.Task[None]] = {}

    @classmethod
    def of(cls, site: Site) -> JobRunner:
        """The runner of ``site`` (one per site object)."""
        runner = _RUNNERS.get(site)
        if runner is None:
            runner = _RUNNERS[site] = cls(site)
        return runner

    def _key(self, job_id: int) -> tuple[str, int]:
        db = self.site.db
        return (str(db.path) if db.path is not None else db.url, job_id)

    async def submit(
        self, kind: str, entity: str | None, params: Any, work: Work
    ) -> dict[str, Any]:
        """Queue ``work`` as a job and start it; return the job as ``GET /jobs/{id}`` shows it."""
        job_id = await self.store.create(kind, entity, params)
        progress = Progress(phase="queued")
        _LIVE[self._key(job_id)] = progress
        await self.store.update(job_id, owner=f"{_HOST}:{os.getpid()}")
        task = asyncio.create_task(self._run(job_id, progress, work), name=f"jimu-job-{job_id}")
        self.tasks[job_id] = task
        task.add_done_callback(lambda _: self.tasks.pop(job_id, None))
        return await self.view(job_id)

    async def view(self, job_id: int) -> dict[str, Any]:
        """The job as the API shows it, with live progress when it runs here."""
        row = await self.store.row(job_id)
        key = self._key(job_id)
        if row["status"] in ("queued", "running") and _gone(row["owner"], key):
            error = "interrupted: the process running this job stopped before it finished"
            await self.store.update(
                job_id,
                status="failed",
                phase="done",
                error=error,
                finished_at=_now(),
            )
            row = await self.store.row(job_id)
        return _view(row, _LIVE.get(key))

    async def wait(self, job_id: int, seconds: float = 60.0) -> dict[str, Any]:
        """Wait until the job ends here (at most ``seconds``); return its view."""
        task = self.tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), seconds)
        return await self.view(job_id)

    async def _run(self, job_id: int, progress: Progress, work: Work) -> None:
        key = self._key(job_id)
        outcome = JobOutcome(status="failed", error="did not finish")
        flusher: asyncio.Task[None] | None = None

        def report(update: Progress) -> None:
            progress.phase, progress.processed, progress.total = (
                update.phase,
                update.processed,
                update.total,
            )

        try:
            await self.store.update(job_id, status="running", phase="reading", started_at=_now())
            flusher = asyncio.create_task(self._flush(job_id, progress))
            outcome = await work(job_id, report)
        except JimuError as exc:
            outcome = JobOutcome(
                status="failed",
                result={"errors": exc.extra.get("errors")} if exc.extra.get("errors") else None,
                error=exc.detail,
            )
        except asyncio.CancelledError:
            outcome = JobOutcome(status="failed", error="interrupted: the site was shut down")
            raise
        except Exception:
            incident = uuid.uuid4().hex
            log.exception("job %s failed (incident %s)", job_id, incident)
            outcome = JobOutcome(
                status="failed", error=f"an unexpected error occurred (incident {incident})"
            )
        finally:
            if flusher is not None:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await flusher
            try:
                await self.store.update(
                    job_id,
                    status=outcome.status,
                    phase="done",
                    processed=progress.processed,
                    total=progress.total,
                    result=outcome.result,
                    error=outcome.error,
                    finished_at=_now(),
                )
            except Exception:  # the database is gone (shutdown): the row shows "interrupted" later
                log.warning("job %s: could not record how it ended", job_id)
            _LIVE.pop(key, None)

    async def _flush(self, job_id: int, progress: Progress) -> None:
        last: tuple[str, int, int | None] | None = None
        for _ in range(10_000_000):  # bounded; a job runs far shorter than this many seconds
            await asyncio.sleep(FLUSH_SECONDS)
            state = (progress.phase, progress.processed, progress.total)
            if state == last:
                continue
            if self.site.db.dialect == "sqlite" and progress.phase == "importing":
                continue  # the import holds SQLite's write lock; the row catches up at the end
            try:
                await self.store.update(job_id, phase=state[0], processed=state[1], total=state[2])
            except Exception:
                log.warning("job %s: could not record its progress", job_id, exc_info=True)
            last = state

    async def shutdown(self) -> None:
        """Cancel the jobs still running here (their rows say they were interrupted)."""
        for task in list(self.tasks.values()):
            task.cancel()
        for task in list(self.tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _now() -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC)
