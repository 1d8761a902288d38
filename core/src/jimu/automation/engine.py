"""The automation engine of one site: definitions, trigger matching, runs, steps, timers.

The database holds all of the engine's state, so any process can pick up
where another stopped:

* :meth:`AutomationEngine.dispatch` reads the record-event outbox
  (``jimu_event``) and, in the same transaction that marks events dispatched,
  starts runs, (re)schedules date-trigger timers and wakes runs waiting for a
  condition on a changed record.
* :meth:`AutomationEngine.fire_due` claims due timers (``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL; SQLite serialises writers) and makes their runs
  ready, in the transaction that deletes them.
* :meth:`AutomationEngine.advance` takes a lease on one ready run and
  executes steps until the run waits or ends. Each step moves the run with a
  compare-and-set on (run, step, lease owner); a step's side effect is keyed
  by ``run:step`` in ``jimu_automation_effect`` (a unique key), written in the
  same transaction as the move for database actions; external ones (messages,
  webhooks) are claimed first (status ``sending``, the worker, a lease), so no
  second attempt sends while one holds or has completed the claim.
* :meth:`AutomationEngine.tick` does all of that plus due schedules and
  periodic jobs, and hands ready runs to the executor (inline, or Celery).

Time comes from one injectable :data:`~jimu.automation.clock.Clock`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
from croniter import croniter

from jimu.automation.clock import Clock, system_clock
from jimu.automation.matching import GuardIndex
from jimu.automation.registry import (
    ActionContext,
    ActionDeferred,
    ActionRetry,
    AutomationRegistry,
)
from jimu.automation.store import (
    dump_json,
    ensure_tables,
    load_json,
    read_time,
    time_param,
)
from jimu.automation.templates import render_params
from jimu.automation.validate import check_automation
from jimu.errors import Conflict, NotFound, ValidationFailed
from jimu.meta.automations import END, AutomationDef, StepDef, parse_duration
from jimu.rules import CompiledRule, RuleError, RuleNotSqlCompilable, compile_sql, truthy
from jimu.store.database import newest_first
from jimu.store.filters import EntityScope

if TYPE_CHECKING:
    from jimu.site import Site

__all__ = ["AutomationEngine", "RunSubmitter", "TickReport", "emit_event"]

log = logging.getLogger("jimu.automation")

#: Hands ready run ids to whoever executes them (inline, or as Celery tasks).
RunSubmitter = Callable[[list[int]], Awaitable[None]]

_DECODER = msgspec.json.Decoder(AutomationDef)
_ACTIVE = ("ready", "running", "waiting")
_QUEUED = "queued"
DEFAULT_LEASE = dt.timedelta(minutes=2)
MAX_ATTEMPTS = 5
_RECORD_KINDS = ("created", "updated", "deleted")
#: The ``jimu_counter`` key counting finished ticks.
TICK_COUNTER = "automation:ticks"


async def emit_event(
    site: Site,
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    entity: str | None = None,
    record_id: int | None = None,
) -> None:
    """Emit a custom event (in the caller's transaction, through the outbox).

    Automations with an ``event`` trigger named ``name`` (or a plugin trigger
    kind listening to it) start on it. ``entity`` and ``record_id`` say which
    record the event is about, when it is about one.
    """
    now = dt.datetime.now(dt.UTC)
    await site.db.execute(
        "INSERT INTO jimu_event (entity, record_id, kind, payload, occurred_at) "
        "VALUES ({}, {}, {}, {}, {})",
        [
            entity or "",
            record_id or 0,
            f"event:{name}",
            dump_json(dict(payload or {})),
            time_param(site.db, now),
        ],
    )


@dataclass
class TickReport:
    """What one :meth:`AutomationEngine.tick` did."""

    events: int = 0
    timers: int = 0
    schedules: int = 0
    jobs: int = 0
    runs: int = 0

    @property
    def idle(self) -> bool:
        """Whether the tick found nothing to do."""
        return not (self.events or self.timers or self.schedules or self.jobs or self.runs)


@dataclass
class _Compiled:
    """One automation version, its rules compiled once."""

    definition: AutomationDef
    version: int
    condition: CompiledRule | None
    exit_when: CompiledRule | None
    steps: dict[str, int]
    rules: dict[str, CompiledRule] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.definition.name


class _LostLease(Exception):
    """Another worker took the run over (our lease ran out): drop this attempt's work."""


class _ClaimHeld(Exception):
    """Another attempt holds the claim on an external effect: do not send, come back later."""

    def __init__(self, key: str, holder: str, until: dt.datetime) -> None:
        super().__init__(f"effect {key} is being sent by {holder} (claim until {until})")
        self.key = key
        self.holder = holder
        self.until = until


@dataclass
class _Run:
    id: int
    automation: str
    version: int
    entity: str | None
    record_id: int | None
    status: str
    step: str
    attempt: int
    trigger: dict[str, Any]
    context: dict[str, Any]


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class AutomationEngine:
    """Runs a site's automations; one per process (app, worker) and site."""

    def __init__(
        self,
        site: Site,
        *,
        clock: Clock | None = None,
        submit: RunSubmitter | None = None,
        lease: dt.timedelta = DEFAULT_LEASE,
        worker: str | None = None,
    ) -> None:
        self.site = site
        self.db = site.db
        self.clock: Clock = clock or system_clock
        self.submit = submit
        self.lease = lease
        self.worker = worker or _worker_name()
        self.registry = AutomationRegistry.for_site(site)
        #: The plugin manager the registry was built from.
        self.plugins = site.plugins
        self.rules = site.rules.copy(clock=self.clock)
        self.timezone = self.rules.timezone
        self._versions: dict[tuple[str, int], _Compiled] = {}
        self._active: list[_Compiled] = []
        self._active_stamp: Any = None
        self._record_index: dict[tuple[str, str], list[_Compiled]] = {}
        self._record_guards: dict[tuple[str, str], GuardIndex[_Compiled]] = {}
        self._event_index: dict[str, list[_Compiled]] = {}
        self._date_index: dict[str, list[_Compiled]] = {}

    def now(self) -> dt.datetime:
        """The engine's current time (UTC)."""
        return self.clock().astimezone(dt.UTC)

    async def start(self) -> None:
        """Create the engine's tables if needed (the site must be open)."""
        await ensure_tables(self.db)

    # -- definitions ------------------------------------------------------------------

    def check(self, definition: AutomationDef) -> None:
        """Raise a 422 naming the first problem of ``definition`` on this site."""
        check_automation(self.site, definition, self.registry)

    async def save(self, definition: AutomationDef, *, create: bool = False) -> int:
        """Check and store ``definition`` as a new version; return the version.

        Runs in flight keep the version they started with. ``create`` refuses
        a name already taken (409).
        """
        self.check(definition)
        payload = dump_json(definition)
        now = self.now()
        async with self.db.transaction():
            row = await self.db.fetch_one(
                "SELECT version FROM jimu_automation WHERE name = {}", [definition.name]
            )
            if row is not None and create:
                raise Conflict(f"an automation named {definition.name!r} already exists")
            latest = await self.db.fetch_one(
                "SELECT MAX(version) AS v FROM jimu_automation_version WHERE name = {}",
                [definition.name],
            )
            version = int(latest["v"] or 0) + 1 if latest else 1
            values = [
                payload,
                version,
                int(definition.enabled),
                definition.trigger.entity,
                definition.trigger.kind,
                time_param(self.db, now),
                definition.name,
            ]
            if row is None:
                await self.db.execute(
                    "INSERT INTO jimu_automation (definition, version, enabled, entity, "
                    "trigger_kind, updated_at, name) VALUES ({}, {}, {}, {}, {}, {}, {})",
                    values,
                )
            else:
                await self.db.execute(
                    "UPDATE jimu_automation SET definition = {}, version = {}, enabled = {}, "
                    "entity = {}, trigger_kind = {}, updated_at = {} WHERE name = {}",
                    values,
                )
            await self.db.execute(
                "INSERT INTO jimu_automation_version (name, version, definition, summary, "
                "changed_at) VALUES ({}, {}, {}, {}, {})",
                [
                    definition.name,
                    version,
                    payload,
                    "created" if row is None else "updated",
                    time_param(self.db, now),
                ],
            )
            compiled = self._compile(definition, version)
            await self._prepare_triggers(compiled, now)
        self._active_stamp = None
        return version

    async def _prepare_triggers(self, compiled: _Compiled, now: dt.datetime) -> None:
        """Start a schedule's clock, backfill a date trigger's timers (or clear them when off)."""
        definition = compiled.definition
        trigger = definition.trigger
        if trigger.kind == "schedule":
            await self.db.execute(
                "DELETE FROM jimu_schedule WHERE automation = {}", [definition.name]
            )
            await self.db.execute(
                "INSERT INTO jimu_schedule (automation, last_fired) VALUES ({}, {})",
                [definition.name, time_param(self.db, now)],
            )
        await self.db.execute(
            "DELETE FROM jimu_timer WHERE kind = 'date' AND automation = {}", [definition.name]
        )
        if trigger.kind == "date" and definition.enabled and trigger.entity and trigger.field:
            rt = self.site.runtime(trigger.entity)
            rows = await self.db.fetch(
                rt.select_sql(("id", trigger.field), f" WHERE {rt.expr(trigger.field)} IS NOT NULL")
            )
            for row in rows:
                record = rt.read_row(row)
                await self._schedule_date(compiled, record["id"], record.get(trigger.field), now)

    async def get(self, name: str) -> tuple[AutomationDef, int]:
        """The current definition of ``name`` and its version (404 when there is none)."""
        row = await self.db.fetch_one(
            "SELECT definition, version FROM jimu_automation WHERE name = {}", [name]
        )
        if row is None:
            raise NotFound(f"no automation named {name!r}")
        return _DECODER.decode(_raw(row["definition"])), int(row["version"])

    async def definitions(self) -> list[tuple[AutomationDef, int]]:
        """Every automation with its current version, by name."""
        rows = await self.db.fetch("SELECT definition, version FROM jimu_automation ORDER BY name")
        return [(_DECODER.decode(_raw(row["definition"])), int(row["version"])) for row in rows]

    async def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``: number, summary, time."""
        rows = await self.db.fetch(
            "SELECT version, summary, changed_at FROM jimu_automation_version WHERE name = {} "
            "ORDER BY version",
            [name],
        )
        if not rows:
            raise NotFound(f"no automation named {name!r}")
        return [
            {
                "version": int(row["version"]),
                "summary": row["summary"],
                "changed_at": read_time(row["changed_at"]),
            }
            for row in rows
        ]

    async def delete(self, name: str) -> None:
        """Remove an automation: nothing new starts; runs in flight finish on their version."""
        await self.get(name)
        async with self.db.transaction():
            await self.db.execute("DELETE FROM jimu_automation WHERE name = {}", [name])
            await self.db.execute("DELETE FROM jimu_schedule WHERE automation = {}", [name])
            await self.db.execute(
                "DELETE FROM jimu_timer WHERE kind = 'date' AND automation = {}", [name]
            )
        self._active_stamp = None

    def _compile(self, definition: AutomationDef, version: int) -> _Compiled:
        compiled = _Compiled(
            definition=definition,
            version=version,
            condition=self.rules.compile(definition.condition)
            if definition.condition is not None
            else None,
            exit_when=self.rules.compile(definition.exit_when)
            if definition.exit_when is not None
            else None,
            steps=definition.step_index(),
        )
        for step in definition.steps:
            if step.condition is not None:
                compiled.rules[step.id] = self.rules.compile(step.condition)
        return compiled

    async def version(self, name: str, version: int) -> _Compiled:
        """One version of an automation, compiled (cached: versions never change)."""
        key = (name, version)
        compiled = self._versions.get(key)
        if compiled is None:
            row = await self.db.fetch_one(
                "SELECT definition FROM jimu_automation_version WHERE name = {} AND version = {}",
                [name, version],
            )
            if row is None:
                raise NotFound(f"automation {name!r} has no version {version}")
            compiled = self._compile(_DECODER.decode(_raw(row["definition"])), version)
            self._versions[key] = compiled
        return compiled

    async def active(self) -> list[_Compiled]:
        """The enabled automations, current versions (re-read when any of them changed)."""
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n, MAX(updated_at) AS latest, SUM(version) AS versions "
            "FROM jimu_automation"
        )
        stamp = (row["n"], str(row["latest"]), row["versions"]) if row else None
        if stamp == self._active_stamp:
            return self._active
        rows = await self.db.fetch(
            "SELECT name, version FROM jimu_automation WHERE enabled = 1 ORDER BY name"
        )
        active = [await self.version(row["name"], int(row["version"])) for row in rows]
        records: dict[tuple[str, str], list[_Compiled]] = {}
        events: dict[str, list[_Compiled]] = {}
        dates: dict[str, list[_Compiled]] = {}
        for compiled in active:
            trigger = compiled.definition.trigger
            if trigger.kind in _RECORD_KINDS and trigger.entity:
                records.setdefault((trigger.entity, trigger.kind), []).append(compiled)
            elif trigger.kind == "event" and trigger.event:
                events.setdefault(trigger.event, []).append(compiled)
            elif trigger.kind == "date" and trigger.entity:
                dates.setdefault(trigger.entity, []).append(compiled)
            elif trigger.kind in self.registry.triggers:
                kind = self.registry.triggers[trigger.kind]
                events.setdefault(kind.event, []).append(compiled)
        self._active, self._active_stamp = active, stamp
        self._record_index, self._event_index, self._date_index = records, events, dates
        self._record_guards = {
            key: GuardIndex([(c, c.definition.condition) for c in group])
            for key, group in records.items()
        }
        return active

    # -- the outbox -------------------------------------------------------------------

    async def dispatch(self, limit: int = 500) -> int:
        """Match one batch of undispatched events; return how many were handled."""
        await self.active()
        now = self.now()
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        async with self.db.transaction():
            rows = await self.db.fetch(
                "SELECT id, entity, record_id, kind, payload FROM jimu_event "
                f"WHERE dispatched_at IS NULL ORDER BY id LIMIT {int(limit)}{lock}"
            )
            if not rows:
                return 0
            await self._match(rows, now)
            ids = [int(row["id"]) for row in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                await self.db.execute(
                    f"UPDATE jimu_event SET dispatched_at = {{}} WHERE id IN "
                    f"({', '.join('{}' for _ in chunk)})",
                    [time_param(self.db, now), *chunk],
                )
        return len(rows)

    async def _match(self, rows: Sequence[Mapping[str, Any]], now: dt.datetime) -> None:
        """Start the runs, timers and wake-ups a batch of events calls for."""
        wanted: dict[str, set[int]] = {}
        updated: dict[str, set[int]] = {}
        parsed: list[tuple[int, str, int, str, dict[str, Any]]] = []
        for row in rows:
            entity, kind = row["entity"], row["kind"]
            payload = load_json(row["payload"]) or {}
            record_id = int(row["record_id"])
            parsed.append((int(row["id"]), entity, record_id, kind, payload))
            if kind in ("created", "updated") and (
                (entity, kind) in self._record_index or entity in self._date_index
            ):
                wanted.setdefault(entity, set()).add(record_id)
            if kind == "updated":
                updated.setdefault(entity, set()).add(record_id)
        waiting = await self._condition_waits(updated) if updated else {}
        for entity, record_id in waiting:
            wanted.setdefault(entity, set()).add(record_id)
        records = await self._records(wanted)
        for event_id, entity, record_id, kind, payload in parsed:
            if kind.startswith("event:"):
                await self._match_custom(event_id, kind[6:], entity, record_id, payload, now)
                continue
            record = payload if kind == "deleted" else records.get((entity, record_id))
            guards = self._record_guards.get((entity, kind))
            # no record: deleted since, nothing to run about; else only the automations
            # whose leading equality the record satisfies can have a true condition
            candidates = guards.candidates(record) if guards and record is not None else ()
            for compiled in candidates:
                assert record is not None
                if kind == "updated" and not _changes_match(compiled.definition, payload):
                    continue
                if compiled.condition is not None and not self._holds(compiled.condition, record):
                    continue
                await self._start_run(
                    compiled,
                    entity,
                    record_id,
                    {"event": event_id, "kind": kind},
                    now,
                    dedupe=f"event:{event_id}",
                )
            for compiled in self._date_index.get(entity, ()):
                date_field = compiled.definition.trigger.field
                assert date_field is not None
                if kind == "deleted":
                    await self.db.execute(
                        "DELETE FROM jimu_timer WHERE dedupe_key = {}",
                        [f"date:{compiled.name}:{record_id}"],
                    )
                elif record is not None and (
                    kind == "created" or date_field in (payload.get("after") or {})
                ):
                    await self._schedule_date(compiled, record_id, record.get(date_field), now)
            if kind == "updated" and record is not None:
                for run_id, step_id, run_version, automation in waiting.get(
                    (entity, record_id), []
                ):
                    compiled = await self.version(automation, run_version)
                    rule = compiled.rules.get(step_id)
                    if rule is not None and self._holds(rule, record):
                        position = compiled.steps[step_id]
                        await self._wake(
                            run_id,
                            step_id,
                            compiled.definition.next_of(position),
                            "condition met",
                            now,
                        )

    async def _match_custom(
        self,
        event_id: int,
        name: str,
        entity: str,
        record_id: int,
        payload: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        for compiled in self._event_index.get(name, ()):
            trigger = compiled.definition.trigger
            kind = self.registry.triggers.get(trigger.kind)
            if kind is not None and not kind.matches(trigger, payload):
                continue
            about = trigger.entity or (entity or None)
            data: dict[str, Any] = payload
            if about and record_id:
                record = (await self._records({about: {record_id}})).get((about, record_id))
                if record is None:
                    continue
                data = record
            if compiled.condition is not None and not self._holds(compiled.condition, data):
                continue
            await self._start_run(
                compiled,
                about,
                record_id or None,
                {"event": event_id, "kind": f"event:{name}", "data": payload},
                now,
                dedupe=f"event:{event_id}",
            )

    async def _condition_waits(
        self, wanted: Mapping[str, set[int]]
    ) -> dict[tuple[str, int], list[tuple[int, str, int, str]]]:
        found: dict[tuple[str, int], list[tuple[int, str, int, str]]] = {}
        for entity, ids in wanted.items():
            id_list = sorted(ids)
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                rows = await self.db.fetch(
                    "SELECT id, record_id, step, version, automation FROM jimu_automation_run "
                    "WHERE entity = {} AND status = 'waiting' AND waiting_on = 'condition' "
                    f"AND record_id IN ({', '.join('{}' for _ in chunk)})",
                    [entity, *chunk],
                )
                for row in rows:
                    found.setdefault((entity, int(row["record_id"])), []).append(
                        (int(row["id"]), row["step"], int(row["version"]), row["automation"])
                    )
        return found

    async def _records(
        self, wanted: Mapping[str, Iterable[int]]
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Records by (entity, id), read in batches."""
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for entity, ids in wanted.items():
            try:
                rt = self.site.runtime(entity)
            except NotFound:
                continue
            id_list = sorted(set(ids))
            for start in range(0, len(id_list), 500):
                chunk = id_list[start : start + 500]
                rows = await self.db.fetch(
                    rt.select_sql(
                        tuple(rt.all_columns), f" WHERE id IN ({', '.join('{}' for _ in chunk)})"
                    ),
                    chunk,
                )
                for row in rows:
                    record = rt.read_row(row)
                    found[(entity, int(record["id"]))] = record
        return found

    async def record(self, entity: str | None, record_id: int | None) -> dict[str, Any] | None:
        """One record as it is now, or ``None`` (no record, or deleted)."""
        if not entity or not record_id:
            return None
        return (await self._records({entity: [record_id]})).get((entity, record_id))

    def _holds(self, rule: CompiledRule, data: Mapping[str, Any]) -> bool:
        try:
            return truthy(rule.evaluate(data if type(data) is dict else dict(data)))
        except RuleError as exc:
            log.warning("automation rule failed on %s: %s", data.get("id"), exc)
            return False

    # -- runs ---------------------------------------------------------------------------

    async def _start_run(
        self,
        compiled: _Compiled,
        entity: str | None,
        record_id: int | None,
        trigger: Mapping[str, Any],
        now: dt.datetime,
        *,
        dedupe: str,
    ) -> int | None:
        """Insert a ready run (once per dedupe key); ``None`` when reentry rules say no."""
        definition = compiled.definition
        key = f"{definition.name}:{dedupe}"
        if definition.reentry == "once" and record_id is not None:
            key = f"{definition.name}:once:{entity}:{record_id}"
        elif definition.reentry == "not_active" and record_id is not None:
            busy = await self.db.fetch_one(
                "SELECT id FROM jimu_automation_run WHERE automation = {} AND entity = {} "
                "AND record_id = {} AND status IN ('ready', 'running', 'waiting') LIMIT 1",
                [definition.name, entity, record_id],
            )
            if busy is not None:
                return None
        stamp = time_param(self.db, now)
        row = await self.db.fetch_one(
            "INSERT INTO jimu_automation_run (automation, version, entity, record_id, status, "
            "step, trigger, context, dedupe_key, started_at, updated_at) "
            "VALUES ({}, {}, {}, {}, 'ready', {}, {}, {}, {}, {}, {}) "
            "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
            [
                definition.name,
                compiled.version,
                entity,
                record_id,
                definition.steps[0].id,
                dump_json(dict(trigger)),
                "{}",
                key,
                stamp,
                stamp,
            ],
        )
        return int(row["id"]) if row else None

    async def start_manual(self, name: str, record_ids: Sequence[int]) -> list[int]:
        """Start a manual automation for records (a button, a list selection); return run ids."""
        definition, version = await self.get(name)
        if definition.trigger.kind != "manual":
            raise ValidationFailed.field(
                "name",
                f"automation {name!r} is not started by hand (its trigger is "
                f"{definition.trigger.kind!r})",
            )
        if not definition.enabled:
            raise Conflict(f"automation {name!r} is disabled")
        compiled = await self.version(name, version)
        entity = definition.trigger.entity
        records = await self._records({entity: record_ids}) if entity else {}
        missing = [rid for rid in record_ids if (entity, rid) not in records]
        if missing:
            raise ValidationFailed.field("record_ids", f"no {entity} record with id {missing[0]}")
        now = self.now()
        started = []
        async with self.db.transaction():
            for record_id in record_ids:
                record = records[(entity, record_id)]  # type: ignore[index]
                if compiled.condition is not None and not self._holds(compiled.condition, record):
                    continue
                run_id = await self._start_run(
                    compiled,
                    entity,
                    record_id,
                    {"kind": "manual"},
                    now,
                    dedupe=f"manual:{uuid.uuid4().hex}",
                )
                if run_id is not None:
                    started.append(run_id)
        return started

    async def start_webhook(self, name: str, payload: Mapping[str, Any]) -> int | None:
        """Start a webhook automation (its signature already checked); return the run id."""
        definition, version = await self.get(name)
        compiled = await self.version(name, version)
        if compiled.condition is not None and not self._holds(compiled.condition, payload):
            return None
        entity = definition.trigger.entity
        record_id = payload.get("record_id") if entity else None
        if entity and not isinstance(record_id, int):
            raise ValidationFailed.field("record_id", f"give the id of the {entity} record")
        if entity and await self.record(entity, record_id) is None:
            raise ValidationFailed.field("record_id", f"no {entity} record with id {record_id}")
        async with self.db.transaction():
            return await self._start_run(
                compiled,
                entity,
                record_id,
                {"kind": "webhook", "data": dict(payload)},
                self.now(),
                dedupe=f"webhook:{uuid.uuid4().hex}",
            )

    async def _load_run(self, run_id: int) -> _Run | None:
        row = await self.db.fetch_one(
            "SELECT id, automation, version, entity, record_id, status, step, attempt, trigger, "
            "context FROM jimu_automation_run WHERE id = {}",
            [run_id],
        )
        if row is None:
            return None
        return _Run(
            id=int(row["id"]),
            automation=row["automation"],
            version=int(row["version"]),
            entity=row["entity"],
            record_id=int(row["record_id"]) if row["record_id"] is not None else None,
            status=row["status"],
            step=row["step"],
            attempt=int(row["attempt"]),
            trigger=load_json(row["trigger"]) or {},
            context=load_json(row["context"]) or {},
        )

    async def claim_ready(self, limit: int = 200) -> list[int]:
        """Mark up to ``limit`` ready runs (and runs whose worker's lease ran out) as queued."""
        now = self.now()
        until = time_param(self.db, now + self.lease)
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        async with self.db.transaction():
            rows = await self.db.fetch(
                "SELECT id FROM jimu_automation_run WHERE status IN ('ready', 'running') "
                "AND (lease_until IS NULL OR lease_until < {}) "
                f"ORDER BY id LIMIT {int(limit)}{lock}",
                [time_param(self.db, now)],
            )
            ids = [int(row["id"]) for row in rows]
            if ids:
                await self.db.execute(
                    "UPDATE jimu_automation_run SET lease_owner = {}, lease_until = {} "
                    f"WHERE id IN ({', '.join('{}' for _ in ids)})",
                    [_QUEUED, until, *ids],
                )
        return ids

    async def _take_lease(self, run_id: int) -> bool:
        now = self.now()
        row = await self.db.fetch_one(
            "UPDATE jimu_automation_run SET lease_owner = {}, lease_until = {}, status = 'running' "
            "WHERE id = {} AND status IN ('ready', 'running') "
            "AND (lease_owner IS NULL OR lease_owner = {} OR lease_until < {}) RETURNING id",
            [
                self.worker,
                time_param(self.db, now + self.lease),
                run_id,
                _QUEUED,
                time_param(self.db, now),
            ],
        )
        return row is not None

    async def advance(self, run_id: int, *, max_steps: int = 200) -> str:
        """Execute a run's steps until it waits or ends; return its status afterwards.

        Safe to call twice for one run, from two workers: only the holder of
        the run's lease moves it, and every move is a compare-and-set.
        """
        if not await self._take_lease(run_id):
            run = await self._load_run(run_id)
            return run.status if run else "missing"
        try:
            for _ in range(max_steps):
                run = await self._load_run(run_id)
                if run is None or run.status != "running":
                    return run.status if run else "missing"
                await self._execute(run)
            await self._release(run_id, "ready")
        except _LostLease:
            log.info("run %s: lease lost to another worker", run_id)
        except _ClaimHeld as held:
            # keep the run (leased to us) until the other attempt's claim runs out: then
            # the run is queued again and finds the effect done, or takes the claim over
            log.info("run %s: %s", run_id, held)
            await self.db.execute(
                "UPDATE jimu_automation_run SET lease_until = {} "
                "WHERE id = {} AND lease_owner = {}",
                [time_param(self.db, held.until), run_id, self.worker],
            )
        run = await self._load_run(run_id)
        return run.status if run else "missing"

    async def _release(self, run_id: int, status: str) -> None:
        await self.db.execute(
            "UPDATE jimu_automation_run SET status = {}, lease_owner = NULL, lease_until = NULL "
            "WHERE id = {} AND lease_owner = {}",
            [status, run_id, self.worker],
        )

    async def _move(
        self,
        run: _Run,
        to: str,
        *,
        status: str = "running",
        waiting_on: str | None = None,
        attempt: int = 0,
        context: Mapping[str, Any] | None = None,
        error: str | None = None,
        now: dt.datetime,
    ) -> None:
        """Compare-and-set the run from its step to ``to`` (we must still hold the lease)."""
        finished = status in ("done", "exited", "failed", "cancelled")
        row = await self.db.fetch_one(
            "UPDATE jimu_automation_run SET step = {}, status = {}, waiting_on = {}, attempt = {}, "
            "context = {}, error = {}, updated_at = {}, finished_at = {}, "
            "lease_owner = {}, lease_until = {} "
            "WHERE id = {} AND step = {} AND lease_owner = {} RETURNING id",
            [
                to,
                status,
                waiting_on,
                attempt,
                dump_json(dict(context if context is not None else run.context)),
                error,
                time_param(self.db, now),
                time_param(self.db, now) if finished else None,
                self.worker if status == "running" else None,
                time_param(self.db, now + self.lease) if status == "running" else None,
                run.id,
                run.step,
                self.worker,
            ],
        )
        if row is None:
            raise _LostLease(run.id)

    async def _log(
        self,
        run_id: int,
        step: str,
        kind: str,
        outcome: str,
        started: float,
        now: dt.datetime,
        *,
        input: Any = None,
        output: Any = None,
        error: str | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO jimu_automation_step (run_id, step, kind, outcome, input, output, error, "
            "worker, started_at, finished_at, duration_ms) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            [
                run_id,
                step,
                kind,
                outcome,
                dump_json(input) if input is not None else None,
                dump_json(output) if output is not None else None,
                error,
                self.worker,
                time_param(self.db, now),
                time_param(self.db, now),
                int((time.perf_counter() - started) * 1000),
            ],
        )

    def _data(self, run: _Run, record: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
        data: dict[str, Any] = {
            "record": record,
            "trigger": run.trigger,
            "steps": run.context.get("steps", {}),
            "now": now.astimezone(self.timezone),
            "run_id": run.id,
        }
        if run.entity:
            data[run.entity] = record
        return data

    async def _execute(self, run: _Run) -> None:
        """Execute the run's current step (one transaction per move)."""
        compiled = await self.version(run.automation, run.version)
        definition = compiled.definition
        now = self.now()
        started = time.perf_counter()
        if run.step == END:
            async with self.db.transaction():
                await self._move(run, END, status="done", now=now)
            return
        position = compiled.steps[run.step]
        step = definition.steps[position]
        record = await self.record(run.entity, run.record_id)
        subject = record if record is not None else run.trigger.get("data") or {}
        if compiled.exit_when is not None and self._holds(compiled.exit_when, subject):
            async with self.db.transaction():
                await self._move(run, run.step, status="exited", now=now)
                await self._log(
                    run.id,
                    step.id,
                    step.kind,
                    "exited",
                    started,
                    now,
                    output={"reason": "the exit condition holds"},
                )
            return
        following = definition.next_of(position)
        if step.kind == "stop":
            async with self.db.transaction():
                await self._move(run, run.step, status="done", now=now)
                await self._log(run.id, step.id, "stop", "stopped", started, now)
            return
        if step.kind == "branch":
            rule = compiled.rules[step.id]
            holds = self._holds(rule, subject)
            target = (step.then if holds else step.else_) or following
            async with self.db.transaction():
                await self._move(run, target, status=_status_for(target), now=now)
                await self._log(
                    run.id,
                    step.id,
                    "branch",
                    "then" if holds else "else",
                    started,
                    now,
                    output={"holds": holds, "next": target},
                )
            return
        if step.kind == "wait":
            await self._wait(run, compiled, step, following, subject, started, now)
            return
        await self._act(run, compiled, step, following, record, started, now)

    async def _wait(
        self,
        run: _Run,
        compiled: _Compiled,
        step: StepDef,
        following: str,
        subject: Mapping[str, Any],
        started: float,
        now: dt.datetime,
    ) -> None:
        if step.condition is not None:
            if self._holds(compiled.rules[step.id], subject):
                async with self.db.transaction():
                    await self._move(run, following, status=_status_for(following), now=now)
                    await self._log(run.id, step.id, "wait", "condition met", started, now)
                return
            assert step.timeout is not None
            timeout_at = now + parse_duration(step.timeout)
            target = step.on_timeout or following
            async with self.db.transaction():
                await self._timer(run.id, timeout_at, step.id, target, "timed out")
                await self._move(run, step.id, status="waiting", waiting_on="condition", now=now)
                await self._log(
                    run.id,
                    step.id,
                    "wait",
                    "waiting",
                    started,
                    now,
                    output={"until": "condition", "timeout_at": timeout_at},
                )
            return
        due: dt.datetime | None = (
            now + parse_duration(step.duration)
            if step.duration is not None
            else self._until(step, subject)
        )
        if due is None or due <= now:
            async with self.db.transaction():
                await self._move(run, following, status=_status_for(following), now=now)
                await self._log(
                    run.id, step.id, "wait", "elapsed" if due else "no date: skipped", started, now
                )
            return
        async with self.db.transaction():
            await self._timer(run.id, due, step.id, following, "elapsed")
            await self._move(run, step.id, status="waiting", waiting_on="timer", now=now)
            await self._log(run.id, step.id, "wait", "waiting", started, now, output={"until": due})

    def _until(self, step: StepDef, subject: Mapping[str, Any]) -> dt.datetime | None:
        assert step.until is not None
        value: Any = subject.get(step.until) if step.until in subject else None
        if value is None and step.until not in subject:
            value = dt.datetime.fromisoformat(step.until)
        moment = self._moment(value, "09:00")
        if moment is None:
            return None
        if step.offset:
            moment += parse_duration(step.offset)
        return moment

    def _moment(self, value: Any, at: str) -> dt.datetime | None:
        """A date (at local time ``at``) or datetime value as an aware UTC moment."""
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = (
                    dt.datetime.fromisoformat(value)
                    if "T" in value or " " in value
                    else (dt.date.fromisoformat(value))
                )
            except ValueError:
                return None
        if isinstance(value, dt.datetime):
            aware: dt.datetime = value if value.tzinfo else value.replace(tzinfo=self.timezone)
            return aware.astimezone(dt.UTC)
        if isinstance(value, dt.date):
            hour, minute = (int(part) for part in at.split(":"))
            local = dt.datetime.combine(value, dt.time(hour, minute), tzinfo=self.timezone)
            return local.astimezone(dt.UTC)
        return None

    async def _timer(
        self,
        run_id: int,
        due: dt.datetime,
        step: str,
        to: str,
        outcome: str,
        kind: str = "resume",
    ) -> None:
        await self.db.execute(
            "INSERT INTO jimu_timer (due_at, kind, run_id, payload, dedupe_key) "
            "VALUES ({}, {}, {}, {}, {}) ON CONFLICT (dedupe_key) DO UPDATE SET "
            "due_at = excluded.due_at, payload = excluded.payload, claimed_by = NULL",
            [
                time_param(self.db, due),
                kind,
                run_id,
                dump_json({"step": step, "to": to, "outcome": outcome}),
                f"run:{run_id}",
            ],
        )

    async def _act(
        self,
        run: _Run,
        compiled: _Compiled,
        step: StepDef,
        following: str,
        record: dict[str, Any] | None,
        started: float,
        now: dt.datetime,
    ) -> None:
        assert step.action is not None
        action = self.registry.actions.get(step.action)
        key = f"{run.id}:{step.id}"
        if action is None:
            await self._fail(
                run, step, f"action {step.action!r} is no longer registered", now, started
            )
            return
        data = self._data(run, record, now)
        try:
            params = render_params(step.params, data, action.raw_params)
        except Exception as exc:  # a template that fails on this record's data
            await self._fail(run, step, f"template failed: {exc}", now, started)
            return
        context = ActionContext(
            site=self.site,
            engine=self,
            run_id=run.id,
            automation=run.automation,
            step=step.id,
            key=key,
            entity=run.entity,
            record_id=run.record_id,
            record=record,
            data=data,
            now=now,
            attempt=run.attempt,
        )
        actor_login = step.run_as or compiled.definition.run_as
        try:
            if action.external:
                result = await self._external(run, action, context, params, actor_login, now)
                async with self.db.transaction():
                    await self._finish_step(run, step, following, params, result, started, now)
            else:
                async with self.db.transaction():
                    result = await self._once(
                        run,
                        step.id,
                        key,
                        now,
                        lambda: self._as(actor_login, run, action.run(context, params)),
                    )
                    await self._finish_step(run, step, following, params, result, started, now)
        except (_LostLease, _ClaimHeld):
            raise
        except ActionDeferred as deferred:
            async with self.db.transaction():
                await self.db.execute(  # nothing left: the next attempt claims afresh
                    "DELETE FROM jimu_automation_effect WHERE key = {} "
                    "AND status IN ('started', 'sending')",
                    [key],
                )
                await self._timer(
                    run.id, deferred.until, step.id, step.id, "deferred", kind="retry"
                )
                await self._move(
                    run,
                    step.id,
                    status="waiting",
                    waiting_on="deferred",
                    attempt=run.attempt,
                    now=now,
                )
                await self._log(
                    run.id,
                    step.id,
                    "action",
                    "deferred",
                    started,
                    now,
                    input=params,
                    output={"until": deferred.until, "reason": deferred.reason},
                )
        except ActionRetry as exc:
            attempt = run.attempt + 1
            limit = int(step.params.get("retries", MAX_ATTEMPTS - 1)) + 1
            if attempt >= limit:
                await self._fail(
                    run, step, f"gave up after {attempt} attempts: {exc}", now, started, params
                )
                return
            due = now + dt.timedelta(seconds=30 * 2 ** (attempt - 1))
            async with self.db.transaction():
                await self.db.execute(
                    "UPDATE jimu_automation_effect SET status = 'failed', claim_until = NULL "
                    "WHERE key = {} AND status <> 'done'",
                    [key],
                )
                await self._timer(run.id, due, step.id, step.id, "retry", kind="retry")
                await self._move(
                    run, step.id, status="waiting", waiting_on="retry", attempt=attempt, now=now
                )
                await self._log(
                    run.id,
                    step.id,
                    "action",
                    "retrying",
                    started,
                    now,
                    input=params,
                    error=str(exc),
                    output={"attempt": attempt, "next_at": due},
                )
        except Exception as exc:
            log.exception("run %s step %s failed", run.id, step.id)
            if action.external:  # refused or broken: our claim ends, a re-run may send again
                await self.db.execute(
                    "UPDATE jimu_automation_effect SET status = 'failed', claim_until = NULL "
                    "WHERE key = {} AND status = 'sending' AND claimed_by = {}",
                    [key, self.worker],
                )
            await self._fail(run, step, f"{type(exc).__name__}: {exc}", now, started, params)

    async def _as(self, login: str | None, run: _Run, work: Awaitable[Any]) -> Any:
        """Await ``work`` as this automation, or with the rights of the user ``login``.

        Acting as a user, the step goes through the same permission engine as
        the user's own requests: an action on a field or a record the user may
        not write fails the step with the reason. The audit log names the
        automation run and the user.
        """
        from jimu.auth import Actor, acting_as

        if login is None:
            with acting_as(Actor(kind="automation", name=f"automation:{run.automation}")):
                return await work
        try:
            user = await self.site.auth.user_by_login(login)
        except NotFound:
            raise LookupError(f"run_as: no user with login {login!r}") from None
        if not user.active:
            raise LookupError(f"run_as: user {login!r} is disabled")
        access = await self.site.auth.access_for(user)
        actor = Actor(kind="automation", id=user.id, name=f"automation:{run.automation} as {login}")
        with acting_as(actor, access):
            return await work

    async def _once(
        self,
        run: _Run,
        step: str,
        key: str,
        now: dt.datetime,
        work: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Do a database side effect once per key (inside the caller's transaction)."""
        inserted = await self.db.fetch_one(
            "INSERT INTO jimu_automation_effect (key, run_id, step, status, created_at) "
            "VALUES ({}, {}, {}, 'started', {}) ON CONFLICT (key) DO NOTHING RETURNING key",
            [key, run.id, step, time_param(self.db, now)],
        )
        if inserted is None:
            row = await self.db.fetch_one(
                "SELECT result FROM jimu_automation_effect WHERE key = {}", [key]
            )
            return load_json(row["result"]) if row else None
        result = await work()
        await self.db.execute(
            "UPDATE jimu_automation_effect SET status = 'done', result = {}, done_at = {} "
            "WHERE key = {}",
            [dump_json(result), time_param(self.db, now), key],
        )
        return result

    async def _external(
        self,
        run: _Run,
        action: Any,
        context: ActionContext,
        params: dict[str, Any],
        login: str | None,
        now: dt.datetime,
    ) -> Any:
        """Do an external side effect once: claim its effect row, send, record it done.

        The claim (status ``sending``, this worker, until ``now + lease``) is
        taken with one compare-and-set before anything leaves the process, so
        a redelivered or duplicated task never sends while another attempt
        holds the claim or after one recorded the effect done; it raises
        :class:`_ClaimHeld` instead. Only a claim that ran out (its worker
        died between sending and recording) is taken over, and the effect is
        sent again under the same key (``Idempotency-Key``, ``Message-ID``)
        so the receiver can drop the repeat. A definite failure (status
        ``failed``, the action asked for a retry) is sent again the same way.
        """
        key = context.key
        until = now + self.lease
        async with self.db.transaction():
            claimed = await self.db.fetch_one(
                "INSERT INTO jimu_automation_effect "
                "(key, run_id, step, status, created_at, claimed_by, claim_until, attempts) "
                "VALUES ({}, {}, {}, 'sending', {}, {}, {}, 1) "
                "ON CONFLICT (key) DO NOTHING RETURNING attempts",
                [
                    key,
                    run.id,
                    context.step,
                    time_param(self.db, now),
                    self.worker,
                    time_param(self.db, until),
                ],
            )
            if claimed is None:
                claimed = await self.db.fetch_one(
                    "UPDATE jimu_automation_effect SET status = 'sending', claimed_by = {}, "
                    "claim_until = {}, attempts = attempts + 1 WHERE key = {} AND "
                    "(status = 'failed' OR (status = 'sending' "
                    "AND (claim_until < {} OR claimed_by = {}))) RETURNING attempts",
                    [
                        self.worker,
                        time_param(self.db, until),
                        key,
                        time_param(self.db, now),
                        self.worker,
                    ],
                )
            if claimed is None:
                row = await self.db.fetch_one(
                    "SELECT status, result, claimed_by, claim_until "
                    "FROM jimu_automation_effect WHERE key = {}",
                    [key],
                )
                assert row is not None  # the insert found it there
                if row["status"] == "done":
                    return load_json(row["result"])
                held_until = read_time(row["claim_until"]) or until
                raise _ClaimHeld(key, str(row["claimed_by"]), held_until)
        if int(claimed["attempts"]) > 1:
            log.warning(
                "run %s: effect %s sent again (attempt %s)", run.id, key, claimed["attempts"]
            )
        result = await self._as(login, run, action.run(context, params))
        async with self.db.transaction():
            await self.db.execute(
                "UPDATE jimu_automation_effect SET status = 'done', result = {}, done_at = {}, "
                "claim_until = NULL WHERE key = {} AND status <> 'done'",
                [dump_json(result), time_param(self.db, self.now()), key],
            )
        return result

    async def _finish_step(
        self,
        run: _Run,
        step: StepDef,
        following: str,
        params: Any,
        result: Any,
        started: float,
        now: dt.datetime,
    ) -> None:
        context = dict(run.context)
        steps = dict(context.get("steps", {}))
        steps[step.id] = result
        context["steps"] = steps
        await self._move(run, following, status=_status_for(following), context=context, now=now)
        outcome = "skipped" if isinstance(result, dict) and result.get("skipped") else "done"
        await self._log(
            run.id, step.id, "action", outcome, started, now, input=params, output=result
        )

    async def _fail(
        self,
        run: _Run,
        step: StepDef,
        error: str,
        now: dt.datetime,
        started: float,
        params: Any = None,
    ) -> None:
        async with self.db.transaction():
            await self._move(run, run.step, status="failed", error=error, now=now)
            await self._log(
                run.id, step.id, step.kind, "failed", started, now, input=params, error=error
            )

    async def _wake(self, run_id: int, step: str, to: str, outcome: str, now: dt.datetime) -> bool:
        """Make a waiting run ready at step ``to`` (only if it still waits at ``step``)."""
        row = await self.db.fetch_one(
            "UPDATE jimu_automation_run SET status = 'ready', step = {}, waiting_on = NULL, "
            "updated_at = {}, lease_owner = NULL, lease_until = NULL "
            "WHERE id = {} AND status = 'waiting' AND step = {} RETURNING id",
            [to, time_param(self.db, now), run_id, step],
        )
        if row is None:
            return False
        if to == END:
            await self.db.execute(
                "UPDATE jimu_automation_run SET status = 'done', finished_at = {} WHERE id = {}",
                [time_param(self.db, now), run_id],
            )
        await self.db.execute("DELETE FROM jimu_timer WHERE dedupe_key = {}", [f"run:{run_id}"])
        await self.db.execute(
            "INSERT INTO jimu_automation_step (run_id, step, kind, outcome, started_at, "
            "finished_at, duration_ms) VALUES ({}, {}, 'wait', {}, {}, {}, 0)",
            [run_id, step, outcome, time_param(self.db, now), time_param(self.db, now)],
        )
        return True

    # -- timers ---------------------------------------------------------------------------

    async def fire_due(self, limit: int = 500) -> int:
        """Claim and fire one batch of due timers; return how many fired."""
        now = self.now()
        stamp = time_param(self.db, now)
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        async with self.db.transaction():
            rows = await self.db.fetch(
                "UPDATE jimu_timer SET claimed_by = {}, claimed_at = {} WHERE id IN ("
                "SELECT id FROM jimu_timer WHERE claimed_by IS NULL AND due_at <= {} "
                f"ORDER BY due_at LIMIT {int(limit)}{lock}) "
                "RETURNING id, kind, run_id, automation, entity, record_id, payload, due_at",
                [self.worker, stamp, stamp],
            )
            if not rows:
                return 0
            resumes: list[list[Any]] = []
            logs: list[list[Any]] = []
            for row in rows:
                payload = load_json(row["payload"]) or {}
                if row["kind"] in ("resume", "retry"):
                    resumes.append([payload["to"], stamp, int(row["run_id"]), payload["step"]])
                    if row["kind"] == "resume":
                        logs.append(
                            [int(row["run_id"]), payload["step"], payload["outcome"], stamp, stamp]
                        )
                elif row["kind"] == "date":
                    await self._fire_date(row, payload, now)
            if resumes:
                await self.db.execute_many(
                    "UPDATE jimu_automation_run SET status = 'ready', step = {}, "
                    "waiting_on = NULL, updated_at = {}, lease_owner = NULL, lease_until = NULL "
                    "WHERE id = {} AND status = 'waiting' AND step = {}",
                    resumes,
                )
            if logs:
                await self.db.execute_many(
                    "INSERT INTO jimu_automation_step (run_id, step, kind, outcome, started_at, "
                    "finished_at, duration_ms) VALUES ({}, {}, 'wait', {}, {}, {}, 0)",
                    logs,
                )
            ids = [int(row["id"]) for row in rows]
            await self.db.execute(
                f"DELETE FROM jimu_timer WHERE id IN ({', '.join('{}' for _ in ids)}) "
                "AND claimed_by = {}",
                [*ids, self.worker],
            )
        return len(rows)

    async def _schedule_date(
        self, compiled: _Compiled, record_id: int, value: Any, now: dt.datetime
    ) -> None:
        """(Re)place the date-trigger timer of one record (or remove it when there is no date)."""
        trigger = compiled.definition.trigger
        key = f"date:{compiled.name}:{record_id}"
        due = self._date_due(compiled, value, now)
        if due is None:
            await self.db.execute("DELETE FROM jimu_timer WHERE dedupe_key = {}", [key])
            return
        await self.db.execute(
            "INSERT INTO jimu_timer (due_at, kind, automation, entity, record_id, payload, "
            "dedupe_key) VALUES ({}, 'date', {}, {}, {}, {}, {}) ON CONFLICT (dedupe_key) DO "
            "UPDATE SET due_at = excluded.due_at, payload = excluded.payload, claimed_by = NULL",
            [
                time_param(self.db, due),
                compiled.name,
                trigger.entity,
                record_id,
                dump_json({"value": value}),
                key,
            ],
        )

    def _date_due(self, compiled: _Compiled, value: Any, now: dt.datetime) -> dt.datetime | None:
        trigger = compiled.definition.trigger
        offset = parse_duration(trigger.offset or "0m")
        if isinstance(value, str):
            moment_value: Any = value
        else:
            moment_value = value
        base = self._moment(moment_value, trigger.at or "09:00")
        if base is None:
            return None
        due = base + offset
        if not trigger.yearly:
            return due if due > now else None
        local = base.astimezone(self.timezone)
        for years in range(0, 200):
            year = now.astimezone(self.timezone).year - 1 + years
            try:
                candidate = local.replace(year=year)
            except ValueError:  # 29 February in a common year: the 28th
                candidate = local.replace(year=year, day=28)
            moment = candidate.astimezone(dt.UTC) + offset
            if moment > now:
                return moment
        return None

    async def _fire_date(self, row: Mapping[str, Any], payload: Any, now: dt.datetime) -> None:
        name = row["automation"]
        current = await self.db.fetch_one(
            "SELECT version, enabled FROM jimu_automation WHERE name = {}", [name]
        )
        if current is None or not int(current["enabled"]):
            return
        compiled = await self.version(name, int(current["version"]))
        entity, record_id = row["entity"], int(row["record_id"])
        record = await self.record(entity, record_id)
        if record is None:
            return
        due = read_time(row["due_at"])
        if compiled.condition is None or self._holds(compiled.condition, record):
            await self._start_run(
                compiled,
                entity,
                record_id,
                {"kind": "date", "field": compiled.definition.trigger.field, "due": due},
                now,
                dedupe=f"date:{record_id}:{due.isoformat() if due else ''}",
            )
        if compiled.definition.trigger.yearly:
            field_name = compiled.definition.trigger.field
            assert field_name is not None
            after = (due or now) + dt.timedelta(seconds=1)
            next_due = self._date_due(compiled, record.get(field_name), max(now, after))
            if next_due is not None:
                await self.db.execute(
                    "INSERT INTO jimu_timer (due_at, kind, automation, entity, record_id, "
                    "payload, dedupe_key) VALUES ({}, 'date', {}, {}, {}, {}, {})",
                    [
                        time_param(self.db, next_due),
                        name,
                        entity,
                        record_id,
                        "{}",
                        f"date:{name}:{record_id}:{next_due.isoformat()}",
                    ],
                )

    # -- schedules and periodic jobs --------------------------------------------------------

    async def run_schedules(self) -> int:
        """Fire every schedule trigger that is due (claimed: one worker fires each occurrence)."""
        active = await self.active()
        fired = 0
        now = self.now()
        for compiled in active:
            trigger = compiled.definition.trigger
            if trigger.kind != "schedule" or not trigger.cron:
                continue
            occurrence = await self._claim_occurrence(compiled.name, trigger.cron, now)
            if occurrence is None:
                continue
            fired += 1
            async with self.db.transaction():
                await self._fire_schedule(compiled, occurrence, now)
        for job in self.registry.jobs.values():
            occurrence = await self._claim_occurrence(f"job:{job.name}", job.cron, now)
            if occurrence is None:
                continue
            fired += 1
            outcome = job.run(self.site)
            if outcome is not None:
                await outcome
        return fired

    async def _claim_occurrence(self, key: str, cron: str, now: dt.datetime) -> dt.datetime | None:
        row = await self.db.fetch_one(
            "SELECT last_fired FROM jimu_schedule WHERE automation = {}", [key]
        )
        if row is None:
            await self.db.execute(
                "INSERT INTO jimu_schedule (automation, last_fired) VALUES ({}, {}) "
                "ON CONFLICT (automation) DO NOTHING",
                [key, time_param(self.db, now)],
            )
            return None
        last = read_time(row["last_fired"])
        assert last is not None
        occurrence = _last_occurrence(cron, last, now, self.timezone)
        if occurrence is None:
            return None
        claimed = await self.db.fetch_one(
            "UPDATE jimu_schedule SET last_fired = {} WHERE automation = {} AND last_fired = {} "
            "RETURNING automation",
            [time_param(self.db, occurrence), key, row["last_fired"]],
        )
        return occurrence if claimed else None

    async def _fire_schedule(
        self, compiled: _Compiled, occurrence: dt.datetime, now: dt.datetime
    ) -> None:
        trigger = compiled.definition.trigger
        stamp = occurrence.isoformat()
        if not trigger.entity:
            await self._start_run(
                compiled,
                None,
                None,
                {"kind": "schedule", "at": occurrence},
                now,
                dedupe=f"cron:{stamp}",
            )
            return
        rt = self.site.runtime(trigger.entity)
        python_filter: CompiledRule | None = None
        suffix, params = "", []
        if trigger.filter is not None:  # with the engine's clock ("90 days ago")
            try:
                fragment = compile_sql(
                    trigger.filter, EntityScope(self.site, rt), self.db.dialect, registry=self.rules
                )
                suffix, params = f" WHERE {fragment.sql}", list(fragment.params)
            except RuleNotSqlCompilable:  # e.g. it reads the clock: evaluated record by record
                python_filter = self.rules.compile(trigger.filter)
        rows = await self.db.fetch(f"SELECT id FROM {rt.quoted}{suffix} ORDER BY id", params)
        if python_filter is not None:
            ids = [int(row["id"]) for row in rows]
            kept: list[dict[str, Any]] = []
            for start in range(0, len(ids), 500):
                found = await self._records({trigger.entity: ids[start : start + 500]})
                kept.extend(
                    {"id": rid}
                    for rid in ids[start : start + 500]
                    if (trigger.entity, rid) in found
                    and self._holds(python_filter, found[(trigger.entity, rid)])
                )
            rows = kept
        for row in rows:
            record_id = int(row["id"])
            if compiled.condition is not None:
                record = await self.record(trigger.entity, record_id)
                if record is None or not self._holds(compiled.condition, record):
                    continue
            await self._start_run(
                compiled,
                trigger.entity,
                record_id,
                {"kind": "schedule", "at": occurrence},
                now,
                dedupe=f"cron:{stamp}:{record_id}",
            )

    # -- the loop ---------------------------------------------------------------------------

    async def tick(self, *, batch: int = 500) -> TickReport:
        """One pass of everything due: events, timers, schedules, then ready runs."""
        report = TickReport()
        for _ in range(100):
            handled = await self.dispatch(batch)
            report.events += handled
            if handled < batch:
                break
        for _ in range(100):
            fired = await self.fire_due(batch)
            report.timers += fired
            if fired < batch:
                break
        report.schedules = await self.run_schedules()
        ready = await self.claim_ready()
        report.runs = len(ready)
        if ready:
            if self.submit is None:
                for run_id in ready:
                    await self.advance(run_id)
            else:
                await self.submit(ready)
        await self.db.execute(  # how many ticks ran: liveness for people and tests
            "INSERT INTO jimu_counter (key, value) VALUES ({}, 1) ON CONFLICT (key) DO UPDATE "
            "SET value = jimu_counter.value + 1",
            [TICK_COUNTER],
        )
        return report

    async def ticks(self) -> int:
        """How many ticks have run on this site (any process)."""
        row = await self.db.fetch_one(
            "SELECT value FROM jimu_counter WHERE key = {}", [TICK_COUNTER]
        )
        return int(row["value"]) if row else 0

    async def settle(self, *, rounds: int = 50) -> TickReport:
        """Tick until nothing is left to do now (inline execution; tests and the CLI)."""
        total = TickReport()
        for _ in range(rounds):
            report = await self.tick()
            total.events += report.events
            total.timers += report.timers
            total.schedules += report.schedules
            total.runs += report.runs
            if report.idle:
                return total
        return total

    # -- the run log --------------------------------------------------------------------------

    async def runs(
        self,
        *,
        automation: str | None = None,
        entity: str | None = None,
        record_id: int | None = None,
        status: str | None = None,
        limit: int = 50,
        before: int | None = None,
    ) -> list[dict[str, Any]]:
        """Runs, newest first, filtered by automation, record and status."""
        suffix, params = newest_first(
            [
                ("automation", automation),
                ("entity", entity),
                ("record_id", record_id),
                ("status", status),
            ],
            before_id=before,
            limit=limit,
        )
        rows = await self.db.fetch(
            "SELECT id, automation, version, entity, record_id, status, step, waiting_on, attempt, "
            f"trigger, error, started_at, updated_at, finished_at FROM jimu_automation_run{suffix}",
            params,
        )
        return [_run_view(row) for row in rows]

    async def run_detail(self, run_id: int) -> dict[str, Any]:
        """One run with every step it went through: inputs, outcome, error, timing."""
        rows = await self.db.fetch(
            "SELECT id, automation, version, entity, record_id, status, step, waiting_on, attempt, "
            "trigger, error, started_at, updated_at, finished_at FROM jimu_automation_run "
            "WHERE id = {}",
            [run_id],
        )
        if not rows:
            raise NotFound(f"no automation run with id {run_id}")
        view = _run_view(rows[0])
        steps = await self.db.fetch(
            "SELECT step, kind, outcome, input, output, error, worker, started_at, finished_at, "
            "duration_ms FROM jimu_automation_step WHERE run_id = {} ORDER BY id",
            [run_id],
        )
        view["steps"] = [
            {
                "step": row["step"],
                "kind": row["kind"],
                "outcome": row["outcome"],
                "input": load_json(row["input"]),
                "output": load_json(row["output"]),
                "error": row["error"],
                "worker": row["worker"],
                "started_at": read_time(row["started_at"]),
                "finished_at": read_time(row["finished_at"]),
                "duration_ms": int(row["duration_ms"]),
            }
            for row in steps
        ]
        timer = await self.db.fetch_one(
            "SELECT due_at FROM jimu_timer WHERE dedupe_key = {}", [f"run:{run_id}"]
        )
        view["wakes_at"] = read_time(timer["due_at"]) if timer else None
        return view

    async def explain(self, name: str, record_id: int) -> dict[str, Any]:
        """Why a record would or would not start ``name`` now (and its runs so far)."""
        definition, version = await self.get(name)
        compiled = await self.version(name, version)
        entity = definition.trigger.entity
        record = await self.record(entity, record_id) if entity else None
        if entity and record is None:
            raise NotFound(f"no {entity} record with id {record_id}")
        reasons = []
        if not definition.enabled:
            reasons.append("the automation is disabled")
        if (
            compiled.condition is not None
            and record is not None
            and not self._holds(compiled.condition, record)
        ):
            reasons.append("the condition does not hold for this record")
        if (
            compiled.exit_when is not None
            and record is not None
            and self._holds(compiled.exit_when, record)
        ):
            reasons.append("the exit condition holds: a run would stop before its next step")
        return {
            "automation": name,
            "record_id": record_id,
            "would_start": not reasons,
            "reasons": reasons,
            "runs": await self.runs(automation=name, entity=entity, record_id=record_id),
        }


def _status_for(target: str) -> str:
    return "done" if target == END else "running"


def _changes_match(definition: AutomationDef, payload: Mapping[str, Any]) -> bool:
    changes = definition.trigger.changes
    if not changes:
        return True
    before = payload.get("before") or {}
    after = payload.get("after") or {}
    for change in changes:
        if change.field not in after:
            continue
        if change.from_ is not msgspec.UNSET and before.get(change.field) != change.from_:
            continue
        if change.to is not msgspec.UNSET and after.get(change.field) != change.to:
            continue
        return True
    return False


def _last_occurrence(
    cron: str, last: dt.datetime, now: dt.datetime, zone: dt.tzinfo
) -> dt.datetime | None:
    """The latest occurrence of ``cron`` after ``last`` and not after ``now`` (site time zone)."""
    iterator = croniter(cron, last.astimezone(zone))
    found: dt.datetime | None = None
    for _ in range(10_000):
        candidate = iterator.get_next(dt.datetime)
        if candidate.astimezone(dt.UTC) > now:
            break
        found = candidate.astimezone(dt.UTC)
    return found


def _raw(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _run_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": int(row["id"]),
        "automation": row["automation"],
        "version": int(row["version"]),
        "entity": row["entity"],
        "record_id": row["record_id"],
        "status": row["status"],
        "step": row["step"],
        "waiting_on": row["waiting_on"],
        "attempt": int(row["attempt"]),
        "trigger": load_json(row["trigger"]),
        "error": row["error"],
        "started_at": read_time(row["started_at"]),
        "updated_at": read_time(row["updated_at"]),
        "finished_at": read_time(row["finished_at"]),
    }


def zone_of(name: str) -> dt.tzinfo:
    """A time zone by IANA name."""
    return ZoneInfo(name)
