"""Worker set-ups for the Celery tests: an embedded worker, or `jimu worker` subprocesses."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec

from jimu.automation.celery_app import make_celery
from jimu.automation.clock import CLOCK_FILE_ENV, FileClock
from jimu.site import Site


@dataclass
class Workers:
    """Worker processes serving one site folder, and the clock file they share."""

    folder: Path
    broker_url: str
    clock: FileClock
    processes: list[subprocess.Popen[bytes]]

    def kill(self, index: int) -> int:
        """SIGKILL one worker by its own PID (no cleanup, no ack); return the PID."""
        process = self.processes[index]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid


def set_broker(site: Site, broker_url: str) -> None:
    """Point the site's ``site.toml`` at ``broker_url``."""
    site.config = msgspec.structs.replace(site.config, broker_url=broker_url)
    site.save_config()


def _wait_until_consuming(
    folder: Path, broker_url: str, processes: list[subprocess.Popen[bytes]], patience: float = 60
) -> None:
    """Wait until every worker answers a ping (it consumes), so a test's first tasks find
    all of them; other tests' workers on the same broker answer too and are ignored."""
    app = make_celery(folder, broker_url)
    wanted = {f"jimu-{process.pid}@" for process in processes}
    deadline = time.monotonic() + patience
    while True:
        replies = app.control.ping(timeout=0.5)
        names = {name.split("@")[0] + "@" for reply in replies for name in reply}
        if wanted <= names:
            return
        dead = [process.pid for process in processes if process.poll() is not None]
        assert not dead, f"worker(s) {dead} exited; see {folder}/worker*.log"
        assert time.monotonic() < deadline, f"workers not consuming after {patience}s"


@contextmanager
def worker_processes(folder: Path, broker_url: str, count: int = 2) -> Iterator[Workers]:
    """Start ``count`` ``jimu worker`` processes for the site in ``folder``; stop them after."""
    clock = FileClock(folder / "clock.txt", dt.datetime.now(dt.UTC))
    env = {**os.environ, CLOCK_FILE_ENV: str(clock.path), "JIMU_SITE": str(folder)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from jimu_cli.main import main; main()",
                "worker",
                "--site",
                str(folder),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / f"worker{index}.log", "wb"),  # noqa: SIM115
        )
        for index in range(count)
    ]
    try:
        _wait_until_consuming(folder, broker_url, processes)
        yield Workers(folder=folder, broker_url=broker_url, clock=clock, processes=processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
