"""Running automations on Celery: embedded (no server) or distributed (Redis, RabbitMQ).

The database holds every bit of state; Celery messages only say "there is
work". Two tasks do everything:

* ``jimu.tick``: dispatch the outbox, fire due timers, schedules and periodic
  jobs, then send one ``jimu.advance`` per ready run (runs whose worker died
  become ready again when their lease runs out, so a lost message loses
  nothing).
* ``jimu.advance``: execute one run's steps until it waits or ends.

Tasks are acknowledged late and requeued when a worker dies; a task delivered
twice is harmless (leases, compare-and-set moves, keyed side effects).

* **Embedded** (the default, ``broker_url = "filesystem://"``): a durable
  queue of files under the site folder, and :class:`EmbeddedWorker` — a
  Celery worker in a thread of the ``jimu serve`` process, plus a ticker.
* **Distributed** (``redis://`` or ``amqp://``): ``jimu worker`` processes
  (as many as wanted) and one ``jimu beat`` sending ``jimu.tick``.

Each worker process keeps one opened :class:`~jimu.site.Site` and one event
loop per thread; tasks call the async engine through :func:`_call`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery
from celery.worker import WorkController

from jimu.automation.clock import Clock, clock_from_env
from jimu.automation.engine import AutomationEngine

__all__ = ["EmbeddedWorker", "make_celery", "queue_name"]

log = logging.getLogger("jimu.automation.celery")

T = TypeVar("T")

#: Seconds between two ticks of ``jimu beat`` and of the embedded ticker.
TICK_SECONDS = 2.0


def queue_name(folder: Path) -> str:
    """The site's own task queue (several sites may share one broker)."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    return f"jimu.{digest}"


class _WorkerState:
    """One opened site, its engine and an event loop, per worker thread."""

    def __init__(self, folder: Path, clock: Clock | None, app: Celery) -> None:
        self.folder = folder
        self.clock = clock
        self.app = app
        self.runner = asyncio.Runner()
        self.engine: AutomationEngine | None = None

    async def _engine(self) -> AutomationEngine:
        if self.engine is None:
            from jimu.site import Site

            site = Site.load(self.folder)
            await site.open()
            engine = AutomationEngine(
                site, clock=self.clock or clock_from_env(), submit=self._submit
            )
            await engine.start()
            self.engine = engine
        return self.engine

    async def _submit(self, run_ids: list[int]) -> None:
        for run_id in run_ids:
            self.app.send_task("jimu.advance", args=[run_id])

    def call(self, work: Callable[[AutomationEngine], Awaitable[T]]) -> T:
        async def go() -> T:
            return await work(await self._engine())

        return self.runner.run(go())

    def close(self) -> None:
        if self.engine is not None:
            self.runner.run(self.engine.site.close())
            self.engine = None
        self.runner.close()


def make_celery(folder: Path, broker_url: str, *, clock: Clock | None = None) -> Celery:
    """The Celery app of the site in ``folder`` (tasks ``jimu.tick`` and ``jimu.advance``).

    ``filesystem://`` keeps the queue in ``<site>/.jimu/queue``; ``clock``
    overrides the engine's clock in this process (tests).
    """
    folder = folder.resolve()
    app = Celery(f"jimu-{folder.name}", broker=broker_url)
    options: dict[str, Any] = {}
    if broker_url.startswith("filesystem://"):
        queue = folder / ".jimu" / "queue"
        queue.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(queue),
            # the exchange tables too, or kombu writes them to ./control of whoever runs it
            "control_folder": str(folder / ".jimu" / "control"),
            "store_processed": False,
            "polling_interval": 0.2,  # seconds between two looks at the folder
        }
    elif broker_url.startswith("redis://"):
        options = {"visibility_timeout": 120}
    app.conf.update(
        task_default_queue=queue_name(folder),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "jimu-tick": {"task": "jimu.tick", "schedule": TICK_SECONDS},
        },
        timezone="UTC",
    )
    local = threading.local()

    def state() -> _WorkerState:
        current: _WorkerState | None = getattr(local, "state", None)
        if current is None:
            current = _WorkerState(folder, clock, app)
            local.state = current
        return current

    @app.task(name="jimu.tick", acks_late=True, shared=False, lazy=False)  # type: ignore[untyped-decorator]
    def tick() -> dict[str, int]:
        """Dispatch events, fire timers and schedules; queue the ready runs."""
        report = state().call(lambda engine: engine.tick())
        return {
            "events": report.events,
            "timers": report.timers,
            "schedules": report.schedules,
            "runs": report.runs,
        }

    @app.task(name="jimu.advance", acks_late=True, shared=False, lazy=False)  # type: ignore[untyped-decorator]
    def advance(run_id: int) -> str:
        """Execute one run's steps until it waits or ends."""
        return state().call(lambda engine: engine.advance(run_id))

    app.jimu_state = state
    return app


class EmbeddedWorker:
    """A Celery worker and a ticker in threads of this process (``jimu serve``, tests)."""

    def __init__(
        self,
        folder: Path,
        broker_url: str = "filesystem://",
        *,
        clock: Clock | None = None,
        tick_seconds: float | None = TICK_SECONDS,
    ) -> None:
        self.app = make_celery(folder, broker_url, clock=clock)
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker: WorkController | None = None

    def start(self) -> None:
        """Start consuming the site's queue (and ticking, unless ``tick_seconds`` is ``None``)."""
        self._worker = WorkController(
            app=self.app,
            pool_cls="solo",
            concurrency=1,
            loglevel="WARNING",
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            queues=[self.app.conf.task_default_queue],
        )
        worker = self._worker

        def consume() -> None:
            self.app.set_current()  # Celery's current app is per thread
            worker.start()

        worker_thread = threading.Thread(target=consume, name="jimu-embedded-worker", daemon=True)
        worker_thread.start()
        self._threads.append(worker_thread)
        if self.tick_seconds is not None:
            ticker = threading.Thread(target=self._tick_loop, name="jimu-ticker", daemon=True)
            ticker.start()
            self._threads.append(ticker)

    def _tick_loop(self) -> None:
        assert self.tick_seconds is not None
        while not self._stop.wait(self.tick_seconds):
            try:
                self.app.send_task("jimu.tick")
            except Exception:  # the queue folder vanished with the site: keep quiet, stop soon
                log.exception("could not queue a tick")

    def tick(self) -> None:
        """Queue one tick now."""
        self.app.send_task("jimu.tick")

    def stop(self) -> None:
        """Stop ticking and consuming; wait for the threads."""
        self._stop.set()
        if self._worker is not None:
            self._worker.stop(in_sighandler=False)
        for thread in self._threads:
            thread.join(timeout=10)
