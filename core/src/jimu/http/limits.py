"""Rate limits kept in this process: public form submissions, sign-in attempts."""

from __future__ import annotations

import time
from collections import deque

__all__ = ["RateLimiter"]


class RateLimiter:
    """A sliding window of submission times per key (a form or sign-in, and the client address), in this process."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str], deque[float]] = {}

    def check(self, key: tuple[str, str], limit: int, window: float) -> float | None:
        """Record a hit; return the seconds to wait when over the limit (the hit is not kept)."""
        now = time.monotonic()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window:
            hits.popleft()
        if len(hits) >= limit:
            return hits[0] + window - now
        hits.append(now)
        if len(self._hits) > 100_000:  # bounded memory under a flood of addresses
            self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - window}
        return None
