"""Worker set-ups for the Celery tests: an embedded worker, or `jimu worker` subprocesses."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import msgspec

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
