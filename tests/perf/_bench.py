"""Shared plumbing for the benchmarks: the ``--scale`` flag and the BENCH lines."""

from __future__ import annotations

import argparse
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags every benchmark takes (``--scale``; 1.0 = the sizes its issue names)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="1.0 runs the sizes the issue names; 0.1 is a quick look",
    )
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be a positive number, for example 1.0 or 0.1")
    return args


def scaled(size: int, scale: float, minimum: int = 1) -> int:
    """Return ``size`` multiplied by ``scale``, never below ``minimum``."""
    return max(minimum, int(size * scale))


@dataclass
class Report:
    """Collects figures while a benchmark runs and prints the BENCH lines last."""

    lines: list[str] = field(default_factory=list)

    def figure(self, name: str, value: float, unit: str, op: str, target: float) -> bool:
        """Record one figure; return whether it meets its target."""
        if op not in _OPS:
            raise ValueError(f"unknown target operator {op!r}; use one of {sorted(_OPS)}")
        self.lines.append(f"BENCH {name} {value:.4g} {unit} target {op} {target:g}")
        return _OPS[op](value, target)

    def print(self) -> None:
        """Print every figure, one line each, after all other output."""
        for line in self.lines:
            print(line, flush=True)


def best_of(repeats: int, func: Callable[[], object]) -> float:
    """Run ``func`` ``repeats`` times and return the fastest wall time in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best
