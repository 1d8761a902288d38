"""The automation engine's clock: the real one, or one a test moves by hand.

Every time the engine reads (when a wait ends, which timers are due, whether a
schedule is due, how long a lease lasts) comes from one :data:`Clock`, so a
test can drive a 30-day journey in milliseconds. Worker processes started by a
test share a :class:`FileClock`: the time is in a file the test rewrites.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["CLOCK_FILE_ENV", "Clock", "FileClock", "ManualClock", "clock_from_env", "system_clock"]

#: Environment variable naming a :class:`FileClock` file for worker processes (tests).
CLOCK_FILE_ENV = "JIMU_AUTOMATION_CLOCK_FILE"

Clock = Callable[[], dt.datetime]
"""Returns the current time as an aware datetime."""


def system_clock() -> dt.datetime:
    """The real time, in UTC."""
    return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = (start or dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)).astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self._now

    def set(self, moment: dt.datetime) -> None:
        """Jump to ``moment`` (an aware datetime)."""
        if moment.tzinfo is None:
            raise ValueError("give an aware datetime")
        self._now = moment.astimezone(dt.UTC)

    def advance(self, delta: dt.timedelta | None = None, **units: float) -> dt.datetime:
        """Move forward by ``delta`` or by ``days=..., hours=..., minutes=...``; return the new time."""
        self._now += delta if delta is not None else dt.timedelta(**units)
        return self._now


class FileClock(ManualClock):
    """A :class:`ManualClock` whose time lives in a file, shared by several processes."""

    def __init__(self, path: Path | str, start: dt.datetime | None = None) -> None:
        self.path = Path(path)
        if start is not None or not self.path.exists():
            super().__init__(start)
            self._write()

    def _write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(self._now.isoformat(), encoding="utf-8")
        temporary.replace(self.path)

    def __call__(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.path.read_text(encoding="utf-8").strip())

    def set(self, moment: dt.datetime) -> None:
        """Jump to ``moment`` for every process reading the file."""
        super().set(moment)
        self._write()

    def advance(self, delta: dt.timedelta | None = None, **units: float) -> dt.datetime:
        """Move forward for every process reading the file."""
        self._now = self()
        moved = super().advance(delta, **units)
        self._write()
        return moved


def clock_from_env(environ: dict[str, str] | None = None) -> Clock:
    """The clock a worker process uses: a :class:`FileClock` when ``JIMU_AUTOMATION_CLOCK_FILE``
    names one (tests), else the real time."""
    path = (environ if environ is not None else os.environ).get(CLOCK_FILE_ENV)
    return FileClock(path) if path else system_clock
